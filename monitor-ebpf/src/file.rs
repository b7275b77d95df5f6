//! File opens: openat, openat2, open, creat.
//!
//! The path pointer is stashed at sys_enter and read at sys_exit: at sys_enter the user page may
//! not be resident yet (tracepoints cannot sleep to fault it in), while by sys_exit the kernel
//! has copied the string itself. Successful opens also carry the absolute path of the file the
//! descriptor refers to (symlinks, `..`, dfd-relative and cwd-relative paths all resolved by the
//! kernel); failed relative opens carry the directory they were relative to.
//! Syscall tracepoint layout: `__syscall_nr` at 8, arguments from 16, `ret` at 16.
use crate::dispatch::{Enter, Exit};
use aya_ebpf::helpers::generated::{bpf_probe_read_user, bpf_probe_read_user_str};
use monitor_common::{OpenRecord, PATH_MAX, counter, flag, kind, syscall};

use crate::{
    kernel::{self, copy_walked, current_task, cwd_path, fd_path},
    maps::{OFFSETS, count_loss},
    output::{Task, current_tracked, header, scratch, submit},
    pending::{PENDING, Pending, arg, stash},
};

const AT_FDCWD: i32 = -100;
const O_CREAT: u64 = 0o100;
const O_WRONLY: u64 = 0o1;
const O_TRUNC: u64 = 0o1000;

crate::syscall_program!(sys_enter_openat, "sys_enter_openat", exit = false, |ctx| {
    // (int dfd, const char *filename, int flags, umode_t mode)
    let _ = stash(ctx, syscall::OPENAT, 4);
});

crate::syscall_program!(
    sys_enter_openat2,
    "sys_enter_openat2",
    exit = false,
    |ctx| {
        // (int dfd, const char *filename, struct open_how *how, size_t usize)
        let _ = stash(ctx, syscall::OPENAT2, 3);
    }
);

crate::syscall_program!(sys_enter_open, "sys_enter_open", exit = false, |ctx| {
    // (const char *filename, int flags, umode_t mode)
    let _ = stash(ctx, syscall::OPEN, 3);
});

crate::syscall_program!(sys_enter_creat, "sys_enter_creat", exit = false, |ctx| {
    // (const char *pathname, umode_t mode)
    let _ = stash(ctx, syscall::CREAT, 2);
});

crate::syscall_program!(
    sys_enter_open_by_handle_at,
    "sys_enter_open_by_handle_at",
    exit = false,
    |ctx| {
        // (int mountdirfd, struct file_handle *handle, int flags)
        let _ = stash(ctx, syscall::OPEN_BY_HANDLE_AT, 3);
    }
);

/// Stashes the names of a rename/link/symlink as (new dfd, new name, old dfd, old name):
/// `dfd_arg` is the argument index of the new name's directory descriptor (None: relative to
/// the working directory), `name_arg` that of the new name; `old` the same for the old name of
/// a rename or link (None for symlink, whose "old name" is only the link's text).
#[inline(always)]
fn stash_new_name(
    ctx: &Enter,
    syscall: u32,
    dfd_arg: Option<usize>,
    name_arg: usize,
    old: Option<(Option<usize>, usize)>,
) -> Option<()> {
    let task = current_tracked()?;
    let dfd_at = |i: Option<usize>| match i {
        // SAFETY: syscall tracepoint records hold their arguments at fixed offsets.
        Some(i) => unsafe { ctx.read_at::<u64>(arg(i)) }.unwrap_or(AT_FDCWD as u64),
        None => AT_FDCWD as i64 as u64,
    };
    // SAFETY: as above.
    let name: u64 = unsafe { ctx.read_at(arg(name_arg)) }.ok()?;
    let (old_dfd, old_name) = match old {
        // SAFETY: as above.
        Some((d, n)) => (dfd_at(d), unsafe { ctx.read_at(arg(n)) }.unwrap_or(0)),
        None => (0, 0),
    };
    let pending = Pending {
        syscall,
        _pad: 0,
        args: [dfd_at(dfd_arg), name, old_dfd, old_name],
    };
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(counter::PENDING_FULL);
    }
    Some(())
}

crate::syscall_program!(sys_enter_rename, "sys_enter_rename", exit = false, |ctx| {
    // (const char *oldname, const char *newname)
    let _ = stash_new_name(ctx, syscall::RENAME, None, 1, Some((None, 0)));
});

crate::syscall_program!(
    sys_enter_renameat,
    "sys_enter_renameat",
    exit = false,
    |ctx| {
        // (int olddfd, const char *oldname, int newdfd, const char *newname)
        let _ = stash_new_name(ctx, syscall::RENAME, Some(2), 3, Some((Some(0), 1)));
    }
);

