//! Kill family: `--enforce` killing a process of crate code in the kernel, for what fails `ci` by
//! default and no hook can refuse (a secret opened, a persistence target opened for writing, a
//! program run from memory or a deleted file, another process reached into, a namespace, a
//! 32-bit system call). The record says what was killed and why, beside the ordinary record of
//! the act, which the same program sends first.

use super::header::RecordHeader;

/// Record kinds of the kill family (`0x09nn`).
pub mod kind {
    /// A tracked process killed by `--enforce`: [`super::KillRecord`].
    pub const KILL: u32 = 0x0901;
}

/// Why a process was killed (one bit each, so that a crate group's allowances are a mask).
pub mod class {
    /// Opened a protected secret (`PROTECTED`) for reading: `object` is its number, plus one.
    pub const SECRET: u32 = 1;
    /// Opened a persistence target (`PERSIST`) for writing, or created a file in a persistence
    /// directory: `object` is the target's number, plus one.
    pub const PERSISTENCE: u32 = 2;
    /// Executed a program from memory (memfd) or a deleted file.
    pub const FILELESS_EXEC: u32 = 4;
    /// ptrace, process_vm_readv/writev or pidfd_getfd on another process: `syscall` a tamper
    /// syscall code, `object` the request, `target` the process.
    pub const TAMPER: u32 = 8;
    /// Created or joined a namespace: `syscall` a tamper syscall code, `object` the flags.
    pub const NAMESPACE: u32 = 16;
    /// A 32-bit system call: `object` its i386 number.
    pub const COMPAT: u32 = 32;
}

/// A process `--enforce` killed (sent SIGKILL before it returned to user mode).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KillRecord {
    /// Header (the killed task).
    pub header: RecordHeader,
    /// One of [`class`].
    pub class: u32,
    /// The system call it was killed in (a `syscall` code; 0 at exec).
    pub syscall: u32,
    /// What it touched, per class (see [`class`]).
    pub object: u32,
    /// The process acted on (tamper), else 0.
    pub target: u32,
    /// Proc-macro libraries (slot bits) on the calling thread's stack, as in other records.
    pub callers: u32,
    /// The crate group the kernel judged it in (`CRATE_PROCS`).
    pub group: u32,
}

/// The key of `KILL_ALLOW`: a crate group may do `class` to `object` (0: any object of the
/// class) without being killed, because its profile allows it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KillAllowKey {
    /// The crate group (`CRATE_PROCS` value).
    pub group: u32,
    /// One of [`class`].
    pub class: u32,
    /// The object's number plus one, or 0 for every object of the class.
    pub object: u32,
    /// Reserved, zero.
    pub _pad: u32,
}

impl_record!(KillRecord, KillAllowKey);

// No implicit padding: the sizes are the sums of the fields', multiples of 8.
const _: () = assert!(size_of::<KillRecord>() == size_of::<RecordHeader>() + 24);
const _: () = assert!(size_of::<KillAllowKey>() == 16);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn kill_record_round_trips() {
        round_trip(KillRecord {
            header: header(kind::KILL),
            class: class::SECRET,
            syscall: 1,
            object: 3,
            target: 0,
            callers: 0x1_0002,
            group: 7,
        });
        round_trip(KillAllowKey {
            group: 7,
            class: class::PERSISTENCE,
            object: 2,
            _pad: 0,
        });
    }
}
