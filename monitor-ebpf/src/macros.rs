//! Telling which proc-macro did something inside rustc.
//!
//! Proc-macros run inside rustc, so the process cannot tell them apart. Their code can: a
//! proc-macro is a shared library (`<target>/<profile>/deps/lib<name>-<hash>.so`) that statically
//! links its own copy of std, so when a proc-macro opens a file, connects or spawns a process,
//! the calling thread's stack holds return addresses inside that library's executable mapping,
//! a few hundred bytes above the stack pointer.
//!
//! - `sched_process_exec` marks rustc processes in `MACRO_LIBS` (with no library yet);
//! - `mmap` of a `.../deps/lib*.so` file with PROT_EXEC in a marked process adds the mapping as a
//!   slot and reports it (`MacroLibRecord`), so userspace knows which library each slot is;
//! - events of a marked process scan `STACK_SCAN_BYTES` of the user stack for words inside a
//!   slot's range and carry the slots found as `callers` bits;
//! - the instruction pointer at the system call is checked too, and a slot it lies in is carried
//!   as bit `MACRO_SLOTS + slot`: a proc-macro that makes its system calls itself (inline
//!   assembly) on a stack of its own leaves no return address to find, but the `syscall`
//!   instruction is in its library.
use crate::dispatch::{Enter, Exit};
use aya_ebpf::helpers::generated::{
    bpf_get_current_task_btf, bpf_get_smp_processor_id, bpf_loop, bpf_probe_read_kernel,
    bpf_probe_read_user, bpf_task_pt_regs,
};
use core::ffi::c_void;

use monitor_common::{
    MACRO_SLOTS, MacroLibRecord, MacroSlots, PATH_MAX, STACK_SCAN_BYTES, counter, kind, syscall,
};

use crate::{
    kernel::{self, copy_walked, current_task, fd_path},
    maps::{MACRO_LIBS, OFFSETS, STACK_SCRATCH, ZERO_SLOTS, count_loss},
    output::{current_tracked, header, scratch, submit},
    pending::{PENDING, Pending, take_pending},
};

const PROT_EXEC: u64 = 4;
const MAP_ANONYMOUS: u64 = 0x20;
const WORDS: usize = STACK_SCAN_BYTES / 8;

/// Offset of the user stack pointer in `struct pt_regs` (user_pt_regs on arm64).
#[cfg(bpf_target_arch = "x86_64")]
const SP_OFFSET: usize = core::mem::offset_of!(aya_ebpf::bindings::pt_regs, rsp);
#[cfg(bpf_target_arch = "aarch64")]
const SP_OFFSET: usize = core::mem::offset_of!(aya_ebpf::bindings::user_pt_regs, sp);
#[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
const SP_OFFSET: usize = 0;

/// Offset of the user instruction pointer (the address after the `syscall`/`svc` instruction).
#[cfg(bpf_target_arch = "x86_64")]
const IP_OFFSET: usize = core::mem::offset_of!(aya_ebpf::bindings::pt_regs, rip);
#[cfg(bpf_target_arch = "aarch64")]
const IP_OFFSET: usize = core::mem::offset_of!(aya_ebpf::bindings::user_pt_regs, pc);
#[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
const IP_OFFSET: usize = 0;

/// Marks (or unmarks) the current process as a rustc after an exec.
#[inline(always)]
pub fn mark_rustc(tgid: u32, is_rustc: bool) {
    if !is_rustc {
        let _ = MACRO_LIBS.remove(tgid);
        return;
    }
    if let Some(zero) = ZERO_SLOTS.get(0)
        && MACRO_LIBS.insert(tgid, zero, 0).is_err()
    {
        count_loss(counter::PENDING_FULL);
    }
}

/// Forgets a process that exited.
#[inline(always)]
pub fn forget(tgid: u32) {
    let _ = MACRO_LIBS.remove(tgid);
}

