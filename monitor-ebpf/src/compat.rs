//! 32-bit system calls: `int 0x80` (or sysenter) from a 64-bit process, or any call of a 32-bit
//! program. The `syscalls:` tracepoints skip them (the kernel's ftrace syscall events ignore
//! compat calls), so a build script could open `~/.ssh/id_rsa` through `int 0x80` unseen.
//!
//! The raw `sys_exit` tracepoint fires for every system call, compat ones included, with the
//! task's registers; its dispatcher (`dispatch.rs`) sends a tracked process's compat calls here.
//! For a tracked process in a compat call (`TS_COMPAT` set in its thread_info
//! for the length of the call) it reports the first use of each call number per process image
//! (`CompatRecord`, a finding of its own), and opens in full (an `OpenRecord` flagged
//! `COMPAT`, resolved like any other), so what was read is checked like any other read.
//! Network through compat calls needs nothing here: the cgroup hooks see every connection.
//!
//! x86_64 only.
use core::mem::offset_of;

use aya_ebpf::{
    bindings::pt_regs, helpers::generated::bpf_probe_read_kernel, macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use monitor_common::{CompatRecord, counter, flag, kind, syscall};

use crate::{
    file::report_open,
    maps::{COMPAT_SEEN, EVENTS, count_loss},
    output::{current_tracked, header, in_compat_syscall},
    pending::Pending,
};

const AT_FDCWD: u64 = -100i64 as u64;

/// The window of x86_64's `struct pt_regs` read: from `bx` to `orig_ax` (bx r11 r10 r9 r8 ax
/// cx dx si di orig_ax); the i386 ABI passes arguments in ebx, ecx, edx, esi, edi, ebp.
const REGS_FIRST: usize = offset_of!(pt_regs, rbx);
const REGS_WORDS: usize = (offset_of!(pt_regs, orig_rax) - REGS_FIRST) / 8 + 1;
const BX: usize = 0;
const CX: usize = (offset_of!(pt_regs, rcx) - REGS_FIRST) / 8;
const DX: usize = (offset_of!(pt_regs, rdx) - REGS_FIRST) / 8;
const SI: usize = (offset_of!(pt_regs, rsi) - REGS_FIRST) / 8;
const ORIG_AX: usize = REGS_WORDS - 1;

/// `sys_exit(struct pt_regs *regs, long ret)` of a 32-bit call of a tracked process: the
/// dispatcher (`dispatch::raw_sys_exit`) tail-calls this program (`COMPAT_SLOT`).
#[raw_tracepoint]
pub fn sys_exit_compat(ctx: RawTracePointContext) -> i32 {
    let _ = try_exit(&ctx);
    0
}

#[inline(always)]
fn try_exit(ctx: &RawTracePointContext) -> Option<()> {
    if !in_compat_syscall() {
        return None;
    }
    let task = current_tracked()?;
    let regs_ptr: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    let mut regs = [0u64; REGS_WORDS];
    // SAFETY: the tracepoint's pt_regs pointer; the helper checks the read.
    let r = unsafe {
        bpf_probe_read_kernel(
            regs.as_mut_ptr().cast(),
            (REGS_WORDS * 8) as u32,
            (regs_ptr + REGS_FIRST as u64) as *const _,
        )
    };
    if r < 0 {
        return None;
    }
    // 32-bit arguments: the registers' low halves.
    let arg = |i: usize| regs[i] & 0xffff_ffff;
    let nr = regs[ORIG_AX] as u32;
    if first_use(task.tgid, nr) {
        // Written in the ring buffer, not built on the stack and copied: the stack of this
        // program is near its limit (the proc-macro scan's frames come on top of it).
        if let Some(mut entry) = EVENTS.reserve::<CompatRecord>(0) {
            let rec = entry.as_mut_ptr();
            // SAFETY: `rec` is a reserved CompatRecord, exclusively ours; every field is
            // written before submit.
            unsafe {
                (*rec).header = header(kind::COMPAT, size_of::<CompatRecord>() as u32, &task);
                (*rec).nr = nr;
                (*rec).callers = crate::macros::callers(task.tgid);
                (*rec).result = ret;
                (*rec).args = [arg(BX), arg(CX), arg(DX), arg(SI)];
            }
            entry.submit(crate::output::URGENT);
        } else {
            count_loss(counter::RINGBUF_FULL);
        }
    }
    if let Some(p) = open_args(nr, [arg(BX), arg(CX), arg(DX), arg(SI)]) {
        // The new name only for rename/link (a second path walk would take this program past
        // the verifier's limits); the call itself is a compat-syscall finding in any case.
        report_open(&task, &p, ret, flag::COMPAT);
    }
    Some(())
}

/// Whether this is the process image's first call numbered `nr` (numbers past 511 are always
/// reported).
#[inline(always)]
fn first_use(tgid: u32, nr: u32) -> bool {
    if nr >= 512 {
        return true;
    }
    let word = (nr / 64) as usize & 7;
    let bit = 1u64 << (nr % 64);
    if let Some(seen) = COMPAT_SEEN.get_ptr_mut(tgid) {
        // SAFETY: the pointer comes from a successful lookup; only this process's threads write
        // it, and a race between two of them at worst reports a number twice.
        unsafe {
            if (*seen)[word] & bit != 0 {
                return false;
            }
            (*seen)[word] |= bit;
        }
        return true;
    }
    let mut seen = [0u64; 8];
    seen[word] = bit;
    let _ = COMPAT_SEEN.insert(tgid, seen, 0);
    true
}

/// The open-family calls of the i386 table, as the 64-bit exit handler would stash them.
#[inline(always)]
fn open_args(nr: u32, a: [u64; 4]) -> Option<Pending> {
    // Directory descriptors are 32-bit ints: sign-extend (AT_FDCWD is -100).
    let dfd = |v: u64| v as u32 as i32 as i64 as u64;
    let (syscall, args) = match nr {
        5 => (syscall::OPEN, a),
        8 => (syscall::CREAT, a),
        295 => (syscall::OPENAT, [dfd(a[0]), a[1], a[2], a[3]]),
        437 => (syscall::OPENAT2, [dfd(a[0]), a[1], a[2], a[3]]),
        342 => (syscall::OPEN_BY_HANDLE_AT, [dfd(a[0]), a[1], a[2], a[3]]),
        38 => (syscall::RENAME, [AT_FDCWD, a[1], AT_FDCWD, a[0]]),
        302 | 353 => (syscall::RENAME, [dfd(a[2]), a[3], dfd(a[0]), a[1]]),
        9 => (syscall::LINK, [AT_FDCWD, a[1], AT_FDCWD, a[0]]),
        303 => (syscall::LINK, [dfd(a[2]), a[3], dfd(a[0]), a[1]]),
        83 => (syscall::SYMLINK, [AT_FDCWD, a[1], 0, 0]),
        304 => (syscall::SYMLINK, [dfd(a[1]), a[2], 0, 0]),
        _ => return None,
    };
    Some(Pending {
        syscall,
        _pad: 0,
        args,
    })
}
