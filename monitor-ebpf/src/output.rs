//! Building records: the tracked check, headers, scratch buffers and the ring buffer.
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_RING_SIZE},
    helpers::{bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns},
};
use monitor_common::{RecordHeader, SCRATCH_SIZE, counter};

use crate::maps::{EVENTS, SCRATCH, TRACKED, count_loss};

/// The current task, when its process is tracked.
#[derive(Clone, Copy)]
pub struct Task {
    /// bpf_get_current_pid_tgid()
    pub pid_tgid: u64,
    pub tgid: u32,
    pub tid: u32,
}

/// The current task if its process is in the watched tree.
#[inline(always)]
pub fn current_tracked() -> Option<Task> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the value is only tested for presence, never read through the reference.
    unsafe { TRACKED.get(tgid) }?;
    Some(Task {
        pid_tgid,
        tgid,
        tid: pid_tgid as u32,
    })
}

/// Whether the current task is in a 32-bit (compat) system call: x86's `TS_COMPAT` in its
/// thread_info, set for the length of the call. Always false elsewhere.
#[inline(always)]
pub fn in_compat_syscall() -> bool {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        // SAFETY: plain helper call; the result is the current task, BTF-typed.
        in_compat_syscall_of(unsafe { aya_ebpf::helpers::generated::bpf_get_current_task_btf() })
    }
    #[cfg(not(bpf_target_arch = "x86_64"))]
    {
        false
    }
}

/// [`in_compat_syscall`] of `task`, the current task as `bpf_get_current_task_btf` gave it (for
/// a caller that needs the pointer for more).
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
pub fn in_compat_syscall_of(task: *mut aya_ebpf::bindings::task_struct) -> bool {
    const TS_COMPAT: u32 = 0x0002;
    let off = crate::maps::TI_STATUS.load();
    if off == 0 {
        return false;
    }
    // SAFETY: a BTF-typed pointer to the current task, read at a constant offset (TI_STATUS is
    // a frozen read-only global, whose value the verifier knows): the verifier checks the access
    // against task_struct's type, and the load is a plain read, not a helper call.
    let status =
        unsafe { core::ptr::read_volatile((task as *const u8).add(off as usize).cast::<u32>()) };
    status & TS_COMPAT != 0
}

/// A header for a record of `kind` about the current task.
#[inline(always)]
pub fn header(kind: u32, size: u32, task: &Task) -> RecordHeader {
    RecordHeader {
        kind,
        size,
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        time_ns: unsafe { bpf_ktime_get_ns() },
        tgid: task.tgid,
        tid: task.tid,
        comm: current_comm(),
    }
}

/// The current task's name. Not aya's `bpf_get_current_comm`, whose zeroed buffer and `Result`
/// become three calls to `memset`: LLVM's BPF backend does not expand memset inline, and the
/// verifier walks memset's byte loop at every call site, once per state reaching it.
#[inline(always)]
fn current_comm() -> [u8; 16] {
    let mut comm = core::mem::MaybeUninit::<[u8; 16]>::uninit();
    // SAFETY: the helper writes all 16 bytes, the name padded with NULs (zeros when it fails),
    // so the array is initialised whatever it returns.
    unsafe {
        aya_ebpf::helpers::generated::bpf_get_current_comm(comm.as_mut_ptr().cast(), 16);
        comm.assume_init()
    }
}

/// Zeroes `N` 8-byte words at `dst` with one store each. Not `[0; N]` assignments, which LLVM
/// turns into calls to `memset` (see [`current_comm`]).
///
/// # Safety
/// `dst` must be 8-byte aligned and writable for `8 * N` bytes.
#[inline(always)]
pub unsafe fn zero_words<const N: usize>(dst: *mut u8) {
    let dst = dst.cast::<u64>();
    for i in 0..N {
        // SAFETY: the caller's contract; volatile, so that the stores stay stores.
        unsafe { core::ptr::write_volatile(dst.add(i), 0) };
    }
}

/// This CPU's scratch buffer.
#[inline(always)]
pub fn scratch() -> Option<*mut u8> {
    // SAFETY: bpf_get_smp_processor_id has no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    SCRATCH.get_ptr_mut(cpu).map(|p| p.cast::<u8>())
}

/// Ring buffer flags for exec records (and fork and exit where [`lifecycle`] says): always wake
/// the reader (the default wakes it only when it had read everything before, which lazy records
/// prevent), so that attribution (and `--enforce`'s crate groups) follow a new process at once.
pub const URGENT: u64 = BPF_RB_FORCE_WAKEUP as u64;

/// Ring buffer flags for fork and exit records: [`URGENT`] under `--enforce` and in the guard,
/// which follow processes as they come and go; otherwise as [`lazy`] records: the run loop asks
/// the reader for everything there is before it looks for processes left behind (watch.rs), so
/// nothing waits on them, and each of the ~1,100 forks and exits of a build no longer costs a
/// wake-up of its own (~50 µs of CPU for the reader and the pipeline thread together). Exec
/// records stay urgent: the digest takes hold of `/proc/PID/exe` while the process lives.
#[inline(always)]
pub fn lifecycle() -> u64 {
    if crate::maps::ENFORCE.load() != 0 || crate::guard::GUARD.load() != 0 {
        URGENT
    } else {
        lazy()
    }
}

/// Ring buffer flags for everything else (opens above all): no wake-up per record, unless the
/// buffer is an eighth full. The reader polls with a short timeout, so these wait at most that
/// long, and a build's stream of opens costs a few wake-ups a second instead of one per open.
#[inline(always)]
pub fn lazy() -> u64 {
    let avail = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let size = EVENTS.query(BPF_RB_RING_SIZE as u64);
    if avail >= size / 8 {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Sends `len` bytes of `buf` (a scratch buffer) to userspace with ring buffer `flags` ([`URGENT`]
/// or [`lazy`]), counting a loss if the ring buffer is full.
#[inline(always)]
pub fn submit(buf: *const u8, len: usize, flags: u64) {
    // Keep the verifier's view of the length bounded by the scratch buffer.
    let len = if len > SCRATCH_SIZE {
        SCRATCH_SIZE
    } else {
        len
    };
    // SAFETY: `buf` is a scratch buffer of SCRATCH_SIZE bytes and `len` is at most that.
    let data = unsafe { core::slice::from_raw_parts(buf, len) };
    if EVENTS.output::<[u8]>(data, flags).is_err() {
        count_loss(counter::RINGBUF_FULL);
    }
}

/// Sends a fixed-size record to userspace with ring buffer `flags`, counting a loss if the ring
/// buffer is full.
#[inline(always)]
pub fn submit_record<T: 'static>(record: &T, flags: u64) {
    if EVENTS.output::<T>(record, flags).is_err() {
        count_loss(counter::RINGBUF_FULL);
    }
}
