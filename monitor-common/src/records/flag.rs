//! Flags of [`crate::ExecRecord::flags`], [`crate::OpenRecord::flags`] and
//! [`crate::ConnectRecord::flags`]. One bit space for every family, so that the path walk (shared
//! by exec and open) sets the same bits whichever record it fills.

/// argv was longer than [`crate::ARGV_MAX`] and was cut.
pub const ARGV_TRUNCATED: u32 = 1 << 0;
/// The environment was longer than [`crate::ENV_MAX`] and was cut.
pub const ENV_TRUNCATED: u32 = 1 << 1;
/// The resolved path has more than [`crate::PATH_WALK_MAX_COMPONENTS`] components and its
/// beginning is missing.
pub const RESOLVED_TRUNCATED: u32 = 1 << 2;
/// The resolved path is the absolute path of the object the syscall opened (or of the new
/// executable).
pub const RESOLVED_IS_TARGET: u32 = 1 << 3;
/// The resolved path is the directory a relative path was relative to (the working directory,
/// or the directory `dfd` refers to); the syscall failed, so there is no target to resolve.
pub const RESOLVED_IS_BASE: u32 = 1 << 4;
/// The path argument could not be read from user memory.
pub const PATH_UNREADABLE: u32 = 1 << 5;
/// The executable had been deleted (no links left): a dropped binary removed after start.
pub const EXE_DELETED: u32 = 1 << 6;
/// The connection was refused by buildwatch's cgroup hook (`--enforce`).
pub const REFUSED: u32 = 1 << 7;
/// The open was a 32-bit (compat) system call, seen by the raw sys_exit hook.
pub const COMPAT: u32 = 1 << 8;
/// `buildwatch guard`: the process was not tracked and became a build root at this exec (its
/// new image is a cargo, rustc or rust-analyzer the guard knows by identity). A high bit, out of
/// the way of the bits the families add.
pub const GUARD_ROOT: u32 = 1 << 31;
