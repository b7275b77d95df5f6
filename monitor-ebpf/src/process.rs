//! Process lifecycle: fork (adds the child to the tracked set), exec, exit.
use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_current_pid_tgid, generated::bpf_probe_read_user},
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use monitor_common::{
    ARGV_MAX, ENV_MAX, ExecRecord, ExitRecord, ForkRecord, GROUP_PROC_MACRO, GROUP_RUSTC,
    GROUP_UNKNOWN, PATH_MAX, counter, flag, kind,
};

use crate::{
    kernel::{self, copy_walked, current_task, cwd_path, exe_path, read},
    macros,
    maps::{COMPAT_SEEN, CRATE_PROCS, OFFSETS, TRACKED, URING_OPS, count_loss},
    output::{Task, current_tracked, header, scratch, submit, submit_record},
    pending::PENDING,
};

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`, as a raw
/// tracepoint so that the child's task_struct is at hand: its tgid tells a new process from a new
/// thread. The parent recorded is the task that called fork/clone, whatever `CLONE_PARENT` or a
/// later re-parenting makes of `real_parent`.
/// <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/sched.h>
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let _ = try_fork(&ctx);
    0
}

fn try_fork(ctx: &RawTracePointContext) -> Option<()> {
    let task = current_tracked()?;
    let o = OFFSETS.load();
    let child: u64 = ctx.arg(1);
    let child_tgid: u32 = read(child, o.task_tgid)?;
    if child_tgid == task.tgid {
        // A new thread of a tracked process: covered by the tgid.
        return None;
    }
    if TRACKED
        .insert(child_tgid, monitor_common::tracked::FORKED, 0)
        .is_err()
    {
        count_loss(counter::TRACK_FULL);
        return None;
    }
    crate::privilege::inherit(task.tgid, child_tgid);
    let callers = macros::callers(task.tgid);
    // Crate code stays crate code in its children; a child a proc-macro started in rustc is
    // the proc-macro's (GROUP_PROC_MACRO), not rustc's own.
    // SAFETY: the value is copied out.
    if let Some(group) = unsafe { CRATE_PROCS.get(task.tgid) }.copied() {
        let group = if group == GROUP_RUSTC && callers != 0 {
            GROUP_PROC_MACRO
        } else {
            group
        };
        let _ = CRATE_PROCS.insert(child_tgid, group, 0);
    }
    let record = ForkRecord {
        header: header(kind::FORK, size_of::<ForkRecord>() as u32, &task),
        child_tgid,
        parent_tgid: task.tgid,
        callers,
        _pad: 0,
    };
    submit_record(&record, crate::output::lifecycle());
    Some(())
}

/// `sched_process_exec`: a successful exec. The filename comes from the tracepoint record
/// (kernel memory); argv and the environment from the new image's stack, which the kernel has
/// just written and which is therefore resident.
/// <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/sched.h>
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> i32 {
    let root = crate::guard::adopt();
    let mut held = false;
    let _ = try_exec(&ctx, root, &mut held);
    crate::guard::hold_until_hooks(held);
    // After the exec record, so that the privileged image is known when its finding arrives.
    if current_tracked().is_some() {
        let _ = crate::privilege::check_exec(&OFFSETS.load());
        crate::enforce_kill::after_exec(&OFFSETS.load());
    }
    0
}

const HDR: usize = size_of::<ExecRecord>();

/// `held`: set when kill mode stopped the process (a new build script).
fn try_exec(ctx: &TracePointContext, guard_root: bool, held: &mut bool) -> Option<()> {
    let task = current_tracked()?;
    let o = OFFSETS.load();
    let buf = scratch()?;
    // SAFETY: reading the tracepoint record at offsets taken from its format file.
    let loc: u32 = unsafe { ctx.read_at(o.tp_exec_filename as usize) }.ok()?;
    // SAFETY: as above.
    let old_tid: u32 =
        unsafe { ctx.read_at(o.tp_exec_old_pid as usize) }.unwrap_or(task.tid as i32 as u32);
    let mut flags = if guard_root { flag::GUARD_ROOT } else { 0 };

    // Filename, as passed to exec.
    let src = (ctx.as_ptr() as u64 + (loc & 0xffff) as u64) as *const u8;
    // SAFETY: destination is scratch[HDR..HDR + PATH_MAX]; the helper checks the source.
    let n = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(
            buf.add(HDR).cast(),
            PATH_MAX as u32,
            src.cast(),
        )
    };
    let filename_len = if n > 0 {
        (n - 1) as u32 & (PATH_MAX as u32 - 1)
    } else {
        0
    };
    // SAFETY: the filename is in scratch[HDR..HDR + filename_len], with PATH_MAX bytes of room.
    let rustc = unsafe { is_rustc(buf.add(HDR), filename_len) };
    macros::mark_rustc(task.tgid, rustc);
    // A new image: its io_uring operations and 32-bit calls are reported afresh.
    let _ = URING_OPS.remove(task.tgid);
    let _ = COMPAT_SEEN.remove(task.tgid);
    // Crate code, for enforcement: decided here, in the kernel, so that there is no window in
    // which a new build script runs unknown to the cgroup hooks.
    // SAFETY: as above.
    if rustc || unsafe { is_build_script(buf.add(HDR), filename_len) } {
        // SAFETY: only tested for presence.
        if unsafe { CRATE_PROCS.get(task.tgid) }.is_none() {
            let group = if rustc { GROUP_RUSTC } else { GROUP_UNKNOWN };
            let _ = CRATE_PROCS.insert(task.tgid, group, 0);
            // Enforcing: a new build script is held (stopped before its first instruction)
            // until userspace has put it in its crate's group and continues it, so that a
            // build script its profile allows to connect is not refused for connecting first.
            if !rustc && crate::maps::ENFORCE.load() != 0 {
                // SAFETY: plain helper call; it signals the current process.
                unsafe { aya_ebpf::helpers::bpf_send_signal(SIGSTOP) };
                *held = true;
            }
        }
    }
    let mut off = HDR + filename_len as usize;

    // The executable's absolute path, as the kernel resolved it, and the working directory
    // (relative paths in argv, e.g. rustc's source file, are relative to it).
    let tsk = current_task();
    let mut resolved_len = 0u32;
    let mut magic = 0;
    if let Some(path) = exe_path(tsk, &o)
        && let Some((pbuf, start, wflags)) = kernel::walk(path, &o)
    {
        magic = kernel::fs_magic(path, &o);
        if kernel::unlinked(path, &o) {
            flags |= flag::EXE_DELETED;
        }
        flags |= wflags | flag::RESOLVED_IS_TARGET;
        // SAFETY: off <= HDR + PATH_MAX, so PATH_MAX more bytes fit in the scratch buffer.
        resolved_len = unsafe { copy_walked(buf.add(off & 0x1fff), pbuf, start) };
    }
    // SAFETY: the scratch buffer is at least HDR bytes long; its header is written last.
    let resolved_len = unsafe { opaque_in_header(buf, resolved_len) };
    off = (off & 0x1fff) + (resolved_len as usize & (PATH_MAX - 1));
    let mut cwd_len = 0u32;
    if let Some(path) = cwd_path(tsk, &o)
        && let Some((pbuf, start, wflags)) = kernel::walk(path, &o)
    {
        flags |= wflags;
        // SAFETY: off <= 0x1fff + PATH_MAX, so PATH_MAX more bytes fit in the scratch buffer.
        cwd_len = unsafe { copy_walked(buf.add(off & 0x3fff), pbuf, start) };
    }
    // SAFETY: as above.
    let cwd_len = unsafe { opaque_in_header(buf, cwd_len) };
    off = (off & 0x3fff) + (cwd_len as usize & (PATH_MAX - 1));

    // argv and environment from the new mm. The masks keep every offset and length visibly
    // bounded for the verifier: off <= 0x7fff, argv < ARGV_MAX, env < ENV_MAX, so the record
    // ends below 0x7fff + 32767 + 65535 < SCRATCH_SIZE.
    let mm: u64 = read(tsk, o.task_mm)?;
    let off = off & 0x7fff;
    // SAFETY: off <= 0x7fff and at most ARGV_MAX - 1 bytes are written after it.
    let argv_len = unsafe {
        copy_user_block(
            buf.add(off),
            read(mm, o.mm_arg_start)?,
            read(mm, o.mm_arg_end)?,
            ARGV_MAX as u32 - 1,
            flag::ARGV_TRUNCATED,
            &mut flags,
        )
    };
    // SAFETY: the scratch buffer is at least HDR bytes long; its header is written last.
    let argv_len = unsafe { opaque_in_header(buf, argv_len) };
    let off = off + (argv_len & (ARGV_MAX as u32 - 1)) as usize;
    // SAFETY: off < 0x7fff + ARGV_MAX and at most ENV_MAX - 1 bytes are written after it.
    let env_len = unsafe {
        copy_user_block(
            buf.add(off & 0xffff),
            read(mm, o.mm_env_start)?,
            read(mm, o.mm_env_end)?,
            ENV_MAX as u32 - 1,
            flag::ENV_TRUNCATED,
            &mut flags,
        )
    };
    // SAFETY: as above.
    let env_len = unsafe { opaque_in_header(buf, env_len) };
    let total = (off & 0xffff) + (env_len & (ENV_MAX as u32 - 1)) as usize;

    let record = ExecRecord {
        header: header(kind::EXEC, total as u32, &task),
        old_tid,
        flags,
        filename_len,
        resolved_len,
        cwd_len,
        argv_len,
        env_len,
        fs_magic: magic,
    };
    // SAFETY: the scratch buffer is at least HDR bytes long.
    unsafe { core::ptr::write_unaligned(buf.cast::<ExecRecord>(), record) };
    submit(buf, total, crate::output::URGENT);
    Some(())
}

const SIGSTOP: u32 = 19;

/// `v`, written to the record's header (in the scratch map value, written for real last) and
/// read back: the verifier then knows it as some value in its masked range, not as one of the
/// exact lengths `copy_user_block`'s branches end with, so that the record's tail (bounded by
/// the masks) is checked once instead of once per combination (as `kernel::opaque` does for the
/// path walk). With the resolved path's and the working directory's lengths too,
/// sched_process_exec's verification went from 15,578 instructions to 3,170.
///
/// # Safety
/// `buf` must be the scratch buffer (at least 4 bytes).
#[inline(always)]
unsafe fn opaque_in_header(buf: *mut u8, v: u32) -> u32 {
    // SAFETY: the caller's: 4 bytes at the start of the scratch buffer.
    unsafe {
        let slot = buf.cast::<u32>();
        core::ptr::write_volatile(slot, v);
        core::ptr::read_volatile(slot)
    }
}

/// Whether the `len`-byte filename at `name` is a cargo build script binary
/// (`.../build-script-build`: cargo names every build script binary so).
///
/// # Safety
/// `name` must point at PATH_MAX readable bytes.
#[inline(always)]
unsafe fn is_build_script(name: *const u8, len: u32) -> bool {
    const SUFFIX: &[u8; 19] = b"/build-script-build";
    let len = len as usize & (PATH_MAX - 1);
    if len < SUFFIX.len() {
        return false;
    }
    let start = len - SUFFIX.len();
    let mut i = 0;
    while i < SUFFIX.len() {
        // SAFETY: (start + i) < len < PATH_MAX.
        if unsafe { *name.add((start + i) & (PATH_MAX - 1)) } != SUFFIX[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether the `len`-byte filename at `name` is `rustc` or ends in `/rustc`.
///
/// # Safety
/// `name` must point at PATH_MAX readable bytes.
#[inline(always)]
unsafe fn is_rustc(name: *const u8, len: u32) -> bool {
    const RUSTC: &[u8; 6] = b"/rustc";
    let len = len as usize & (PATH_MAX - 1);
    if len < 5 {
        return false;
    }
    let mut i = 0;
    while i < 5 {
        // SAFETY: (len - 5 + i) < PATH_MAX.
        if unsafe { *name.add((len - 5 + i) & (PATH_MAX - 1)) } != RUSTC[i + 1] {
            return false;
        }
        i += 1;
    }
    // SAFETY: as above.
    len == 5 || unsafe { *name.add((len - 6) & (PATH_MAX - 1)) } == b'/'
}

/// Copies the user memory block `[start, end)`, at most `mask` bytes (`mask` is a power of two
/// minus one), to `dst`; returns how many bytes were copied.
///
/// # Safety
/// `dst` must have room for `mask` bytes.
#[inline(always)]
unsafe fn copy_user_block(
    dst: *mut u8,
    start: u64,
    end: u64,
    mask: u32,
    truncated_flag: u32,
    flags: &mut u32,
) -> u32 {
    if end <= start {
        return 0;
    }
    let mut len = end - start;
    if len > mask as u64 {
        len = mask as u64;
        *flags |= truncated_flag;
    }
    let len = (len as u32) & mask;
    // SAFETY: the caller guarantees room for `mask` bytes; the helper checks the source.
    let ret = unsafe { bpf_probe_read_user(dst.cast(), len, start as *const _) };
    if ret < 0 { 0 } else { len }
}

/// `sched_process_exit`: a thread exited. Reported (and the process untracked) when it was the
/// last thread of its process.
/// <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/sched.h>
#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(ctx: TracePointContext) -> i32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &TracePointContext) -> Option<()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    // A thread that dies inside a syscall never reaches sys_exit: drop its stash.
    let _ = PENDING.remove(pid_tgid);
    let task: Task = current_tracked()?;
    let o = OFFSETS.load();
    let group_dead = if o.tp_exit_group_dead != 0 {
        // SAFETY: offset from the tracepoint's format file.
        unsafe { ctx.read_at::<u8>(o.tp_exit_group_dead as usize) }.ok()? != 0
    } else {
        task.tgid == task.tid
    };
    if !group_dead {
        return None;
    }
    let exit_code: u32 = read(current_task(), o.task_exit_code).unwrap_or(0);
    let _ = TRACKED.remove(task.tgid);
    macros::forget(task.tgid);
    let _ = CRATE_PROCS.remove(task.tgid);
    let _ = URING_OPS.remove(task.tgid);
    let _ = COMPAT_SEEN.remove(task.tgid);
    // Killed while held: its pid must not be continued once reused.
    let _ = crate::guard::HOOK_HELD.remove(task.tgid);
    crate::privilege::forget(task.tgid);
    let record = ExitRecord {
        header: header(kind::EXIT, size_of::<ExitRecord>() as u32, &task),
        exit_code,
        quiet_failures: crate::quiet::take(task.tgid),
    };
    submit_record(&record, crate::output::lifecycle());
    Some(())
}
