//! Kernel structure and tracepoint field offsets userspace finds at load time and hands the
//! sensor (not a ring buffer record: the programs' read-only data).

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
    /// `task_struct.cred` (the subjective credentials)
    pub task_cred: u32,
    /// `cred.uid`
    pub cred_uid: u32,
    /// `cred.euid`
    pub cred_euid: u32,
    /// `cred.gid`
    pub cred_gid: u32,
    /// `cred.egid`
    pub cred_egid: u32,
    /// `cred.cap_effective` (a 64-bit mask: `u64 val` since 6.3, `u32 cap[2]` before)
    pub cred_cap_effective: u32,
    /// `cred.user_ns`
    pub cred_user_ns: u32,
    /// `user_namespace.level` (0: the initial user namespace)
    pub user_ns_level: u32,
}

impl_record!(KernelOffsets);

// No implicit padding: 46 fields of 4 bytes.
const _: () = assert!(size_of::<KernelOffsets>() == 46 * 4);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::round_trip;

    #[test]
    fn kernel_offsets_round_trip() {
        round_trip(KernelOffsets {
            task_tgid: 1268,
            tp_exit_group_dead: 32,
            ..Default::default()
        });
    }
}
