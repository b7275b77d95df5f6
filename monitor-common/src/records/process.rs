//! Process family: fork, exec, exit.
use super::{
    file::PATH_MAX,
    header::{RecordHeader, SCRATCH_SIZE},
};

/// Record kinds of the process family (`0x01nn`).
pub mod kind {
    /// A new process (not a thread) was forked by a tracked process: [`super::ForkRecord`].
    pub const FORK: u32 = 0x0101;
    /// A tracked process replaced its image: [`super::ExecRecord`].
    pub const EXEC: u32 = 0x0102;
    /// The last thread of a tracked process exited: [`super::ExitRecord`].
    pub const EXIT: u32 = 0x0103;
}

/// Longest argv block the sensor copies from a new image (NUL-separated strings).
pub const ARGV_MAX: usize = 32 * 1024;
/// Longest environment block the sensor copies from a new image (NUL-separated `K=V` strings).
///
/// Userspace keeps only the cargo variables out of it; the rest (which may hold secrets) is
/// dropped as soon as it is decoded.
pub const ENV_MAX: usize = 64 * 1024;

/// A tracked process forked a new process. Threads are not reported: they share their process's
/// tgid and are attributed through it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkRecord {
    /// Header; `tgid`/`tid` are the forking task.
    pub header: RecordHeader,
    /// Process id of the new process.
    pub child_tgid: u32,
    /// Process id of the process that forked it, recorded at fork time (a later re-parenting to
    /// init or a subreaper does not change it).
    pub parent_tgid: u32,
    /// Proc-macro libraries (slot bits, see [`crate::MacroLibRecord`]) with a return address on
    /// the forking thread's stack: in a rustc, the proc-macros that asked for the new process.
    pub callers: u32,
    /// Reserved, zero.
    pub _pad: u32,
}

/// The last thread of a tracked process exited.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitRecord {
    /// Header; `tgid` is the process that exited.
    pub header: RecordHeader,
    /// `task->exit_code` in wait(2) status format: `code << 8` or the terminating signal.
    pub exit_code: u32,
    /// Failed reads the process made in the run's quiet directories, counted in the kernel
    /// instead of sent one by one (see [`crate::records::file::QuietDir`]).
    pub quiet_failures: u32,
}

/// A tracked process executed a new image (successfully). Followed by `filename_len` bytes of the
/// filename as passed to exec, `resolved_len` bytes of the new executable's absolute path as the
/// kernel sees it, `cwd_len` bytes of the process's working directory, `argv_len` bytes of argv
/// and `env_len` bytes of environment (both blocks NUL-separated, as on the new process's stack).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecRecord {
    /// Header; `tgid` is the process, `comm` its new comm.
    pub header: RecordHeader,
    /// Thread id that called exec (differs from `tgid` when a non-leader thread exec'd).
    pub old_tid: u32,
    /// [`crate::flag`] bits.
    pub flags: u32,
    /// Bytes of filename following the fixed part.
    pub filename_len: u32,
    /// Bytes of resolved executable path after the filename.
    pub resolved_len: u32,
    /// Bytes of working directory after the resolved path.
    pub cwd_len: u32,
    /// Bytes of argv after the working directory.
    pub argv_len: u32,
    /// Bytes of environment after argv.
    pub env_len: u32,
    /// Magic number of the filesystem the executable lives on (0 when unknown): a memfd lives
    /// on an internal tmpfs mount.
    pub fs_magic: u32,
}

impl_record!(ForkRecord, ExitRecord, ExecRecord);

// No implicit padding: each size is the sum of the fields', a multiple of 8.
const _: () = assert!(size_of::<ForkRecord>() == size_of::<RecordHeader>() + 16);
const _: () = assert!(size_of::<ExitRecord>() == size_of::<RecordHeader>() + 8);
const _: () = assert!(size_of::<ExecRecord>() == size_of::<RecordHeader>() + 32);
const _: () = assert!(size_of::<ExecRecord>().is_multiple_of(8));
// An exec record with all its trailing pieces at their longest fits the scratch buffer.
const _: () = assert!(size_of::<ExecRecord>() + 3 * PATH_MAX + ARGV_MAX + ENV_MAX <= SCRATCH_SIZE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        flag,
        records::testing::{header, round_trip},
    };

    #[test]
    fn process_records_round_trip() {
        round_trip(ForkRecord {
            header: header(kind::FORK),
            child_tgid: 7,
            parent_tgid: 6,
            callers: 0b101,
            _pad: 0,
        });
        round_trip(ExitRecord {
            header: header(kind::EXIT),
            exit_code: 0x0100,
            quiet_failures: 41,
        });
        round_trip(ExecRecord {
            header: header(kind::EXEC),
            old_tid: 9,
            flags: flag::ARGV_TRUNCATED | flag::ENV_TRUNCATED,
            filename_len: 10,
            resolved_len: 11,
            cwd_len: 14,
            argv_len: 12,
            env_len: 13,
            fs_magic: 0x0102_1994,
        });
    }
}
