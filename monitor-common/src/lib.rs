//! Records shared by the eBPF sensor (kernel side) and the `buildwatch` monitor (user side).
//!
//! Every record starts with a [`RecordHeader`]; `header.kind` says which record follows and
//! `header.size` how many bytes the record takes in the ring buffer, trailing data included.
//! Layouts are `#[repr(C)]` with explicit padding fields so that the kernel and userspace agree
//! byte for byte, and every record is a multiple of 8 bytes (the ring buffer's alignment).
//!
//! Variable-length data (paths, argv, environment) follows the fixed part of a record; the fixed
//! part carries the length of each piece, in the order they appear.
#![no_std]

/// Length of a task's `comm` (TASK_COMM_LEN in the kernel).
pub const COMM_LEN: usize = 16;
/// Longest path the sensor copies (PATH_MAX).
pub const PATH_MAX: usize = 4096;
/// Longest argv block the sensor copies from a new image (NUL-separated strings).
pub const ARGV_MAX: usize = 32 * 1024;
/// Longest environment block the sensor copies from a new image (NUL-separated `K=V` strings).
///
/// Userspace keeps only the cargo variables out of it; the rest (which may hold secrets) is
/// dropped as soon as it is decoded.
pub const ENV_MAX: usize = 64 * 1024;
/// Longest `sun_path` of a unix socket address.
pub const UNIX_PATH_MAX: usize = 108;
/// Most path components the in-kernel path walk follows before it gives up (and says so).
pub const PATH_WALK_MAX_COMPONENTS: u32 = 40;
/// Size of the per-CPU scratch buffer records are assembled in (a power of two).
pub const SCRATCH_SIZE: usize = 128 * 1024;
/// Size of the per-CPU buffer the path walk builds a path in (a power of two, > PATH_MAX + 256).
pub const PATH_SCRATCH_SIZE: usize = 8 * 1024;

/// Record kinds (`RecordHeader::kind`).
pub mod kind {
    /// A new process (not a thread) was forked by a tracked process: [`super::ForkRecord`].
    pub const FORK: u32 = 1;
    /// A tracked process replaced its image: [`super::ExecRecord`].
    pub const EXEC: u32 = 2;
    /// The last thread of a tracked process exited: [`super::ExitRecord`].
    pub const EXIT: u32 = 3;
    /// A file open (openat, openat2, open, creat) returned: [`super::OpenRecord`].
    pub const OPEN: u32 = 4;
    /// A connect() returned: [`super::ConnectRecord`].
    pub const CONNECT: u32 = 5;
    /// A rustc process mapped a proc-macro library executable: [`super::MacroLibRecord`].
    pub const MACRO_LIB: u32 = 6;
    /// The start of a DNS query sent by a tracked process: [`super::DnsRecord`].
    pub const DNS: u32 = 7;
    /// ptrace / process_vm_writev aimed at a process: [`super::TamperRecord`].
    pub const TAMPER: u32 = 8;
    /// An io_uring ring was set up, or an operation kind first submitted:
    /// [`super::IoUringRecord`].
    pub const IO_URING: u32 = 9;
    /// A tracked process made a 32-bit (compat) system call, which syscall tracepoints do not
    /// see: [`super::CompatRecord`] (the first of each number per process image).
    pub const COMPAT: u32 = 10;
}

/// Most proc-macro libraries tracked per rustc process (bits of the `callers` fields).
pub const MACRO_SLOTS: usize = 16;
/// Bytes of user stack scanned above the stack pointer for return addresses into proc-macro
/// libraries.
pub const STACK_SCAN_BYTES: usize = 1024;

