//! `buildwatch guard`: builds nobody asked to watch. Userspace resolves the executables that
//! start a build (cargo, rustc, rust-analyzer and its proc-macro server, of every toolchain on
//! the machine) to their identities (device, inode) and fills `GUARD_ROOTS`; at exec, a process
//! that is not tracked yet and whose new image is one of them becomes tracked, a build root. The
//! rest of the machine pays one flag load per exec, and the same single `TRACKED` lookup per
//! event as in a normal run.
//!
//! Dormant hooks: the guard attaches the raw `sys_enter`/`sys_exit` dispatchers only while
//! something that can run crate code is tracked, since while any syscall tracepoint is attached
//! every system call of the machine takes the kernel's slow path (dispatch.rs). While they are
//! detached (`GUARD_STATE[HOOKS_LIVE]` is 0), a tracked process that execs an image that may
//! run crate code is held here (SIGSTOP before its first instruction, its tgid in `HOOK_HELD`)
//! until userspace has attached them and continues it: no crate code runs unwatched.
use aya_ebpf::{
    Global,
    helpers::bpf_get_current_pid_tgid,
    macros::map,
    maps::{Array, HashMap},
};
use monitor_common::{GuardOffsets, HOOKS_LIVE, InodeKey, guard_root, tracked};

use crate::{
    kernel::{current_task, read},
    maps::{OFFSETS, TRACKED, count_loss},
    protected::IDENTITY_OFFSETS,
};

/// The executables that start a build: identity → 1.
#[map]
pub static GUARD_ROOTS: HashMap<InodeKey, u32> = HashMap::with_max_entries(4096, 0);

/// Nonzero in guard mode (set at load time): exec adopts build roots. Zero in every other run,
/// which then behaves as before.
#[unsafe(no_mangle)]
pub static GUARD: Global<u32> = Global::new(0);

/// `[HOOKS_LIVE]`: nonzero while userspace has the system call hooks attached. Userspace sets
/// it after attaching and clears it before detaching, so an exec that sees 0 may be early but
/// never late.
#[map]
pub static GUARD_STATE: Array<u32> = Array::with_max_entries(1, 0);

/// Processes held at exec until the system call hooks are attached: tgid → 1. Userspace
/// continues and removes them (it also finds them here if their exec record was lost).
#[map]
pub static HOOK_HELD: HashMap<u32, u32> = HashMap::with_max_entries(1024, 0);

/// Where a task's process group id is (set at load time, guard mode only).
#[unsafe(no_mangle)]
pub static GUARD_OFFSETS: Global<GuardOffsets> = Global::new(GuardOffsets {
    task_signal: 0,
    signal_pgid: 0,
    pid_nr: 0,
    _pad: 0,
});

const SIGSTOP: u32 = 19;

/// At `sched_process_exec`, before the exec record is written: in guard mode, tracks the
/// current process when it is untracked and its new image is a build root. True when it did
/// (the exec record then says so, which is how userspace learns of a new build). A subprogram
/// of its own, so that nothing of it lands on the exec program's stack.
#[inline(never)]
pub fn adopt() -> bool {
    if GUARD.load() == 0 {
        return false;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only tested for presence.
    if unsafe { TRACKED.get(tgid) }.is_some() {
        return false;
    }
    let Some(key) = exe_identity() else {
        return false;
    };
    // SAFETY: a plain u32 copied out at once.
    let Some(kind) = (unsafe { GUARD_ROOTS.get(key) }).copied() else {
        return false;
    };
    let value = if kind == guard_root::EDITOR {
        tracked::EDITOR_ROOT
    } else {
        tracked::ROOT
    };
    if TRACKED.insert(tgid, value, 0).is_err() {
        count_loss(monitor_common::counter::TRACK_FULL);
        return false;
    }
    true
}

/// The identity of the current task's executable (`mm->exe_file`), as `PROTECTED`'s keys.
#[inline(always)]
fn exe_identity() -> Option<InodeKey> {
    let o = OFFSETS.load();
    let id = IDENTITY_OFFSETS.load();
    let mm: u64 = read(current_task(), o.task_mm)?;
    let file: u64 = read(mm, o.mm_exe_file)?;
    if file == 0 {
        return None;
    }
    let dentry: u64 = read(file, o.file_f_path + o.path_dentry)?;
    let inode: u64 = read(dentry, o.dentry_d_inode)?;
    let sb: u64 = read(dentry, o.dentry_d_sb)?;
    if inode == 0 || sb == 0 {
        return None;
    }
    let ino: u64 = read(inode, id.inode_i_ino)?;
    let dev: u32 = read(sb, id.super_block_s_dev)?;
    Some(InodeKey { dev, _pad: 0, ino })
}

/// At `sched_process_exec` of a tracked process, in guard mode: while the system call hooks are
/// detached, holds the process (see the module's comment) unless its new image runs no crate
/// code itself (a `DRIVER` or `EDITOR` root's executable) or it leads its own process group.
/// The last exception is for a rustc typed at a shell prompt: a job-control shell makes each job
/// its own group and reports a stopped job as stopped; a build's children (and an editor's
/// proc-macro server) share their parent's group. `already_held`: kill mode stopped it already
/// (a build script), and continues it itself once the hooks are live.
#[inline(never)]
pub fn hold_until_hooks(already_held: bool) {
    if GUARD.load() == 0 || already_held {
        return;
    }
    if GUARD_STATE.get(HOOKS_LIVE).is_none_or(|live| *live != 0) {
        return;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only tested for presence.
    if unsafe { TRACKED.get(tgid) }.is_none() {
        return;
    }
    if let Some(key) = exe_identity()
        // SAFETY: a plain u32 copied out at once.
        && let Some(kind) = unsafe { GUARD_ROOTS.get(key) }.copied()
        && kind != guard_root::CRATE_HOST
    {
        return;
    }
    if process_group_leader(tgid) {
        return;
    }
    if HOOK_HELD.insert(tgid, 1, 0).is_err() {
        count_loss(monitor_common::counter::TRACK_FULL);
        return;
    }
    // SAFETY: plain helper call; it signals the current process, which is in exec and stops
    // before the new image's first instruction.
    if unsafe { aya_ebpf::helpers::bpf_send_signal(SIGSTOP) } != 0 {
        // Not held (the kernel refused the signal): it runs before the hooks are attached, so
        // what it does meanwhile is not seen. Counted as lost, which the build's report says.
        let _ = HOOK_HELD.remove(tgid);
        count_loss(monitor_common::counter::TRACK_FULL);
    }
}

/// Whether the current process is its process group's leader (its pgid is its tgid).
#[inline(always)]
fn process_group_leader(tgid: u32) -> bool {
    let g = GUARD_OFFSETS.load();
    let Some(signal) = read::<u64>(current_task(), g.task_signal) else {
        return false;
    };
    let Some(pid) = read::<u64>(signal, g.signal_pgid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    read::<i32>(pid, g.pid_nr).is_some_and(|nr| nr as u32 == tgid)
}
