//! Failed reads in quiet directories: counted for their process instead of sent.
//!
//! Half of a build's opens fail (the dynamic loader walking its search path, compilers probing
//! include and library directories: 51,543 of 76,012 opens in one watched build of the bench's
//! `popular` workspace). The policy acts on a failed read only when its path names a secret or
//! another process's memory; userspace puts in `QUIET_DIRS` the directories where no path can
//! (the toolchain, the system's library and header trees, the target directory), checked
//! against the secret places first. A failed read there is counted in `QUIET_COUNTS` and the
//! count travels in the process's exit record, so the report's numbers stay whole.
//!
//! What is quiet is decided on the path as the process gave it (a failed open resolved nothing):
//! an absolute path below a quiet directory, or a relative one whose starting directory (walked
//! by the kernel) is one, with no component starting with a dot in the part below it — so `..`
//! cannot climb out of the directory, and `.env` files are never quiet. A symlink planted below
//! a quiet directory could make a failed read elsewhere look quiet; it can only hide that a file
//! does not exist there (ENOENT, ENOTDIR: any other error is sent), and a read that succeeds is
//! always sent with the path the kernel resolved.
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::bpf_get_smp_processor_id,
    macros::map,
    maps::{Array, HashMap},
};
use monitor_common::{QUIET_DIR_MAX, QUIET_DIRS, QUIET_TAIL_MAX, QuietDir, syscall};

use crate::maps::SCRATCH;

/// The quiet directories, filled by userspace in slot order (empty: nothing is quiet, as with
/// `--events`, which asks for every record).
#[map]
pub static QUIET_DIRS_MAP: Array<QuietDir> = Array::with_max_entries(QUIET_DIRS, 0);

/// Failed reads counted per process (tgid), taken into its exit record.
#[map]
pub static QUIET_COUNTS: HashMap<u32, u32> = HashMap::with_max_entries(65536, 0);

const ENOENT: i64 = 2;
const ENOTDIR: i64 = 20;
/// O_ACCMODE, O_CREAT, O_TRUNC, O_APPEND: anything but a plain read is sent.
const NOT_A_READ: u64 = 0o3 | 0o100 | 0o1000 | 0o2000;
/// Offsets into the scratch buffer are masked below this (paths start below 8 KiB).
const AT_MASK: u64 = 0x1fff;

/// Whether an open could be a quiet failure, before its path is looked at: openat, openat2 or
/// open (not a rename's or link's names), for reading only, failed with ENOENT or ENOTDIR, and
/// not a 32-bit call (`extra`: those are reported whatever they open).
#[inline(always)]
pub fn candidate(syscall: u32, open_flags: u64, ret: i64, extra: u32) -> bool {
    extra == 0
        && (ret == -ENOENT || ret == -ENOTDIR)
        && open_flags & NOT_A_READ == 0
        && matches!(syscall, syscall::OPENAT | syscall::OPENAT2 | syscall::OPEN)
}

/// Whether the failed open whose path is at `path_at` (`path_len` bytes) of this CPU's scratch
/// buffer is quiet: absolute and below a quiet directory (`base_len` 0), or relative to the
/// directory at `base_at` (`base_len` bytes, walked by the kernel) which is or is below one.
/// Returns 1 when quiet.
///
/// This and the two functions it calls are global BPF functions: the verifier checks each
/// once, with its arguments unknown, instead of following every byte loop from each state the
/// open program reaches them in (inlined, the loops took it past its million instructions).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn quiet_failure(path_at: u64, path_len: u64, base_at: u64, base_len: u64) -> i64 {
    let relative = base_len != 0;
    let (at, len) = if relative {
        (base_at, base_len)
    } else {
        (path_at, path_len)
    };
    let mut dir_len = 0;
    for slot in 0..u64::from(QUIET_DIRS) {
        let r = quiet_prefix(slot, at, len);
        if r < 0 {
            return 0;
        }
        if r > 0 {
            dir_len = r as u64;
            break;
        }
    }
    if dir_len == 0 || dir_len > len {
        return 0;
    }
    // The part below the directory: all of a relative path; an absolute one's rest, which
    // starts with its '/'.
    if relative {
        quiet_tail(path_at, path_len, 1)
    } else {
        quiet_tail(path_at + dir_len, path_len - dir_len, 0)
    }
}