/// Which system call produced an [`OpenRecord`] or [`ConnectRecord`].
pub mod syscall {
    /// openat(2)
    pub const OPENAT: u32 = 1;
    /// openat2(2)
    pub const OPENAT2: u32 = 2;
    /// open(2)
    pub const OPEN: u32 = 3;
    /// creat(2)
    pub const CREAT: u32 = 4;
    /// connect(2)
    pub const CONNECT: u32 = 20;
    /// sendto(2) with a destination address.
    pub const SENDTO: u32 = 21;
    /// sendmsg(2) with a destination address.
    pub const SENDMSG: u32 = 22;
    /// sendmmsg(2) with a destination address.
    pub const SENDMMSG: u32 = 23;
    /// sendto(2) with MSG_FASTOPEN: a TCP connection opened without connect().
    pub const FASTOPEN: u32 = 24;
    /// A connection seen by the cgroup connect hook with no connect-family syscall under way
    /// (io_uring, and other kernel paths).
    pub const CGROUP_CONNECT: u32 = 25;
    /// A datagram seen by the cgroup sendmsg hook with no send syscall under way.
    pub const CGROUP_SENDMSG: u32 = 26;
    /// A connection seen by the cgroup connect hook during a 32-bit (int 0x80) system call.
    pub const COMPAT_CONNECT: u32 = 27;
    /// A datagram seen by the cgroup sendmsg hook during a 32-bit (int 0x80) system call.
    pub const COMPAT_SENDMSG: u32 = 28;
    /// mmap(2)
    pub const MMAP: u32 = 30;
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
}

/// Indices of the per-CPU counters in the `COUNTERS` map. Every one of them counts records that
/// userspace did not get; userspace sums them and reports them as `lost` events.
pub mod counter {
    /// A record did not fit in the ring buffer.
    pub const RINGBUF_FULL: u32 = 0;
    /// A syscall's arguments could not be stashed at sys_enter (pending map full), so its
    /// sys_exit record was not produced.
    pub const PENDING_FULL: u32 = 1;
    /// A forked process could not be added to the tracked set (tracked map full): it and its
    /// descendants are not watched.
    pub const TRACK_FULL: u32 = 2;
    /// Number of counters.
    pub const COUNT: u32 = 3;
}

/// Flags of [`ExecRecord::flags`], [`OpenRecord::flags`] and friends.
pub mod flag {
    /// argv was longer than [`super::ARGV_MAX`] and was cut.
    pub const ARGV_TRUNCATED: u32 = 1 << 0;
    /// The environment was longer than [`super::ENV_MAX`] and was cut.
    pub const ENV_TRUNCATED: u32 = 1 << 1;
    /// The resolved path has more than [`super::PATH_WALK_MAX_COMPONENTS`] components and its
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
}

/// The value a process has in `CRATE_PROCS` before userspace knows its crate: its network is
/// refused under `--enforce` unless allowed for this group.
pub const GROUP_UNKNOWN: u32 = 0;
/// The group of rustc processes (proc-macros run there): what any proc-macro profile allows.
pub const GROUP_RUSTC: u32 = 1;

/// Key of the network allow list the cgroup hooks consult under `--enforce` (an LPM trie:
/// group, port and family must match exactly, the address by prefix).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowKey {
    /// The crate group (see `CRATE_PROCS`).
    pub group: u32,
    /// Port in network byte order, or 0 for any port.
    pub port: u16,
    /// AF_INET or AF_INET6.
    pub family: u16,
    /// The address, network byte order (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
}

impl AllowKey {
    /// Bits of the key before the address: group, port and family.
    pub const FIXED_BITS: u32 = 64;
}

/// Longest DNS message prefix copied.
pub const DNS_MAX: usize = 256;

/// The first bytes of a datagram sent to port 53.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    /// Header.
    pub header: RecordHeader,
    /// Bytes of `data` used.
    pub len: u32,
    /// Destination port (host order).
    pub port: u16,
    /// Address family.
    pub family: u16,
    /// Proc-macro libraries (slot bits) with a return address on the sending thread's stack.
    pub callers: u32,
    /// Reserved, zero.
    pub _pad: u32,
    /// Destination address (network order).
    pub addr: [u8; 16],
    /// The message.
    pub data: [u8; DNS_MAX],
}

