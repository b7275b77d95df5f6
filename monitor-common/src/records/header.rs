//! The header every record starts with, and the buffer records are assembled in.

/// Length of a task's `comm` (TASK_COMM_LEN in the kernel).
pub const COMM_LEN: usize = 16;
/// Size of the per-CPU scratch buffer records are assembled in (a power of two).
pub const SCRATCH_SIZE: usize = 128 * 1024;

/// Fixed header at the start of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// One of [`crate::kind`].
    pub kind: u32,
    /// Bytes the whole record takes, header and trailing data included.
    pub size: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the record was made.
    pub time_ns: u64,
    /// Process id (thread group id) of the task the event belongs to.
    pub tgid: u32,
    /// Thread id of that task.
    pub tid: u32,
    /// `comm` of that task, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

impl_record!(RecordHeader);

// No implicit padding: the size is the sum of the fields', a multiple of 8 so records stay
// aligned in the ring buffer.
const _: () = assert!(size_of::<RecordHeader>() == 4 + 4 + 8 + 4 + 4 + COMM_LEN);
const _: () = assert!(size_of::<RecordHeader>().is_multiple_of(8));
const _: () = assert!(SCRATCH_SIZE.is_power_of_two());

#[cfg(test)]
mod tests {
    use crate::records::testing::{header, round_trip};

    #[test]
    fn header_round_trips() {
        round_trip(header(crate::kind::FORK));
    }
}