/// The length of the quiet directory in slot `slot` when the `len` bytes at `at` of this CPU's
/// scratch buffer are it or are below it; 0 when not; -1 when the slot is empty (so are all
/// after it).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn quiet_prefix(slot: u64, at: u64, len: u64) -> i64 {
    let Some(dir) = QUIET_DIRS_MAP.get_ptr(slot as u32) else {
        return -1;
    };
    // SAFETY: a pointer to the map value from a successful lookup.
    let dir_len = u64::from(unsafe { (*dir).len });
    if dir_len == 0 || dir_len > QUIET_DIR_MAX as u64 {
        return -1;
    }
    if len < dir_len {
        return 0;
    }
    let Some(buf) = scratch_bytes() else {
        return 0;
    };
    let at = at & AT_MASK;
    let name = dir.cast::<u8>().wrapping_add(8);
    for k in 0..QUIET_DIR_MAX as u64 {
        if k >= dir_len {
            break;
        }
        // SAFETY: at < 8 KiB and k < 248: inside the 128 KiB scratch buffer; the slot's name
        // starts at byte 8 of its value and holds QUIET_DIR_MAX bytes.
        if unsafe { *buf.add((at + k) as usize) != *name.add(k as usize) } {
            return 0;
        }
    }
    // SAFETY: as above, at + dir_len < 8 KiB + 248.
    if len == dir_len || unsafe { *buf.add((at + dir_len) as usize) } == b'/' {
        dir_len as i64
    } else {
        0
    }
}

/// 1 when no component of the `len` bytes at `at` of this CPU's scratch buffer starts with a
/// dot (`relative`: the first component starts at `at`; otherwise the bytes start with '/'),
/// and there are at most `QUIET_TAIL_MAX` of them; else 0.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn quiet_tail(at: u64, len: u64, relative: u64) -> i64 {
    if len > u64::from(QUIET_TAIL_MAX) {
        return 0;
    }
    let Some(buf) = scratch_bytes() else {
        return 0;
    };
    let at = at & AT_MASK;
    let mut prev = if relative != 0 { b'/' } else { 0 };
    for k in 0..u64::from(QUIET_TAIL_MAX) {
        if k >= len {
            break;
        }
        // SAFETY: at < 8 KiB and k < 256, inside the 128 KiB scratch buffer.
        let c = unsafe { *buf.add((at + k) as usize) };
        if c == b'.' && prev == b'/' {
            return 0;
        }
        prev = c;
    }
    1
}

/// This CPU's scratch buffer, where the open program assembles its record.
#[inline(always)]
fn scratch_bytes() -> Option<*const u8> {
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    SCRATCH.get_ptr(cpu).map(|p| p.cast::<u8>())
}

/// Counts a quiet failure of process `tgid`. False when the count could not be kept (the map
/// is full): then the open is sent after all. The increment is not atomic (Rust's BPF target has
/// no atomic add): two threads of one process failing an open at the same instant on two CPUs
/// can lose one count, never a record that matters.
#[inline(always)]
pub fn count(tgid: u32) -> bool {
    if let Some(n) = QUIET_COUNTS.get_ptr_mut(tgid) {
        // SAFETY: a pointer to the map value from a successful lookup.
        unsafe { *n = (*n).saturating_add(1) };
        return true;
    }
    QUIET_COUNTS.insert(tgid, 1, u64::from(BPF_NOEXIST)).is_ok()
}

/// The process's count, taken out of the map as it exits.
#[inline(always)]
pub fn take(tgid: u32) -> u32 {
    // SAFETY: the value is copied out at once.
    let n = unsafe { QUIET_COUNTS.get(tgid) }.copied().unwrap_or(0);
    if n != 0 {
        let _ = QUIET_COUNTS.remove(tgid);
    }
    n
}