impl Default for DnsRecord {
    fn default() -> Self {
        Self {
            header: RecordHeader::default(),
            len: 0,
            port: 0,
            family: 0,
            callers: 0,
            _pad: 0,
            addr: [0; 16],
            data: [0; DNS_MAX],
        }
    }
}

/// ptrace, process_vm_writev or process_vm_readv called by a tracked process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TamperRecord {
    /// Header.
    pub header: RecordHeader,
    /// [`syscall::PTRACE`], [`syscall::PROCESS_VM_WRITEV`] or [`syscall::PROCESS_VM_READV`].
    pub syscall: u32,
    /// The ptrace request (0 for process_vm_writev).
    pub request: u32,
    /// The target process.
    pub target: u32,
    /// Proc-macro libraries (slot bits) with a return address on the calling thread's stack.
    pub callers: u32,
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

/// [`IoUringRecord::opcode`] of a ring being set up.
pub const IO_URING_CREATE: u32 = 0xffff;

/// Fixed header at the start of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// One of [`kind`].
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
    /// Proc-macro libraries (slot bits, see [`MacroLibRecord`]) with a return address on the
    /// forking thread's stack: in a rustc, the proc-macros that asked for the new process.
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
    /// Reserved, zero.
    pub _pad: u32,
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
    /// [`flag`] bits.
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

/// A file open returned. Followed by `path_len` bytes of the path argument as passed and
/// `resolved_len` bytes of a kernel-resolved absolute path (see [`flag::RESOLVED_IS_TARGET`] and
/// [`flag::RESOLVED_IS_BASE`]).
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
    /// [`flag`] bits.
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
    /// Reserved, zero.
    pub _pad: u32,
}

/// A connect() returned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectRecord {
    /// Header.
    pub header: RecordHeader,
    /// One of [`syscall`].
    pub syscall: u32,
    /// The socket file descriptor.
    pub fd: i32,
    /// Return value: 0, or `-errno` (`-EINPROGRESS` for a non-blocking connect under way).
    pub result: i64,
    /// Address family (AF_INET, AF_INET6, AF_UNIX, ...).
    pub family: u16,
    /// Port in host byte order (inet families).
    pub port: u16,
    /// Length of the socket address as passed by the caller.
    pub addrlen: u32,
    /// IPv4 address (first 4 bytes) or IPv6 address, network byte order.
    pub addr: [u8; 16],
    /// [`flag`] bits.
    pub flags: u32,
    /// Bytes of `unix_path` that hold the path (AF_UNIX); abstract names start with a NUL.
    pub unix_path_len: u32,
    /// `sun_path` of an AF_UNIX address.
    pub unix_path: [u8; UNIX_PATH_MAX],
    /// Proc-macro libraries (slot bits) with a return address on the calling thread's stack.
    pub callers: u32,
}

impl Default for ConnectRecord {
    fn default() -> Self {
        Self {
            header: RecordHeader::default(),
            syscall: 0,
            fd: 0,
            result: 0,
            family: 0,
            port: 0,
            addrlen: 0,
            addr: [0; 16],
            flags: 0,
            unix_path_len: 0,
            unix_path: [0; UNIX_PATH_MAX],
            callers: 0,
        }
    }
}

/// A rustc process mapped a proc-macro library (`.../deps/lib<name>-<hash>.so`) executable.
/// Followed by `path_len` bytes of the library's path. From then on, events of that process
/// whose thread has a return address in `[start, end)` on its stack carry bit `slot` in their
/// `callers`: the proc-macro's code is on the call stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacroLibRecord {
    /// Header.
    pub header: RecordHeader,
    /// Slot number (0..MACRO_SLOTS).
    pub slot: u32,
    /// Bytes of path following the fixed part.
    pub path_len: u32,
    /// Start of the executable mapping.
    pub start: u64,
    /// End of the executable mapping.
    pub end: u64,
}