crate::syscall_program!(
    sys_enter_renameat2,
    "sys_enter_renameat2",
    exit = false,
    |ctx| {
        // (int olddfd, const char *oldname, int newdfd, const char *newname, unsigned int flags)
        let _ = stash_new_name(ctx, syscall::RENAME, Some(2), 3, Some((Some(0), 1)));
    }
);

crate::syscall_program!(sys_enter_link, "sys_enter_link", exit = false, |ctx| {
    // (const char *oldname, const char *newname)
    let _ = stash_new_name(ctx, syscall::LINK, None, 1, Some((None, 0)));
});

crate::syscall_program!(sys_enter_linkat, "sys_enter_linkat", exit = false, |ctx| {
    // (int olddfd, const char *oldname, int newdfd, const char *newname, int flags)
    let _ = stash_new_name(ctx, syscall::LINK, Some(2), 3, Some((Some(0), 1)));
});

crate::syscall_program!(
    sys_enter_symlink,
    "sys_enter_symlink",
    exit = false,
    |ctx| {
        // (const char *oldname, const char *newname)
        let _ = stash_new_name(ctx, syscall::SYMLINK, None, 1, None);
    }
);

crate::syscall_program!(
    sys_enter_symlinkat,
    "sys_enter_symlinkat",
    exit = false,
    |ctx| {
        // (const char *oldname, int newdfd, const char *newname)
        let _ = stash_new_name(ctx, syscall::SYMLINK, Some(1), 2, None);
    }
);

crate::syscall_program!(
    /// The exit of openat, openat2, open and creat: one program attached to the four tracepoints
    /// (the stash says which syscall it was), so the verifier checks it once.
    sys_exit_open_family,
    "sys_exit_openat",
    exit = true,
    |ctx| {
        let _ = open_exit(ctx);
    }
);

const HDR: usize = size_of::<OpenRecord>();

/// The syscall and its arguments, from the registers the syscall was entered with (x86_64):
/// they are still in the task's saved `pt_regs` at sys_exit (only `ax` holds the result by
/// then), so opens need no sys_enter program and no `PENDING` entry, which were about a third
/// of the sensor's cost per open. The arguments are normalised as the stash would have them.
/// Compat (32-bit) syscalls never reach the syscall tracepoints, so the numbers are x86_64's.
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
fn exit_args(ctx: &Exit, _task: &crate::output::Task) -> Option<Pending> {
    use aya_ebpf::{
        bindings::pt_regs,
        helpers::generated::{bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_task_pt_regs},
    };
    use core::mem::offset_of;
    // SAFETY: syscall exit records hold `int __syscall_nr` at offset 8.
    let nr: i32 = unsafe { ctx.read_at(8) }.ok()?;
    // r10, r9, r8, ax, cx, dx, si, di: the argument registers are the last of these window.
    const FIRST: usize = offset_of!(pt_regs, r10);
    const WORDS: usize = (offset_of!(pt_regs, rdi) - FIRST) / 8 + 1;
    let mut regs = [0u64; WORDS];
    // SAFETY: pt_regs of the current task is valid kernel memory; the helper checks the read.
    let ret = unsafe {
        let base = bpf_task_pt_regs(bpf_get_current_task_btf()) as u64;
        bpf_probe_read_kernel(
            regs.as_mut_ptr().cast(),
            (WORDS * 8) as u32,
            (base + FIRST as u64) as *const _,
        )
    };
    if ret < 0 {
        return None;
    }
    let reg = |field: usize| regs[(field - FIRST) / 8];
    let a = [
        reg(offset_of!(pt_regs, rdi)),
        reg(offset_of!(pt_regs, rsi)),
        reg(offset_of!(pt_regs, rdx)),
        reg(offset_of!(pt_regs, r10)),
    ];
    let cwd = AT_FDCWD as i64 as u64;
    let (syscall, args) = match nr {
        257 => (syscall::OPENAT, a),
        437 => (syscall::OPENAT2, a),
        2 => (syscall::OPEN, a),
        85 => (syscall::CREAT, a),
        304 => (syscall::OPEN_BY_HANDLE_AT, a),
        // rename/link/symlink as (new dfd, new name, old dfd, old name).
        82 => (syscall::RENAME, [cwd, a[1], cwd, a[0]]),
        264 | 316 => (syscall::RENAME, [a[2], a[3], a[0], a[1]]),
        86 => (syscall::LINK, [cwd, a[1], cwd, a[0]]),
        265 => (syscall::LINK, [a[2], a[3], a[0], a[1]]),
        88 => (syscall::SYMLINK, [cwd, a[1], 0, 0]),
        266 => (syscall::SYMLINK, [a[1], a[2], 0, 0]),
        _ => return None,
    };
    Some(Pending {
        syscall,
        _pad: 0,
        args,
    })
}

