//! Privilege gains: a tracked process whose credentials carry more privileges than the build's
//! user (a setuid or setgid program, file capabilities, or root while the build's user is not).
//!
//! At exec, decided at `sched_process_exec`, where exec has committed the new credentials
//! (`begin_new_exec` → `commit_creds`) and the new image has not run one instruction: a SIGKILL
//! sent here is acted on when the task returns to user mode from execve, before anything else.
//!
//! Without exec, at the credential system calls (the set*id family and capset): their privilege
//! bits are taken at sys_enter and again at sys_exit, after `commit_creds`, and a bit the call
//! added (root from `setresuid(0, 0, 0)` by a process holding CAP_SETUID, say) is reported, and
//! under `--enforce` killed before the call returns to user mode. Comparing before and after
//! keeps a privileged program that only drops or shuffles privileges from being reported once
//! per call; and what a process was already reported for (`KNOWN`: at its exec, or at an earlier
//! call, inherited at fork) is no new gain either: sudo, reported at its exec, drops to the
//! user's uid and takes root back several times. A setuid or setgid difference between real and
//! effective ids counts as a gain only for a process that was neither root nor held
//! capabilities: one that was uses privileges it already had.
//! <https://github.com/torvalds/linux/blob/v6.18/fs/exec.c> (exec_binprm → trace_sched_process_exec)
//! <https://github.com/torvalds/linux/blob/v6.18/include/linux/cred.h> (struct cred)
//! <https://github.com/torvalds/linux/blob/v6.18/kernel/sys.c> (__sys_setresuid → commit_creds)
use crate::dispatch::Exit;
use aya_ebpf::{macros::map, maps::HashMap};
use monitor_common::{KernelOffsets, privilege, syscall};

use crate::{
    kernel::{current_task, read},
    maps::{BUILD_UID, ENFORCE, OFFSETS, count_loss},
    output::current_tracked,
    pending::{PENDING, Pending, take_pending},
};

const SIGKILL: u32 = 9;

/// Privilege bits each tracked process (tgid) has been reported for since its last exec: set at
/// exec and at a credential call that added some, copied to a forked child, removed at exit.
#[map]
pub static KNOWN: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

/// A forked child starts with its parent's credentials, and with what those were reported for.
#[inline(always)]
pub fn inherit(parent_tgid: u32, child_tgid: u32) {
    // SAFETY: the value is copied out.
    if let Some(bits) = unsafe { KNOWN.get(parent_tgid) }.copied() {
        let _ = KNOWN.insert(child_tgid, bits, 0);
    }
}

/// The process is gone.
#[inline(always)]
pub fn forget(tgid: u32) {
    let _ = KNOWN.remove(tgid);
}

/// The current task's privilege bits beyond the build's user's, with its effective uid; None
/// when the build runs as root (it has nothing to gain, and is reported as a coverage gap) or the
/// credentials cannot be read.
#[inline(always)]
fn current_privileges(o: &KernelOffsets) -> Option<(u32, u32)> {
    if BUILD_UID.load() == 0 {
        return None;
    }
    let cred: u64 = read(current_task(), o.task_cred)?;
    let uid: u32 = read(cred, o.cred_uid)?;
    let euid: u32 = read(cred, o.cred_euid)?;
    let gid: u32 = read(cred, o.cred_gid)?;
    let egid: u32 = read(cred, o.cred_egid)?;
    let caps: u64 = read(cred, o.cred_cap_effective)?;
    let mut bits = 0;
    if euid != uid {
        bits |= privilege::SETUID;
    }
    if egid != gid {
        bits |= privilege::SETGID;
    }
    if euid == 0 {
        bits |= privilege::ROOT;
    }
    if caps != 0 {
        // Capabilities count in the initial user namespace only: in a user namespace of its
        // own an unprivileged process holds them all, over nothing it did not own before (that
        // is reported as namespace use).
        let ns: u64 = read(cred, o.cred_user_ns)?;
        let level: u32 = read(ns, o.user_ns_level)?;
        if level == 0 {
            bits |= privilege::CAPS;
        }
    }
    Some((bits, euid))
}

/// Kills the current process under `--enforce` and sends the privilege record `code` with
/// `request` (privilege bits, and for a credential call its number) and the effective uid.
#[inline(always)]
fn report(code: u32, mut request: u32, euid: u32) {
    // SAFETY: plain helper call; it signals the current process, with kernel privileges
    // (SEND_SIG_PRIV), so a setuid image cannot refuse it.
    if ENFORCE.load() != 0 && unsafe { aya_ebpf::helpers::bpf_send_signal(SIGKILL) } == 0 {
        request |= privilege::KILLED;
    }
    crate::tamper::emit(code, request, euid);
}

/// Reports (and under `--enforce` kills) the current task if exec left it more privileged than
/// the build's user.
#[inline(always)]
pub fn check_exec(o: &KernelOffsets) -> Option<()> {
    let (bits, euid) = current_privileges(o)?;
    let tgid = (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32;
    if bits == 0 {
        forget(tgid);
        return None;
    }
    let _ = KNOWN.insert(tgid, bits, 0);
    report(syscall::PRIVILEGED_EXEC, bits, euid);
    Some(())
}

crate::syscall_program!(
    /// sys_enter of setuid, setreuid, setresuid, setfsuid, setgid, setregid, setresgid, setfsgid and
    /// capset: the caller's privilege bits before the call, stashed for sys_exit.
    sys_enter_cred,
    "sys_enter_cred",
    exit = false,
    |_ctx| {
        let _ = try_enter_cred();
    }
);

#[inline(always)]
fn try_enter_cred() -> Option<()> {
    let task = current_tracked()?;
    let (bits, _) = current_privileges(&OFFSETS.load())?;
    let pending = Pending {
        syscall: syscall::PRIVILEGED_CREDS,
        _pad: 0,
        args: [bits as u64, 0, 0, 0],
    };
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(monitor_common::counter::PENDING_FULL);
    }
    Some(())
}

crate::syscall_program!(
    /// sys_exit of the same calls: the bits the call added, if any, are a privilege gain without
    /// exec. The call is named by its number (`__syscall_nr`), which userspace names per
    /// architecture.
    sys_exit_cred,
    "sys_exit_cred",
    exit = true,
    |ctx| {
        let _ = try_exit_cred(ctx);
    }
);

#[inline(always)]
fn try_exit_cred(ctx: &Exit) -> Option<()> {
    let task = current_tracked()?;
    let pending = take_pending(task.pid_tgid)?;
    if pending.syscall != syscall::PRIVILEGED_CREDS {
        return None;
    }
    let (bits, euid) = current_privileges(&OFFSETS.load())?;
    // SAFETY: the value is copied out.
    let known = unsafe { KNOWN.get(task.tgid) }.copied().unwrap_or(0);
    let had = pending.args[0] as u32 | known;
    let mut gained = bits & !had;
    if had & (privilege::ROOT | privilege::CAPS) != 0 {
        // A real id other than the effective one, set by a process that is root or holds
        // capabilities, uses privileges it already had (sudo's setresgid to the user's group).
        gained &= privilege::ROOT | privilege::CAPS;
    }
    if gained == 0 {
        return None;
    }
    let _ = KNOWN.insert(task.tgid, bits | known, 0);
    // SAFETY: syscall tracepoint records hold the syscall number at offset 8.
    let nr: i32 = unsafe { ctx.read_at(8) }.unwrap_or(-1);
    let nr = (nr as u32) & privilege::NR_MASK;
    report(
        syscall::PRIVILEGED_CREDS,
        bits | (nr << privilege::NR_SHIFT),
        euid,
    );
    Some(())
}
