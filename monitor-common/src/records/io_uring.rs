//! io_uring family: a ring set up, or an operation kind first submitted (operations through a
//! ring make no system call of their own).
use super::header::RecordHeader;

/// Record kinds of the io_uring family (`0x06nn`).
pub mod kind {
    /// An io_uring ring was set up, or an operation kind first submitted:
    /// [`super::IoUringRecord`].
    pub const IO_URING: u32 = 0x0601;
}

/// [`IoUringRecord::opcode`] of a ring being set up.
pub const IO_URING_CREATE: u32 = 0xffff;

/// io_uring activity of a tracked process: a ring set up ([`IO_URING_CREATE`]), or the first
/// submission of an operation kind (its IORING_OP_* code).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoUringRecord {
    /// Header.
    pub header: RecordHeader,
    /// IORING_OP_* code, or [`IO_URING_CREATE`].
    pub opcode: u32,
    /// Proc-macro libraries (slot bits) with a return address on the submitting thread's stack.
    pub callers: u32,
}

impl_record!(IoUringRecord);

// No implicit padding: the size is the sum of the fields', a multiple of 8.
const _: () = assert!(size_of::<IoUringRecord>() == size_of::<RecordHeader>() + 8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn io_uring_record_round_trips() {
        round_trip(IoUringRecord {
            header: header(kind::IO_URING),
            opcode: IO_URING_CREATE,
            callers: 0,
        });
    }
}
