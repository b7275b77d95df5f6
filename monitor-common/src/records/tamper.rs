//! Tamper family: acting on another process (ptrace, process_vm_*, pidfd_getfd), creating or
//! joining namespaces (unshare, setns, clone with CLONE_NEW*), reaching for the monitor's own
//! machinery (bpf, perf_event_open, signals and pidfds aimed at buildwatch), and programs that
//! came out of exec with more privileges than the build's user.
use super::header::RecordHeader;

/// Record kinds of the tamper family (`0x05nn`).
pub mod kind {
    /// ptrace / process_vm_writev / namespaces, by a tracked process: [`super::TamperRecord`].
    pub const TAMPER: u32 = 0x0501;
}

/// Syscall codes of [`TamperRecord::syscall`] (40..=59).
pub mod syscall {
    /// ptrace(2)
    pub const PTRACE: u32 = 40;
    /// process_vm_writev(2)
    pub const PROCESS_VM_WRITEV: u32 = 41;
    /// process_vm_readv(2): reading another process's memory (secrets of an agent, say).
    pub const PROCESS_VM_READV: u32 = 42;
    /// unshare(2) with CLONE_NEW* flags: new namespaces for the caller.
    pub const UNSHARE: u32 = 43;
    /// setns(2): joining another namespace.
    pub const SETNS: u32 = 44;
    /// clone(2) or clone3(2) with CLONE_NEW* flags: a child in new namespaces.
    pub const CLONE_NS: u32 = 45;
    /// pidfd_getfd(2): taking a copy of another process's file descriptor.
    pub const PIDFD_GETFD: u32 = 46;
    /// bpf(2), any command (`request`): what loads, lists and detaches eBPF programs.
    pub const BPF: u32 = 47;
    /// perf_event_open(2); `request` is the event type (`perf_event_attr.type`).
    pub const PERF_EVENT_OPEN: u32 = 48;
    /// kill, tkill or tgkill aimed at the monitor (`target`; `u32::MAX` for kill(-1));
    /// `request` is the signal.
    pub const KILL_MONITOR: u32 = 49;
    /// pidfd_open(2) of the monitor (`target`).
    pub const PIDFD_OPEN_MONITOR: u32 = 50;
    /// A successful exec whose new credentials carry more privileges than the build's user:
    /// `request` holds [`super::privilege`] bits, `target` the effective uid.
    pub const PRIVILEGED_EXEC: u32 = 51;
    /// A credential system call (the set*id family, capset) that left its caller with
    /// privileges it did not hold before the call, beyond the build's user's, without exec:
    /// `request` holds [`super::privilege`] bits and the call's number (`NR_SHIFT`), `target`
    /// the effective uid.
    pub const PRIVILEGED_CREDS: u32 = 52;
}

/// What [`syscall::PRIVILEGED_EXEC`] and [`syscall::PRIVILEGED_CREDS`] found in the new
/// credentials (bits of `request`).
pub mod privilege {
    /// Effective uid differs from the real uid: a setuid program.
    pub const SETUID: u32 = 1;
    /// Effective gid differs from the real gid: a setgid program.
    pub const SETGID: u32 = 2;
    /// Effective uid 0 while the build's user is not root.
    pub const ROOT: u32 = 4;
    /// Effective capabilities in the initial user namespace while the build's user is not root.
    pub const CAPS: u32 = 8;
    /// The sensor killed the process (`--enforce`) before it returned to user mode.
    pub const KILLED: u32 = 0x100;
    /// [`super::syscall::PRIVILEGED_CREDS`]: the credential call's number (this
    /// architecture's) is `(request >> NR_SHIFT) & NR_MASK`.
    pub const NR_SHIFT: u32 = 16;
    /// See [`NR_SHIFT`].
    pub const NR_MASK: u32 = 0xffff;
}

/// A tamper syscall called by a tracked process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TamperRecord {
    /// Header.
    pub header: RecordHeader,
    /// One of [`syscall`].
    pub syscall: u32,
    /// The ptrace request; the CLONE_NEW* flags (unshare, clone) or namespace type (setns); the
    /// descriptor number (pidfd_getfd); 0 for process_vm_*.
    pub request: u32,
    /// The target process (the pidfd for pidfd_getfd, the namespace descriptor for setns).
    pub target: u32,
    /// Proc-macro libraries (slot bits) with a return address on the calling thread's stack.
    pub callers: u32,
}

impl_record!(TamperRecord);

// No implicit padding: the size is the sum of the fields', a multiple of 8.
const _: () = assert!(size_of::<TamperRecord>() == size_of::<RecordHeader>() + 16);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn tamper_record_round_trips() {
        round_trip(TamperRecord {
            header: header(kind::TAMPER),
            syscall: syscall::PTRACE,
            request: 16,
            target: 99,
            callers: 4,
        });
    }
}
