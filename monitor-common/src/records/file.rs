//! File family: opens, and the names given to files by rename/link/symlink (reported as opens).
use super::header::RecordHeader;

/// Record kinds of the file family (`0x02nn`).
pub mod kind {
    /// A file open (openat, openat2, open, creat, ...) returned: [`super::OpenRecord`].
    pub const OPEN: u32 = 0x0201;
}

/// Syscall codes of [`OpenRecord::syscall`] (1..=19).
pub mod syscall {
    /// openat(2)
    pub const OPENAT: u32 = 1;
    /// openat2(2)
    pub const OPENAT2: u32 = 2;
    /// open(2)
    pub const OPEN: u32 = 3;
    /// creat(2)
    pub const CREAT: u32 = 4;
    /// open_by_handle_at(2)
    pub const OPEN_BY_HANDLE_AT: u32 = 5;
    /// rename(2), renameat(2), renameat2(2): the new name.
    pub const RENAME: u32 = 6;
    /// link(2), linkat(2): the new name.
    pub const LINK: u32 = 7;
    /// symlink(2), symlinkat(2): the new name.
    pub const SYMLINK: u32 = 8;
    /// rename(2) and co.: the old name (the file moved).
    pub const RENAME_SOURCE: u32 = 9;
    /// link(2), linkat(2): the old name (the file given another name).
    pub const LINK_SOURCE: u32 = 10;
}

/// Longest path the sensor copies (PATH_MAX).
pub const PATH_MAX: usize = 4096;
/// Most path components the in-kernel path walk follows before it gives up (and says so).
pub const PATH_WALK_MAX_COMPONENTS: u32 = 40;
/// Size of the per-CPU buffer the path walk builds a path in (a power of two, > PATH_MAX + 256).
pub const PATH_SCRATCH_SIZE: usize = 8 * 1024;

/// Most directories whose failed reads are counted instead of sent (`QUIET_DIRS` slots).
pub const QUIET_DIRS: u32 = 12;
/// Longest quiet directory, in bytes (a multiple of 8: the kernel compares words).
pub const QUIET_DIR_MAX: usize = 248;
/// Longest rest of a path (after its quiet directory) the kernel looks through; a longer one
/// is sent.
pub const QUIET_TAIL_MAX: u32 = 256;

/// A directory in which a failed read-only open cannot be anything the policy acts on: no
/// secret lies in it or below it (userspace checks that against the secret places before it
/// fills a slot). A failed open there, for reading, with ENOENT or ENOTDIR, of a path with no
/// component that starts with a dot, is counted for its process (`ExitRecord::quiet_failures`)
/// instead of sent: half of a build's opens are the dynamic loader's and the compilers' search
/// paths, none of which the policy looks at. Slots are filled in order and never rewritten
/// during a run, so a program reading a slot while userspace fills it sees either nothing or
/// bytes that no path matches.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietDir {
    /// Bytes of `path` in use; 0: an empty slot (and every later one is empty too).
    pub len: u32,
    /// Reserved, zero.
    pub _pad: u32,
    /// The directory: absolute, normalised (no `.`/`..`/empty components), no trailing slash.
    pub path: [u8; QUIET_DIR_MAX],
}

impl Default for QuietDir {
    fn default() -> Self {
        Self {
            len: 0,
            _pad: 0,
            path: [0; QUIET_DIR_MAX],
        }
    }
}

impl QuietDir {
    /// The slot for `dir`, if it fits.
    pub fn new(dir: &[u8]) -> Option<Self> {
        if dir.is_empty() || dir.len() > QUIET_DIR_MAX {
            return None;
        }
        let mut slot = Self::default();
        slot.path[..dir.len()].copy_from_slice(dir);
        slot.len = dir.len() as u32;
        Some(slot)
    }
}

/// A file open returned. Followed by `path_len` bytes of the path argument as passed and
/// `resolved_len` bytes of a kernel-resolved absolute path (see
/// [`crate::flag::RESOLVED_IS_TARGET`] and [`crate::flag::RESOLVED_IS_BASE`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenRecord {
    /// Header.
    pub header: RecordHeader,
    /// One of [`syscall`].
    pub syscall: u32,
    /// The `dfd` argument (AT_FDCWD for open/creat).
    pub dfd: i32,
    /// Open flags (O_*); for openat2 the low 32 bits of `open_how.flags`.
    pub open_flags: u32,
    /// Mode argument.
    pub mode: u32,
    /// Return value: a file descriptor, or `-errno`.
    pub result: i64,
    /// [`crate::flag`] bits.
    pub flags: u32,
    /// Bytes of path argument following the fixed part.
    pub path_len: u32,
    /// Bytes of resolved path after the path argument.
    pub resolved_len: u32,
    /// Magic number of the filesystem the resolved object lives on (`PIPEFS_MAGIC`,
    /// `SOCKFS_MAGIC`, ...), 0 when unknown. Tells pipes and sockets, which have no path, apart.
    pub fs_magic: u32,
    /// Proc-macro libraries (slot bits) with a return address on the calling thread's stack.
    pub callers: u32,
    /// The protected file (a secret known by device and inode, see
    /// [`crate::records::protected`]) the opened object is: its index in the table userspace
    /// gave the kernel, plus one; 0 when it is none of them.
    pub protected: u32,
}

impl_record!(OpenRecord, QuietDir);

// No implicit padding: the size is the sum of the fields', a multiple of 8.
const _: () = assert!(size_of::<OpenRecord>() == size_of::<RecordHeader>() + 48);
const _: () = assert!(size_of::<OpenRecord>().is_multiple_of(8));
const _: () =
    assert!(size_of::<QuietDir>() == 8 + QUIET_DIR_MAX && QUIET_DIR_MAX.is_multiple_of(8));
const _: () = assert!(PATH_SCRATCH_SIZE.is_power_of_two() && PATH_SCRATCH_SIZE > PATH_MAX + 256);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        flag,
        records::testing::{header, round_trip},
    };

    #[test]
    fn open_record_round_trips() {
        round_trip(OpenRecord {
            header: header(kind::OPEN),
            syscall: syscall::OPENAT2,
            dfd: -100,
            open_flags: 0o102,
            mode: 0o644,
            result: -2,
            flags: flag::RESOLVED_IS_BASE,
            path_len: 5,
            resolved_len: 6,
            fs_magic: 0x5049_5045,
            callers: 1,
            protected: 3,
        });
    }
}