/// Slot bits of the proc-macro libraries with a return address near the top of the current
/// thread's user stack, and bit `MACRO_SLOTS + slot` for the library the instruction pointer is
/// in (0 outside rustc processes or before any proc-macro is loaded).
#[inline(always)]
pub fn callers(tgid: u32) -> u32 {
    proc_macro_callers(tgid)
}

/// [`callers`] as a global BPF function (exported, so BTF gives it global linkage): the
/// verifier checks it once per program, on its own, instead of once for every state its
/// callers reach it in (the open programs reach it in a score of states: most of their
/// verification was this scan).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn proc_macro_callers(tgid: u32) -> u32 {
    // SAFETY: the value is only read.
    let Some(slots) = (unsafe { MACRO_LIBS.get(tgid) }) else {
        return 0;
    };
    if slots.count == 0 {
        return 0;
    }
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(stack) = STACK_SCRATCH.get_ptr_mut(cpu) else {
        return 0;
    };
    // SAFETY: the helpers check their arguments; `task_pt_regs` of the current task is valid, and
    // reading its registers goes through the checking probe-read helper.
    let (sp, ip): (u64, u64) = unsafe {
        let regs = bpf_task_pt_regs(bpf_get_current_task_btf()) as u64;
        let (mut sp, mut ip) = (0u64, 0u64);
        bpf_probe_read_kernel(
            (&raw mut sp).cast(),
            8,
            (regs + SP_OFFSET as u64) as *const _,
        );
        bpf_probe_read_kernel(
            (&raw mut ip).cast(),
            8,
            (regs + IP_OFFSET as u64) as *const _,
        );
        (sp, ip)
    };
    // The code that made the system call.
    let mut ip_bits = 0u32;
    if ip.wrapping_sub(slots.min) < slots.span {
        ip_bits = proc_macro_slot_bits(ip, slots) << MACRO_SLOTS;
    }
    if sp == 0 {
        return ip_bits;
    }
    // Near the top of a stack fewer than STACK_SCAN_BYTES may be mapped: then a quarter of it
    // (the rest of the buffer zeroed, which matches no slot).
    // SAFETY: `stack` is this CPU's STACK_SCAN_BYTES buffer; the helper checks the source.
    let ret = unsafe { bpf_probe_read_user(stack.cast(), STACK_SCAN_BYTES as u32, sp as *const _) };
    if ret < 0 {
        // SAFETY: as above; the failed read already zeroed the buffer.
        let ret = unsafe {
            bpf_probe_read_user(stack.cast(), (STACK_SCAN_BYTES / 4) as u32, sp as *const _)
        };
        if ret < 0 {
            return ip_bits;
        }
    }
    // The scan runs in a bpf_loop callback, which the verifier checks once (not once per word
    // as an unrolled loop would be): startup stays fast and far from the verifier's limits.
    let mut state = ScanState {
        stack: stack.cast_const(),
        slots: slots as *const MacroSlots,
        bits: 0,
    };
    // SAFETY: the callback is a BPF subprogram of the required signature; `state` lives on this
    // stack frame for the duration of the call.
    unsafe {
        bpf_loop(
            (WORDS / WORDS_PER_STEP) as u32,
            scan_step as *const () as *mut c_void,
            (&raw mut state).cast(),
            0,
        );
    }
    state.bits | ip_bits
}

/// Words of stack each callback step checks.
const WORDS_PER_STEP: usize = 8;

/// The scan's state, on the caller's stack, shared with the callback.
#[repr(C)]
struct ScanState {
    stack: *const [u64; WORDS],
    slots: *const MacroSlots,
    bits: u32,
}

