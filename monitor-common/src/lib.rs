//! Records shared by the eBPF sensor (kernel side) and the `buildwatch` monitor (user side).
//!
//! Every record starts with a [`RecordHeader`]; `header.kind` says which record follows and
//! `header.size` how many bytes the record takes in the ring buffer, trailing data included.
//! Layouts are `#[repr(C)]` with explicit padding fields so that the kernel and userspace agree
//! byte for byte, and every record is a multiple of 8 bytes (the ring buffer's alignment).
//!
//! Variable-length data (paths, argv, environment) follows the fixed part of a record; the fixed
//! part carries the length of each piece, in the order they appear.
//!
//! The records live in [`records`], one file per family (process, file, net, dns, tamper,
//! io_uring, compat, proc-macro, raw socket, loss); a family's record kinds share a number range
//! (`0xFFnn`, `FF` the family) and its syscall codes sit next to its records. Everything is
//! re-exported here, so users write `monitor_common::kind::OPEN`, `monitor_common::OpenRecord`.
#![no_std]

pub mod records;

/// The raw `sys_enter` / `sys_exit` dispatchers' program arrays (x86_64): slot `n` below 512
/// holds the program of system call `n`; these slots, above, are the sensor's own.
pub mod dispatch {
    /// Slots in each array.
    pub const SLOTS: u32 = 520;
    /// Exit array: the program for 32-bit (compat) calls; entry array: under `--enforce`, the
    /// one that kills them at entry.
    pub const COMPAT_SLOT: u32 = 512;
    /// Exit array: the new name of a rename or link, reported after its old name.
    pub const LINK_NEW_SLOT: u32 = 513;
    /// Entries of `SLOT_RUNS` (the per-slot tail call counts of `BUILDWATCH_PROGRAM_STATS`):
    /// the entry array's slots, then the exit array's.
    pub const RUN_SLOTS: u32 = 2 * SLOTS;
}

pub use records::{
    Record, c_bytes,
    compat::CompatRecord,
    counter,
    dns::{DNS_MAX, DnsRecord},
    file::{
        OpenRecord, PATH_MAX, PATH_SCRATCH_SIZE, PATH_WALK_MAX_COMPONENTS, QUIET_DIR_MAX,
        QUIET_DIRS, QUIET_TAIL_MAX, QuietDir,
    },
    flag,
    guard::{GuardOffsets, HOOKS_LIVE, root as guard_root, tracked},
    header::{COMM_LEN, RecordHeader, SCRATCH_SIZE},
    io_uring::{IO_URING_CREATE, IoUringRecord},
    kill::{KillAllowKey, KillRecord, class as kill_class},
    kind,
    net::{AllowKey, ConnectRecord, GROUP_PROC_MACRO, GROUP_RUSTC, GROUP_UNKNOWN, UNIX_PATH_MAX},
    offsets::KernelOffsets,
    proc_macro::{MACRO_SLOTS, MacroLibRecord, MacroSlots, STACK_SCAN_BYTES},
    process::{ARGV_MAX, ENV_MAX, ExecRecord, ExitRecord, ForkRecord},
    protected::{IdentityOffsets, InodeKey},
    raw_socket::{PACKET_HEAD, PacketRecord, SocketOffsets, SocketRecord},
    syscall,
    tamper::{TamperRecord, privilege},
};
