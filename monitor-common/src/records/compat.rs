//! Compat family: 32-bit system calls (int 0x80), which the syscall tracepoints do not see.
use super::header::RecordHeader;

/// Record kinds of the compat family (`0x07nn`).
pub mod kind {
    /// A tracked process made a 32-bit (compat) system call: [`super::CompatRecord`] (the first
    /// of each number per process image).
    pub const COMPAT: u32 = 0x0701;
}

/// A 32-bit system call (int 0x80, sysenter, or a 32-bit process) by a tracked process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompatRecord {
    /// Header.
    pub header: RecordHeader,
    /// The i386 system call number.
    pub nr: u32,
    /// Proc-macro libraries (slot bits) with a return address on the calling thread's stack.
    pub callers: u32,
    /// What the call returned.
    pub result: i64,
    /// The first four arguments (ebx, ecx, edx, esi).
    pub args: [u64; 4],
}

impl_record!(CompatRecord);

// No implicit padding: the size is the sum of the fields', a multiple of 8.
const _: () = assert!(size_of::<CompatRecord>() == size_of::<RecordHeader>() + 48);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn compat_record_round_trips() {
        round_trip(CompatRecord {
            header: header(kind::COMPAT),
            nr: 5,
            callers: 8,
            result: -13,
            args: [0x1000, 0, 0o644, 0],
        });
    }
}