/// One step of the scan: `WORDS_PER_STEP` words from `index * WORDS_PER_STEP`, tested against
/// the slots by [`proc_macro_slot_bits`] when any of them is within `[min, min + span)`.
///
/// Branch-free but for that one test per step: a branch per word forked the verifier's state
/// at each, 2^8 paths per step.
#[inline(never)]
extern "C" fn scan_step(index: u64, ctx: *mut c_void) -> i64 {
    let state = ctx.cast::<ScanState>();
    // SAFETY: `ctx` is the ScanState the caller passed to bpf_loop; its pointers are map values.
    unsafe {
        let stack = (*state).stack;
        let slots = (*state).slots;
        let (min, span) = ((*slots).min, (*slots).span);
        let base = (index as usize * WORDS_PER_STEP) & (WORDS - WORDS_PER_STEP);
        let mut any = 0u64;
        for k in 0..WORDS_PER_STEP {
            let d = (*stack)[(base + k) & (WORDS - 1)].wrapping_sub(min);
            any |= (d.wrapping_sub(span) >> 63) & !(d >> 63);
        }
        if any == 0 {
            return 0;
        }
        let mut bits = (*state).bits;
        for k in 0..WORDS_PER_STEP {
            bits |= proc_macro_slot_bits((*stack)[(base + k) & (WORDS - 1)], slots);
        }
        (*state).bits = bits;
    }
    0
}

/// Bit `s` for each slot `s` of `slots` whose range holds `addr`: one unsigned comparison per
/// slot (`addr - start < len`, as arithmetic: the difference's top bit clear and the difference
/// minus `len` wrapping), so that the verifier has one path through the slots, not 2^16.
/// Unused slots have length 0 and match nothing. A global BPF function: the verifier checks its
/// tests once per program instead of at every word of every pass over `scan_step`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn proc_macro_slot_bits(addr: u64, slots: *const MacroSlots) -> u32 {
    // The verifier knows a global function's pointer arguments only as possibly null.
    if slots.is_null() {
        return 0;
    }
    let mut bits = 0u32;
    for s in 0..MACRO_SLOTS {
        // SAFETY: `slots` points at a MacroSlots (a MACRO_LIBS value), only read; volatile,
        // so that the loads stay in their test instead of 32 values spilled to the stack,
        // which the open programs' callers have filled already.
        let (start, len) = unsafe {
            (
                core::ptr::read_volatile(&raw const (*slots).start[s]),
                core::ptr::read_volatile(&raw const (*slots).len[s]),
            )
        };
        let d = addr.wrapping_sub(start);
        let inside = (d.wrapping_sub(len) >> 63) & !(d >> 63) & 1;
        bits |= (inside as u32) << s;
    }
    bits
}

crate::syscall_program!(
    /// `mmap(addr, len, prot, flags, fd, off)`: stashed for rustc processes mapping a file
    /// executable.
    sys_enter_mmap,
    "sys_enter_mmap",
    exit = false,
    |ctx| {
        let _ = try_enter(ctx);
    }
);

fn try_enter(ctx: &Enter) -> Option<()> {
    let task = current_tracked()?;
    // SAFETY: syscall tracepoint records hold their arguments from offset 16.
    let prot: u64 = unsafe { ctx.read_at(32) }.ok()?;
    if prot & PROT_EXEC == 0 {
        return None;
    }
    // SAFETY: as above.
    let flags: u64 = unsafe { ctx.read_at(40) }.ok()?;
    // SAFETY: as above.
    let fd: u64 = unsafe { ctx.read_at(48) }.ok()?;
    if flags & MAP_ANONYMOUS != 0 || fd as i64 > i32::MAX as i64 || (fd as i32) < 0 {
        return None;
    }
    // SAFETY: the value is only tested for presence.
    unsafe { MACRO_LIBS.get(task.tgid) }?;
    // SAFETY: as above.
    let len: u64 = unsafe { ctx.read_at(24) }.ok()?;
    let pending = Pending {
        syscall: syscall::MMAP,
        _pad: 0,
        args: [fd, len, prot, 0],
    };
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(counter::PENDING_FULL);
    }
    Some(())
}

