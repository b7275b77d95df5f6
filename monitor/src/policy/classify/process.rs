//! Other processes and the ways around syscall tracing: ptrace and co., namespaces, io_uring,
//! 32-bit system calls. No profile allows any of them.
use super::{Allow, Verdict, attempt};
use crate::{
    model::{CompatSyscall, IoUring, IoUringOp, NamespaceCall, ProcessCall, Tamper, TamperSyscall},
    policy::Code,
};

/// ptrace, process_vm_readv/writev, pidfd_getfd on another process (`process-tamper`); new or
/// joined namespaces (`namespace-use`). Calls aimed at the monitor and privilege changes are
/// judged before any role or profile (`guard` in this module's parent): what is left of them
/// here is nothing.
pub(super) fn tamper(t: &Tamper) -> Option<Verdict> {
    Some(match t.syscall {
        TamperSyscall::Monitor(_) | TamperSyscall::Privilege(_) => return None,
        TamperSyscall::Namespace(call) => {
            let flags = t.request.as_deref().unwrap_or("0");
            let detail = if call == NamespaceCall::Setns {
                format!(
                    "joined another namespace (setns type {flags}, descriptor {}): paths seen there may not be the real ones",
                    t.target
                )
            } else {
                format!(
                    "created new namespaces ({} {flags}): in a new mount namespace bind mounts can show any file under any path",
                    t.syscall
                )
            };
            Verdict::new(
                Code::NamespaceUse,
                Allow::Never,
                format!("{} {flags}", t.syscall),
                detail,
            )
        }
        TamperSyscall::Process(ProcessCall::PidfdGetfd) => Verdict::new(
            Code::ProcessTamper,
            Allow::Never,
            format!("pidfd_getfd {}", t.request.as_deref().unwrap_or("")),
            format!(
                "pidfd_getfd: took a copy of {} of the process behind pidfd {}",
                t.request.as_deref().unwrap_or("a descriptor"),
                t.target
            ),
        ),
        TamperSyscall::Process(_) => Verdict::new(
            Code::ProcessTamper,
            Allow::Never,
            format!("{} {}", t.syscall, t.target),
            match t.request.as_deref() {
                Some(request) => format!("{} {request} on process {}", t.syscall, t.target),
                None => format!("{} on process {}", t.syscall, t.target),
            },
        ),
    })
}

/// An io_uring set up, or an operation submitted through one (`io-uring-use`).
pub(super) fn io_uring(u: &IoUring) -> Verdict {
    Verdict::new(
        Code::IoUringUse,
        Allow::Never,
        format!("io_uring {}", u.op),
        if u.op == IoUringOp::Setup {
            "set up an io_uring (operations through it bypass syscall tracing)".to_owned()
        } else {
            format!(
                "submitted io_uring {} (its target is invisible to syscall tracing)",
                u.op
            )
        },
    )
}

/// A 32-bit system call (`compat-syscall`).
pub(super) fn compat(c: &CompatSyscall) -> Verdict {
    Verdict::new(
        Code::CompatSyscall,
        Allow::Never,
        format!("int 0x80 {}", c.syscall),
        format!(
            "made the 32-bit system call {} (int 0x80), which syscall tracing does not see{}",
            c.syscall,
            attempt(c.result)
        ),
    )
}
