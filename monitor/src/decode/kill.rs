//! Kill records (`--enforce` killed a process in the kernel) → [`Killed`].
use monitor_common::{KillRecord, kill_class as class};

use super::{file::open_syscall, namespace_flags, ptrace_request, tamper_syscall};
use crate::model::{KillClass, Killed, ProtectedFile};

/// The kill, its object named from the sensor's tables of secrets and persistence targets.
pub(super) fn decode_kill(
    r: &KillRecord,
    protected: &[ProtectedFile],
    persist: &[ProtectedFile],
) -> Killed {
    let from = |table: &[ProtectedFile]| {
        (r.object as usize)
            .checked_sub(1)
            .and_then(|i| table.get(i))
            .map(|f| format!("{} ({})", f.path, f.category))
    };
    let (class, syscall, object) = match r.class {
        class::SECRET => (
            KillClass::Secret,
            Some(open_syscall(r.syscall).to_string()),
            from(protected),
        ),
        class::PERSISTENCE => (
            KillClass::Persistence,
            Some(open_syscall(r.syscall).to_string()),
            from(persist),
        ),
        class::FILELESS_EXEC => (KillClass::FilelessExec, None, None),
        class::TAMPER => (
            KillClass::Tamper,
            Some(tamper_syscall(r.syscall).to_string()),
            Some(match r.syscall {
                monitor_common::syscall::PTRACE => ptrace_request(r.object),
                monitor_common::syscall::PIDFD_GETFD => format!("fd {}", r.object),
                _ => String::new(),
            })
            .filter(|s| !s.is_empty()),
        ),
        class::NAMESPACE => (
            KillClass::Namespace,
            Some(tamper_syscall(r.syscall).to_string()),
            Some(namespace_flags(r.object)),
        ),
        class::COMPAT => (
            KillClass::Compat,
            Some(format!("int 0x80 {}", crate::i386::syscall_name(r.object))),
            None,
        ),
        _ => (KillClass::Unknown, None, None),
    };
    Killed {
        class,
        syscall,
        object,
        target: r.target,
    }
}