/// The proc-macro libraries of one rustc process, as the stack scan uses them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacroSlots {
    /// Slots in use.
    pub count: u32,
    /// Reserved, zero.
    pub _pad: u32,
    /// Lowest address of any slot (a quick filter).
    pub min: u64,
    /// Bytes from `min` to the end of the highest slot.
    pub span: u64,
    /// Start of each slot's executable mapping.
    pub start: [u64; MACRO_SLOTS],
    /// Length of each slot's executable mapping (0: unused slot).
    pub len: [u64; MACRO_SLOTS],
}

/// Kernel structure field offsets and tracepoint field offsets, found by userspace at load time
/// (from /sys/kernel/btf/vmlinux and the tracepoints' `format` files) and written into the
/// program's read-only data, because aya's Rust eBPF cannot use CO-RE relocations.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.tgid`
    pub task_tgid: u32,
    /// `task_struct.pid`
    pub task_pid: u32,
    /// `task_struct.mm`
    pub task_mm: u32,
    /// `task_struct.fs`
    pub task_fs: u32,
    /// `task_struct.files`
    pub task_files: u32,
    /// `task_struct.exit_code`
    pub task_exit_code: u32,
    /// `mm_struct.arg_start`
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end`
    pub mm_arg_end: u32,
    /// `mm_struct.env_start`
    pub mm_env_start: u32,
    /// `mm_struct.env_end`
    pub mm_env_end: u32,
    /// `mm_struct.exe_file`
    pub mm_exe_file: u32,
    /// `fs_struct.pwd`
    pub fs_pwd: u32,
    /// `files_struct.fdt`
    pub files_fdt: u32,
    /// `fdtable.fd`
    pub fdtable_fd: u32,
    /// `fdtable.max_fds`
    pub fdtable_max_fds: u32,
    /// `file.f_path`
    pub file_f_path: u32,
    /// `path.dentry`
    pub path_dentry: u32,
    /// `path.mnt`
    pub path_mnt: u32,
    /// `dentry.d_parent`
    pub dentry_d_parent: u32,
    /// `dentry.d_name.name`
    pub dentry_d_name_name: u32,
    /// `dentry.d_name.len`
    pub dentry_d_name_len: u32,
    /// `mount.mnt` (the `struct vfsmount` embedded in `struct mount`)
    pub mount_mnt: u32,
    /// `mount.mnt_parent`
    pub mount_mnt_parent: u32,
    /// `mount.mnt_mountpoint`
    pub mount_mnt_mountpoint: u32,
    /// `vfsmount.mnt_root`
    pub vfsmount_mnt_root: u32,
    /// `dentry.d_sb`
    pub dentry_d_sb: u32,
    /// `super_block.s_magic`
    pub super_block_s_magic: u32,
    /// `dentry.d_inode`
    pub dentry_d_inode: u32,
    /// `inode.__i_nlink`
    pub inode_nlink: u32,
    /// `file.private_data`
    pub file_private_data: u32,
    /// `socket.sk`
    pub socket_sk: u32,
    /// `sock.__sk_common.skc_dport`
    pub sock_dport: u32,
    /// `sock.__sk_common.skc_daddr`
    pub sock_daddr: u32,
    /// Offset of `opcode` in the io_uring_submit_req tracepoint record.
    pub tp_uring_opcode: u32,
    /// `task_struct.thread_info.status` (x86: `TS_COMPAT` during a 32-bit system call), or 0
    /// where the architecture has no such field.
    pub task_ti_status: u32,
    /// Offset of `__data_loc char[] filename` in the sched_process_exec tracepoint record.
    pub tp_exec_filename: u32,
    /// Offset of `pid_t old_pid` in the sched_process_exec tracepoint record.
    pub tp_exec_old_pid: u32,
    /// Offset of `bool group_dead` in the sched_process_exit tracepoint record, or 0 when the
    /// kernel's tracepoint has no such field (then the group leader's exit is used).
    pub tp_exit_group_dead: u32,
}

/// Interprets a NUL-padded byte array (a `comm`) as text, up to the first NUL.
pub fn c_bytes(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// Implements `aya::Pod` (userspace only) for record types.
#[cfg(feature = "user")]
macro_rules! impl_pod {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: the same contract as `Record`, which every one of these types implements:
            // #[repr(C)], integer and byte-array fields only, no implicit padding (sizes asserted
            // below), so every bit pattern is a valid value.
            unsafe impl aya::Pod for $t {}
        )*
    };
}

#[cfg(feature = "user")]
impl_pod!(
    RecordHeader,
    ForkRecord,
    ExitRecord,
    ExecRecord,
    OpenRecord,
    ConnectRecord,
    MacroLibRecord,
    MacroSlots,
    DnsRecord,
    TamperRecord,
    IoUringRecord,
    CompatRecord,
    AllowKey,
    KernelOffsets
);

/// A record type that can be viewed as, and rebuilt from, its exact bytes.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain only integers and byte arrays and have no implicit
/// padding, so that every byte pattern of `size_of::<Self>()` bytes is a valid value.
pub unsafe trait Record: Copy + 'static {
    /// The record's bytes, as the kernel writes them.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the trait's contract: no padding, so all bytes are initialised.
        unsafe {
            core::slice::from_raw_parts((self as *const Self).cast::<u8>(), size_of::<Self>())
        }
    }

    /// Reads a record from the start of `bytes` (unaligned), or `None` if it is too short.
    fn read_from(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < size_of::<Self>() {
            return None;
        }
        // SAFETY: length checked above; read_unaligned copes with any alignment; the trait's
        // contract makes every bit pattern valid.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

// SAFETY: see the trait; each type below is #[repr(C)] with integer/byte-array fields only and
// its size equals the sum of its fields (asserted below).
unsafe impl Record for RecordHeader {}
// SAFETY: as above.
unsafe impl Record for ForkRecord {}
// SAFETY: as above.
unsafe impl Record for ExitRecord {}
// SAFETY: as above.
unsafe impl Record for ExecRecord {}
// SAFETY: as above.
unsafe impl Record for OpenRecord {}
// SAFETY: as above.
unsafe impl Record for ConnectRecord {}
// SAFETY: as above.
unsafe impl Record for MacroLibRecord {}
// SAFETY: as above.
unsafe impl Record for MacroSlots {}
// SAFETY: as above.
unsafe impl Record for DnsRecord {}
// SAFETY: as above.
unsafe impl Record for TamperRecord {}
// SAFETY: as above.
unsafe impl Record for IoUringRecord {}
// SAFETY: as above.
unsafe impl Record for CompatRecord {}
// SAFETY: as above.
unsafe impl Record for AllowKey {}
// SAFETY: as above.
unsafe impl Record for KernelOffsets {}

// No implicit padding anywhere: each size is exactly the sum of the fields' sizes, and a multiple
// of 8 so records stay aligned in the ring buffer.
const _: () = assert!(size_of::<RecordHeader>() == 4 + 4 + 8 + 4 + 4 + COMM_LEN);
const _: () = assert!(size_of::<ForkRecord>() == size_of::<RecordHeader>() + 16);
const _: () = assert!(size_of::<ExitRecord>() == size_of::<RecordHeader>() + 8);
const _: () = assert!(size_of::<ExecRecord>() == size_of::<RecordHeader>() + 32);
const _: () = assert!(size_of::<OpenRecord>() == size_of::<RecordHeader>() + 48);
const _: () = assert!(size_of::<MacroLibRecord>() == size_of::<RecordHeader>() + 24);
const _: () = assert!(size_of::<MacroSlots>() == 24 + 16 * MACRO_SLOTS);
const _: () = assert!(
    size_of::<ConnectRecord>()
        == size_of::<RecordHeader>() + 4 + 4 + 8 + 2 + 2 + 4 + 16 + 4 + 4 + UNIX_PATH_MAX + 4
);
const _: () = assert!(size_of::<KernelOffsets>() == 38 * 4);
const _: () = assert!(size_of::<DnsRecord>() == size_of::<RecordHeader>() + 32 + DNS_MAX);
const _: () = assert!(size_of::<TamperRecord>() == size_of::<RecordHeader>() + 16);
const _: () = assert!(size_of::<IoUringRecord>() == size_of::<RecordHeader>() + 8);
const _: () = assert!(size_of::<CompatRecord>() == size_of::<RecordHeader>() + 48);
const _: () = assert!(size_of::<AllowKey>() == 24);
const _: () = assert!(size_of::<RecordHeader>().is_multiple_of(8));
const _: () = assert!(size_of::<ExecRecord>().is_multiple_of(8));
const _: () = assert!(size_of::<OpenRecord>().is_multiple_of(8));
const _: () = assert!(size_of::<ConnectRecord>().is_multiple_of(8));
const _: () = assert!(SCRATCH_SIZE.is_power_of_two() && PATH_SCRATCH_SIZE.is_power_of_two());
const _: () = assert!(size_of::<ExecRecord>() + 3 * PATH_MAX + ARGV_MAX + ENV_MAX <= SCRATCH_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32) -> RecordHeader {
        RecordHeader {
            kind,
            size: 0x1234,
            time_ns: 0x0102_0304_0506_0708,
            tgid: 42,
            tid: 43,
            comm: *b"build-script-bu\0",
        }
    }

    fn round_trip<R: Record + PartialEq + core::fmt::Debug>(rec: R) {
        let bytes = rec.as_bytes();
        assert_eq!(bytes.len(), size_of::<R>());
        // Decoding from an unaligned position must work too.
        let mut shifted = [0u8; 1024];
        shifted[1..=bytes.len()].copy_from_slice(bytes);
        assert_eq!(R::read_from(&shifted[1..=bytes.len()]), Some(rec));
        assert_eq!(R::read_from(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn every_record_round_trips() {
        round_trip(header(kind::FORK));
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
            _pad: 0,
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
            _pad: 0,
        });
        let mut unix_path = [0u8; UNIX_PATH_MAX];
        unix_path[..8].copy_from_slice(b"/run/x.s");
        round_trip(ConnectRecord {
            header: header(kind::CONNECT),
            syscall: syscall::CONNECT,
            fd: 3,
            result: -111,
            family: 2,
            port: 4444,
            addrlen: 16,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            flags: 0,
            unix_path_len: 8,
            unix_path,
            callers: 2,
        });
        round_trip(MacroLibRecord {
            header: header(kind::MACRO_LIB),
            slot: 3,
            path_len: 40,
            start: 0x7f00_0000_0000,
            end: 0x7f00_0010_0000,
        });
        round_trip(MacroSlots {
            count: 1,
            min: 1,
            span: 2,
            ..Default::default()
        });
        let mut data = [0u8; DNS_MAX];
        data[..4].copy_from_slice(&[0x12, 0x34, 1, 0]);
        round_trip(DnsRecord {
            header: header(kind::DNS),
            len: 4,
            port: 53,
            family: 2,
            callers: 1,
            _pad: 0,
            addr: [127, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            data,
        });
        round_trip(TamperRecord {
            header: header(kind::TAMPER),
            syscall: syscall::PTRACE,
            request: 16,
            target: 99,
            callers: 4,
        });
        round_trip(IoUringRecord {
            header: header(kind::IO_URING),
            opcode: IO_URING_CREATE,
            callers: 0,
        });
        round_trip(CompatRecord {
            header: header(kind::COMPAT),
            nr: 5,
            callers: 8,
            result: -13,
            args: [0x1000, 0, 0o644, 0],
        });
        round_trip(KernelOffsets {
            task_tgid: 1268,
            tp_exit_group_dead: 32,
            ..Default::default()
        });
    }

    #[test]
    fn comm_stops_at_nul() {
        assert_eq!(c_bytes(b"cargo\0\0\0"), b"cargo");
        assert_eq!(c_bytes(b"0123456789abcdef"), b"0123456789abcdef");
    }
}
