//! `buildwatch guard`: the numbers its kernel and userspace sides share. Not ring buffer records:
//! the values of the `GUARD_ROOTS` and `TRACKED` maps, and the offsets the exec program needs to
//! tell a job-control shell's job from a build's child.
//!
//! Why the kinds of root: the guard attaches the system call hooks only while something that
//! can run crate code is alive (docs/guard.md, "Dormant while no build runs"). While they are
//! detached, the kernel holds (stops) a tracked process at exec until userspace has attached
//! them, unless its new image runs no crate code itself (cargo, rust-analyzer: crate code runs
//! in their children, which are held).

/// Values of `GUARD_ROOTS` (identity → kind).
pub mod root {
    /// rustc or rust-analyzer's proc-macro server: loads crate code (proc-macros) into itself.
    pub const CRATE_HOST: u32 = 1;
    /// cargo: runs crate code only in its children.
    pub const DRIVER: u32 = 2;
    /// rust-analyzer: runs crate code only in its children, and lives as long as the editor, so
    /// it alone does not keep the system call hooks attached.
    pub const EDITOR: u32 = 3;
}

/// Values of `TRACKED` (tgid → how it came to be tracked).
pub mod tracked {
    /// Forked by a tracked process (or seeded by userspace).
    pub const FORKED: u32 = 1;
    /// Adopted at exec as a build root (guard).
    pub const ROOT: u32 = 2;
    /// Adopted at exec as an editor's language server ([`super::root::EDITOR`]).
    pub const EDITOR_ROOT: u32 = 3;
}

/// Index of `GUARD_STATE`'s one entry: nonzero while the system call hooks are attached.
pub const HOOKS_LIVE: u32 = 0;

/// Kernel structure offsets for a task's process group id (from BTF at load).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardOffsets {
    /// `task_struct.signal`
    pub task_signal: u32,
    /// `signal_struct.pids[PIDTYPE_PGID]`
    pub signal_pgid: u32,
    /// `pid.numbers[0].nr` (the id in the initial namespace, as `tgid`)
    pub pid_nr: u32,
    /// Reserved, zero.
    pub _pad: u32,
}

impl_record!(GuardOffsets);

const _: () = assert!(size_of::<GuardOffsets>() == 16);