/// Elsewhere the arguments come from the stash the sys_enter programs left.
#[cfg(not(bpf_target_arch = "x86_64"))]
#[inline(always)]
fn exit_args(_ctx: &Exit, task: &crate::output::Task) -> Option<Pending> {
    crate::pending::take_pending(task.pid_tgid)
}

fn open_exit(ctx: &Exit) -> Option<()> {
    let task = current_tracked()?;
    let p = exit_args(ctx, &task)?;
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    report_open(&task, &p, ret, 0)
}

crate::syscall_program!(
    /// The old name of a rename or link, reported as an access to that file: a hard link to (or a
    /// move of) `~/.ssh/id_rsa` makes its contents readable under a name nobody watches. A program
    /// of its own on the rename and link exits, beside `sys_exit_open_family` (which reports the new
    /// name): one program reporting both paths takes the verifier ten times as long.
    /// x86_64 only (it reads the arguments from the saved registers, as `exit_args` does).
    #[cfg(bpf_target_arch = "x86_64")]
    sys_exit_link_source,
    "sys_exit_rename",
    exit = true,
    |ctx| {
        let _ = link_source(ctx);
        // Then the new name, by the open family's program.
        ctx.continue_exit(crate::dispatch::LINK_NEW_SLOT);
    }
);

#[cfg(bpf_target_arch = "x86_64")]
fn link_source(ctx: &Exit) -> Option<()> {
    let task = current_tracked()?;
    let p = exit_args(ctx, &task)?;
    let syscall = match p.syscall {
        syscall::RENAME => syscall::RENAME_SOURCE,
        syscall::LINK => syscall::LINK_SOURCE,
        _ => return None,
    };
    let source = Pending {
        syscall,
        _pad: 0,
        args: [p.args[2], p.args[3], 0, 0],
    };
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    report_open(&task, &source, ret, 0)
}

