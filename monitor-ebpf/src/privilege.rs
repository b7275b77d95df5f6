//! Privilege gains at exec: a tracked process whose new image runs with more privileges than the
//! build's user (a setuid or setgid program, file capabilities, or root while the build's user is
//! not). Decided at `sched_process_exec`, where exec has committed the new credentials
//! (`begin_new_exec` → `commit_creds`) and the new image has not run one instruction: a SIGKILL
//! sent here is acted on when the task returns to user mode from execve, before anything else.
//! <https://github.com/torvalds/linux/blob/v6.18/fs/exec.c> (exec_binprm → trace_sched_process_exec)
//! <https://github.com/torvalds/linux/blob/v6.18/include/linux/cred.h> (struct cred)
use monitor_common::{KernelOffsets, privilege, syscall};

use crate::{
    kernel::{current_task, read},
    maps::{BUILD_UID, ENFORCE},
};

const SIGKILL: u32 = 9;

/// Reports (and under `--enforce` kills) the current task if exec left it more privileged than
/// the build's user.
#[inline(always)]
pub fn check_exec(o: &KernelOffsets) -> Option<()> {
    let build_uid = BUILD_UID.load();
    if build_uid == 0 {
        // A build run as root has nothing to gain (and is reported as a coverage gap).
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
    if bits == 0 {
        return None;
    }
    // SAFETY: plain helper call; it signals the current process, with kernel privileges
    // (SEND_SIG_PRIV), so a setuid image cannot refuse it.
    if ENFORCE.load() != 0 && unsafe { aya_ebpf::helpers::bpf_send_signal(SIGKILL) } == 0 {
        bits |= privilege::KILLED;
    }
    crate::tamper::emit(syscall::PRIVILEGED_EXEC, bits, euid);
    Some(())
}
