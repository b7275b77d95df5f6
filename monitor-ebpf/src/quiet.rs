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
/// after it). Compared eight bytes at a time.
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
    let Some(buf) = scratch_words() else {
        return 0;
    };
    let at = at & AT_MASK;
    // The slot's name: the words after its 8-byte header.
    let name = dir.cast::<u64>().wrapping_add(1);
    for w in 0..WORDS_MAX {
        let k = w * 8;
        // Read again at each step: to the verifier a value from a map is any value, so the
        // steps' states do not carry a length range each (they did, and it was quadratic).
        // SAFETY: as above.
        let dir_len = u64::from(unsafe { core::ptr::read_volatile(&raw const (*dir).len) });
        if k >= dir_len {
            break;
        }
        // SAFETY: w < 31 words of the slot's QUIET_DIR_MAX-byte name.
        let expected = unsafe { *name.add(w as usize) };
        if (bytes_at(buf, at + k) ^ expected) & first_bytes(dir_len - k) != 0 {
            return 0;
        }
    }
    if len == dir_len || bytes_at(buf, at + dir_len) & 0xff == u64::from(b'/') {
        dir_len as i64
    } else {
        0
    }
}

/// 1 when no component of the `len` bytes at `at` of this CPU's scratch buffer starts with a
/// dot (`relative`: the first component starts at `at`; otherwise the bytes start with '/'),
/// and there are at most `QUIET_TAIL_MAX` of them; else 0. Eight bytes at a time: a '.' whose
/// byte before is a '/'.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn quiet_tail(at: u64, len: u64, relative: u64) -> i64 {
    if len > u64::from(QUIET_TAIL_MAX) {
        return 0;
    }
    let Some(buf) = scratch_words() else {
        return 0;
    };
    let at = at & AT_MASK;
    if len == 0 {
        return 1;
    }
    if relative != 0 && bytes_at(buf, at) & 0xff == u64::from(b'.') {
        return 0;
    }
    // The length goes through the scratch buffer's last word and is read back at each step,
    // as in quiet_prefix.
    let len_slot = buf.wrapping_add(SCRATCH_WORDS as usize - 1).cast_mut();
    // SAFETY: the last word of the scratch buffer, unused by the open program.
    unsafe { core::ptr::write_volatile(len_slot, len) };
    for w in 0..u64::from(QUIET_TAIL_MAX) / 8 {
        let k = w * 8;
        // SAFETY: as above.
        let len = unsafe { core::ptr::read_volatile(len_slot) };
        if k >= len {
            break;
        }
        // Byte j of `here` is byte k + j of the tail, byte j of `before` the one before it
        // (for k + j = 0: the byte before the tail, which is not a '/' of its own: the last of
        // the directory, or of the record before a relative path, tested above).
        let here = bytes_at(buf, at + k);
        let before = bytes_at(buf, (at + k).wrapping_sub(1));
        let hits = equal_bytes(here, b'.') & equal_bytes(before, b'/') & first_bytes(len - k);
        let hits = if k == 0 { hits & !0x80 } else { hits };
        if hits != 0 {
            return 0;
        }
    }
    1
}

/// Words of the longest quiet directory.
const WORDS_MAX: u64 = QUIET_DIR_MAX as u64 / 8;
/// Words of the scratch buffer, for masking word indices into it.
const SCRATCH_WORDS: u64 = (monitor_common::SCRATCH_SIZE / 8) as u64;

/// The eight bytes at byte `offset` of the (8-byte aligned) buffer `words`, whatever the
/// offset's alignment, from two aligned loads (LLVM's BPF backend would make eight one-byte
/// loads of an unaligned one): byte j of the result is byte `offset + j`.
#[inline(always)]
fn bytes_at(words: *const u64, offset: u64) -> u64 {
    // Paths lie in the first 8 KiB: masked to the first half, the word after is in bounds too.
    let i = (offset >> 3) & (SCRATCH_WORDS / 2 - 1);
    let shift = (offset & 7) * 8;
    // SAFETY: i + 1 <= SCRATCH_WORDS / 2: both words lie in the scratch buffer.
    let (low, high) = unsafe { (*words.add(i as usize), *words.add(i as usize + 1)) };
    // `high << (64 - shift)`, written so that a shift of 0 adds nothing (a BPF shift by 64 is
    // a shift by 0).
    (low >> shift) | ((high << 1) << (63 - shift))
}

/// 0x80 in each byte of `word` that is `byte`, 0 in the others (exact: no carries between
/// bytes).
#[inline(always)]
fn equal_bytes(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let v = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// A mask of the first `n` bytes of a word (all eight when `n` >= 8).
#[inline(always)]
fn first_bytes(n: u64) -> u64 {
    let n = if n >= 8 { 8 } else { n };
    u64::MAX >> (64 - n * 8)
}

/// This CPU's scratch buffer, where the open program assembles its record. Not
/// `output::scratch()` cast to words: through it, `sys_exit_open_family` verifies in 15,849
/// instructions instead of ~14,450.
#[inline(always)]
fn scratch_words() -> Option<*const u64> {
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    SCRATCH.get_ptr(cpu).map(|p| p.cast::<u64>())
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