/// Sends the `OpenRecord` of an open-family syscall (`p`: the syscall and its arguments) that
/// returned `ret`, with `extra` record flags.
#[inline(always)]
pub fn report_open(task: &Task, p: &Pending, ret: i64, extra: u32) -> Option<()> {
    // The argument layout per syscall.
    let (dfd, path_ptr, open_flags, mode) = match p.syscall {
        syscall::OPENAT => (p.args[0] as i32, p.args[1], p.args[2], p.args[3]),
        syscall::OPENAT2 => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }
            let mut how = [0u64; 2];
            // SAFETY: the helper checks the user address; `how` has room for 16 bytes.
            unsafe { bpf_probe_read_user(how.as_mut_ptr().cast(), 16, p.args[2] as *const _) };
            (p.args[0] as i32, p.args[1], how[0], how[1])
        }
        syscall::OPEN => (AT_FDCWD, p.args[0], p.args[1], p.args[2]),
        syscall::CREAT => (AT_FDCWD, p.args[0], O_CREAT | O_WRONLY | O_TRUNC, p.args[1]),
        // No path: the handle names the file; the returned descriptor resolves it.
        syscall::OPEN_BY_HANDLE_AT => (p.args[0] as i32, 0, p.args[2], 0),
        // The new name of rename/link/symlink: a write there, whatever the data's origin.
        syscall::RENAME | syscall::LINK | syscall::SYMLINK => {
            (p.args[0] as i32, p.args[1], O_CREAT | O_WRONLY, 0)
        }
        // The old name of a rename or link: access to that file.
        syscall::RENAME_SOURCE | syscall::LINK_SOURCE => (p.args[0] as i32, p.args[1], 0, 0),
        _ => return None,
    };
    // What the syscall returns on success: a descriptor of the opened file, or 0.
    let ret_is_fd = !matches!(
        p.syscall,
        syscall::RENAME
            | syscall::LINK
            | syscall::SYMLINK
            | syscall::RENAME_SOURCE
            | syscall::LINK_SOURCE
    );
    let o = OFFSETS.load();
    let buf = scratch()?;
    let mut flags = extra;

    // SAFETY: destination is scratch[HDR..HDR + PATH_MAX]; the helper checks the source.
    let n = unsafe {
        bpf_probe_read_user_str(buf.add(HDR).cast(), PATH_MAX as u32, path_ptr as *const _)
    };
    let path_len = if n > 0 {
        (n - 1) as u32 & (PATH_MAX as u32 - 1)
    } else {
        flags |= flag::PATH_UNREADABLE;
        0
    };
    // SAFETY: HDR < scratch size.
    let first = unsafe { *buf.add(HDR) };
    // A failed read in a quiet directory is counted, not sent (quiet.rs): an absolute path is
    // judged as it is, a relative one once its starting directory is walked.
    let quiet = crate::quiet::candidate(p.syscall, open_flags, ret, extra) && path_len > 0;
    if quiet
        && first == b'/'
        && crate::quiet::quiet_failure(HDR as u64, u64::from(path_len), 0, 0) == 1
        && crate::quiet::count(task.tgid)
    {
        return Some(());
    }

    let tsk = current_task();
    let resolve = if ret >= 0 && ret_is_fd {
        flags |= flag::RESOLVED_IS_TARGET;
        fd_path(tsk, ret as u64, &o)
    } else if path_len > 0 && first != b'/' {
        flags |= flag::RESOLVED_IS_BASE;
        if dfd == AT_FDCWD {
            cwd_path(tsk, &o)
        } else {
            fd_path(tsk, dfd as u32 as u64, &o)
        }
    } else {
        None
    };
    // A protected secret under whatever name: only the object a descriptor refers to has a
    // known identity (a failed open opened nothing). Parked in the record's place in the
    // scratch buffer (the walk writes past the fixed part), not on the stack, which holds
    // nothing more across the walk.
    let protected = match resolve {
        Some(path) if flags & flag::RESOLVED_IS_TARGET != 0 => {
            crate::protected::protected(path.dentry, o.dentry_d_inode, o.dentry_d_sb)
        }
        _ => 0,
    };
    let rec = buf.cast::<OpenRecord>();
    // SAFETY: the scratch buffer is at least HDR bytes long.
    unsafe { core::ptr::addr_of_mut!((*rec).protected).write_unaligned(protected) };
    let off = HDR + path_len as usize;
    let mut resolved_len = 0;
    let mut magic = 0;
    if let Some(path) = resolve
        && let Some((pbuf, start, wflags)) = kernel::walk(path, &o)
    {
        magic = kernel::fs_magic(path, &o);
        flags |= wflags;
        // SAFETY: off <= HDR + PATH_MAX - 1, so PATH_MAX more bytes fit in the scratch buffer.
        resolved_len = unsafe { copy_walked(buf.add(off & 0x1fff), pbuf, start) };
    } else {
        flags &= !(flag::RESOLVED_IS_TARGET | flag::RESOLVED_IS_BASE);
    }
    if quiet
        && flags & (flag::RESOLVED_IS_BASE | flag::RESOLVED_TRUNCATED) == flag::RESOLVED_IS_BASE
        && resolved_len > 0
        && crate::quiet::quiet_failure(
            HDR as u64,
            u64::from(path_len),
            (off & 0x1fff) as u64,
            u64::from(resolved_len),
        ) == 1
        && crate::quiet::count(task.tgid)
    {
        return Some(());
    }
    let total = (off & 0x1fff) + (resolved_len as usize & (PATH_MAX - 1));

    // The fixed part is written field by field into the scratch buffer, not built on the
    // stack and copied: the stack of the open programs is at its limit. `protected` is in
    // place already.
    let callers = crate::macros::callers(task.tgid);
    // SAFETY: the scratch buffer is at least HDR bytes long; unaligned writes of each field.
    unsafe {
        core::ptr::addr_of_mut!((*rec).header).write_unaligned(header(
            kind::OPEN,
            total as u32,
            task,
        ));
        core::ptr::addr_of_mut!((*rec).syscall).write_unaligned(p.syscall);
        core::ptr::addr_of_mut!((*rec).dfd).write_unaligned(dfd);
        core::ptr::addr_of_mut!((*rec).open_flags).write_unaligned(open_flags as u32);
        core::ptr::addr_of_mut!((*rec).mode).write_unaligned(mode as u32);
        core::ptr::addr_of_mut!((*rec).result).write_unaligned(ret);
        core::ptr::addr_of_mut!((*rec).flags).write_unaligned(flags);
        core::ptr::addr_of_mut!((*rec).path_len).write_unaligned(path_len);
        core::ptr::addr_of_mut!((*rec).resolved_len).write_unaligned(resolved_len);
        core::ptr::addr_of_mut!((*rec).fs_magic).write_unaligned(magic);
        core::ptr::addr_of_mut!((*rec).callers).write_unaligned(callers);
    }
    submit(buf, total, crate::output::lazy());
    // --enforce: after the record, so that the act is reported before the kill. Still before
    // the return to user mode, so a secret is never read and an append never written. Not for
    // 32-bit opens (`compat::sys_exit_compat` has no stack left for the call): the first 32-bit
    // call of crate code kills at its entry (`enforce_kill::sys_enter_compat_kill`).
    if crate::enforce_kill::enforcing()
        && extra & flag::COMPAT == 0
        && let Some(path) = resolve
        && flags & flag::RESOLVED_IS_TARGET != 0
    {
        crate::enforce_kill::after_open(p.syscall, open_flags, protected, path.dentry, &o, callers);
    }
    Some(())
}
