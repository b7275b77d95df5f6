//! Maps and load-time globals shared by all programs.
use aya_ebpf::{
    Global,
    macros::map,
    maps::{Array, HashMap, LpmTrie, PerCpuArray, RingBuf},
};
use monitor_common::{
    AllowKey, KernelOffsets, MacroSlots, PATH_SCRATCH_SIZE, SCRATCH_SIZE, STACK_SCAN_BYTES, counter,
};

/// Every record goes here. Userspace sets the size at load time (`--ring-buffer-size`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Processes (tgids) whose activity is reported. Userspace seeds it with the watched command;
/// fork adds children; the last thread's exit removes the process.
#[map]
pub static TRACKED: HashMap<u32, u32> = HashMap::with_max_entries(65536, 0);

/// Per-CPU loss counters, indexed by `monitor_common::counter`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Per-CPU scratch space records are assembled in (index: CPU id). Userspace sets max_entries
/// to the number of possible CPUs. A plain array, because per-CPU values are limited to 32 KiB.
#[map]
pub static SCRATCH: Array<[u8; SCRATCH_SIZE]> = Array::with_max_entries(1, 0);

/// Per-CPU buffer the path walk builds paths in, back to front (index: CPU id).
#[map]
pub static PATH_SCRATCH: Array<[u8; PATH_SCRATCH_SIZE]> = Array::with_max_entries(1, 0);

/// rustc processes and the proc-macro libraries each has mapped (see `macros`).
#[map]
pub static MACRO_LIBS: HashMap<u32, MacroSlots> = HashMap::with_max_entries(4096, 0);

/// One all-zero `MacroSlots`, the initial value of a rustc's entry (too big for the stack).
#[map]
pub static ZERO_SLOTS: Array<MacroSlots> = Array::with_max_entries(1, 0);

/// Per-CPU copy of the top of a user stack, scanned for proc-macro return addresses.
#[map]
pub static STACK_SCRATCH: Array<[u64; STACK_SCAN_BYTES / 8]> = Array::with_max_entries(1, 0);

/// Processes running a crate's code (build scripts, rustc with its proc-macros, and everything
/// they start), decided in the kernel at exec and inherited at fork, with their crate group
/// (`GROUP_UNKNOWN` until userspace has attributed them). The cgroup hooks enforce on these.
#[map]
pub static CRATE_PROCS: HashMap<u32, u32> = HashMap::with_max_entries(65536, 0);

/// Network endpoints a crate group may reach under `--enforce` (userspace fills it from the
/// profiles).
#[map]
pub static ALLOW: LpmTrie<AllowKey, u8> = LpmTrie::with_max_entries(65536, 0);

/// io_uring operation kinds each process has submitted so far (bit = IORING_OP_*).
#[map]
pub static URING_OPS: HashMap<u32, u64> = HashMap::with_max_entries(16384, 0);

/// 32-bit system call numbers (bits 0..511) each process image has made so far.
#[map]
pub static COMPAT_SEEN: HashMap<u32, [u64; 8]> = HashMap::with_max_entries(4096, 0);

/// Nonzero: the cgroup hooks refuse crate network that `ALLOW` does not list.
#[unsafe(no_mangle)]
pub static ENFORCE: Global<u32> = Global::new(0);

/// `KernelOffsets::task_ti_status` on its own: the compat hook runs for every system call of the
/// machine, and loading it alone is cheaper than a copy of the whole `OFFSETS`.
#[unsafe(no_mangle)]
pub static TI_STATUS: Global<u32> = Global::new(0);

/// Kernel structure offsets, written by userspace at load time (from BTF and tracefs).
#[unsafe(no_mangle)]
pub static OFFSETS: Global<KernelOffsets> = Global::new(KernelOffsets {
    task_tgid: 0,
    task_pid: 0,
    task_mm: 0,
    task_fs: 0,
    task_files: 0,
    task_exit_code: 0,
    mm_arg_start: 0,
    mm_arg_end: 0,
    mm_env_start: 0,
    mm_env_end: 0,
    mm_exe_file: 0,
    fs_pwd: 0,
    files_fdt: 0,
    fdtable_fd: 0,
    fdtable_max_fds: 0,
    file_f_path: 0,
    path_dentry: 0,
    path_mnt: 0,
    dentry_d_parent: 0,
    dentry_d_name_name: 0,
    dentry_d_name_len: 0,
    mount_mnt: 0,
    mount_mnt_parent: 0,
    mount_mnt_mountpoint: 0,
    vfsmount_mnt_root: 0,
    dentry_d_sb: 0,
    super_block_s_magic: 0,
    dentry_d_inode: 0,
    inode_nlink: 0,
    file_private_data: 0,
    socket_sk: 0,
    sock_dport: 0,
    sock_daddr: 0,
    tp_uring_opcode: 0,
    task_ti_status: 0,
    tp_exec_filename: 0,
    tp_exec_old_pid: 0,
    tp_exit_group_dead: 0,
    task_cred: 0,
    cred_uid: 0,
    cred_euid: 0,
    cred_gid: 0,
    cred_egid: 0,
    cred_cap_effective: 0,
    cred_user_ns: 0,
    user_ns_level: 0,
});

/// The uid the build runs as: a program of the build with more privileges than this user's is
/// a privilege gain (nothing is, when the build already runs as root).
#[unsafe(no_mangle)]
pub static BUILD_UID: Global<u32> = Global::new(0);

/// buildwatch's own process id: signals and pidfds aimed at it are reported.
#[unsafe(no_mangle)]
pub static MONITOR_TGID: Global<u32> = Global::new(0);

/// Adds one to a loss counter.
#[inline(always)]
pub fn count_loss(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful map lookup and the value is this CPU's own
        // slot, which no other CPU touches.
        unsafe { *slot += 1 };
    }
}