crate::syscall_program!(sys_exit_mmap, "sys_exit_mmap", exit = true, |ctx| {
    let _ = try_exit(ctx);
});

const HDR: usize = size_of::<MacroLibRecord>();
const PATH_MASK: usize = PATH_MAX - 1;

fn try_exit(ctx: &Exit) -> Option<()> {
    let task = current_tracked()?;
    let p = take_pending(task.pid_tgid)?;
    if p.syscall != syscall::MMAP {
        return None;
    }
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let start: i64 = unsafe { ctx.read_at(16) }.ok()?;
    if start < 0 {
        return None;
    }
    let o = OFFSETS.load();
    let path = fd_path(current_task(), p.args[0], &o)?;
    let (pbuf, pstart, _) = kernel::walk(path, &o)?;
    if !is_proc_macro_lib(pbuf, pstart) {
        return None;
    }
    let slots = MACRO_LIBS.get_ptr_mut(task.tgid)?;
    let start = start as u64;
    let end = start + p.args[1];
    // SAFETY: `slots` points at this process's map value; only this process's threads update it
    // (a lost race between two threads mapping at once costs a slot, never memory safety).
    let slot = unsafe {
        let count = (*slots).count as usize;
        if count >= MACRO_SLOTS {
            return None;
        }
        let s = count & (MACRO_SLOTS - 1);
        (*slots).start[s] = start;
        (*slots).len[s] = end - start;
        let old_end = (*slots).min + (*slots).span;
        let min = if count == 0 || start < (*slots).min {
            start
        } else {
            (*slots).min
        };
        let max = if count == 0 || end > old_end {
            end
        } else {
            old_end
        };
        (*slots).min = min;
        (*slots).span = max - min;
        (*slots).count = count as u32 + 1;
        s as u32
    };
    let buf = scratch()?;
    // SAFETY: the scratch buffer has room for HDR + PATH_MAX bytes.
    let path_len = unsafe { copy_walked(buf.add(HDR), pbuf, pstart) } & (PATH_MAX as u32 - 1);
    let total = HDR + path_len as usize;
    let record = MacroLibRecord {
        header: header(kind::MACRO_LIB, total as u32, &task),
        slot,
        path_len,
        start,
        end,
    };
    // SAFETY: the scratch buffer is at least HDR bytes long.
    unsafe { core::ptr::write_unaligned(buf.cast::<MacroLibRecord>(), record) };
    submit(buf, total, crate::output::lazy());
    Some(())
}

/// Whether the walked path `buf[start..PATH_MAX]` is `.../deps/lib<name>.so`.
#[inline(always)]
fn is_proc_macro_lib(buf: *const u8, start: u32) -> bool {
    // SAFETY: every index is masked into the PATH_MAX-byte region of the path buffer.
    let at = |i: usize| unsafe { *buf.add(i & PATH_MASK) };
    if (PATH_MAX as u32).saturating_sub(start) < 12
        || at(PATH_MAX - 3) != b'.'
        || at(PATH_MAX - 2) != b's'
        || at(PATH_MAX - 1) != b'o'
    {
        return false;
    }
    let mut slash = 0usize;
    for i in 4..256usize {
        if at(PATH_MAX - i) == b'/' {
            slash = PATH_MAX - i;
            break;
        }
    }
    // SAFETY: `buf` is the walk's buffer, the walk over. Without this, each place the loop can
    // stop at is a state of its own for the verifier, through the rest of the program.
    let slash = unsafe { kernel::opaque(buf, slash as u32) } as usize & PATH_MASK;
    if slash < 6 || slash < start as usize + 5 {
        return false;
    }
    at(slash + 1) == b'l'
        && at(slash + 2) == b'i'
        && at(slash + 3) == b'b'
        && at(slash - 5) == b'/'
        && at(slash - 4) == b'd'
        && at(slash - 3) == b'e'
        && at(slash - 2) == b'p'
        && at(slash - 1) == b's'
}
