//! The kernel offsets the eBPF programs need, from BTF and tracefs.
use std::path::Path;

use monitor_common::{GuardOffsets, IdentityOffsets, KernelOffsets, SocketOffsets};

use super::{SensorError, btf::Btf, tracefs};

/// The offsets the eBPF programs are given at load.
pub struct Offsets {
    pub kernel: KernelOffsets,
    pub identity: IdentityOffsets,
    pub socket: SocketOffsets,
    pub guard: GuardOffsets,
}

/// `enum pid_type`'s PIDTYPE_PGID (PID, TGID, PGID, SID since Linux 4.19).
const PIDTYPE_PGID: u32 = 2;

/// Reads every offset in [`KernelOffsets`] for the running kernel, and the few the identity of
/// an opened file, the kind of a socket and a task's process group need (kept apart: the
/// programs copy `KernelOffsets` onto their stack, which is full in the open programs).
pub fn kernel_offsets(tracefs_dir: &Path) -> Result<Offsets, SensorError> {
    let btf = match Btf::from_sys_fs() {
        Ok(Ok(btf)) => btf,
        Ok(Err(e)) => return Err(SensorError::Btf(e.to_string())),
        Err(e) => {
            return Err(SensorError::Btf(format!(
                "cannot read /sys/kernel/btf/vmlinux: {e}"
            )));
        }
    };
    let m = |s: &str, f: &str| {
        btf.member_offset(s, f)
            .map_err(|e| SensorError::Btf(e.to_string()))
    };
    let tp = |cat: &str, name: &str, field: &str| -> Result<u32, SensorError> {
        tracefs::field_offset(tracefs_dir, cat, name, field)?.ok_or_else(|| {
            SensorError::MissingHook {
                hook: format!("tracepoint {cat}/{name}"),
                detail: format!("its record has no `{field}` field"),
            }
        })
    };
    let offsets = KernelOffsets {
        task_tgid: m("task_struct", "tgid")?,
        task_pid: m("task_struct", "pid")?,
        task_mm: m("task_struct", "mm")?,
        task_fs: m("task_struct", "fs")?,
        task_files: m("task_struct", "files")?,
        task_exit_code: m("task_struct", "exit_code")?,
        mm_arg_start: m("mm_struct", "arg_start")?,
        mm_arg_end: m("mm_struct", "arg_end")?,
        mm_env_start: m("mm_struct", "env_start")?,
        mm_env_end: m("mm_struct", "env_end")?,
        mm_exe_file: m("mm_struct", "exe_file")?,
        fs_pwd: m("fs_struct", "pwd")?,
        files_fdt: m("files_struct", "fdt")?,
        fdtable_fd: m("fdtable", "fd")?,
        fdtable_max_fds: m("fdtable", "max_fds")?,
        file_f_path: m("file", "f_path")?,
        path_dentry: m("path", "dentry")?,
        path_mnt: m("path", "mnt")?,
        dentry_d_parent: m("dentry", "d_parent")?,
        dentry_d_name_name: m("dentry", "d_name.name")?,
        dentry_d_name_len: m("dentry", "d_name.len")?,
        mount_mnt: m("mount", "mnt")?,
        mount_mnt_parent: m("mount", "mnt_parent")?,
        mount_mnt_mountpoint: m("mount", "mnt_mountpoint")?,
        vfsmount_mnt_root: m("vfsmount", "mnt_root")?,
        dentry_d_sb: m("dentry", "d_sb")?,
        super_block_s_magic: m("super_block", "s_magic")?,
        dentry_d_inode: m("dentry", "d_inode")?,
        inode_nlink: m("inode", "__i_nlink").or_else(|_| m("inode", "i_nlink"))?,
        file_private_data: m("file", "private_data")?,
        socket_sk: m("socket", "sk")?,
        sock_dport: m("sock", "__sk_common.skc_dport")?,
        sock_daddr: m("sock", "__sk_common.skc_daddr")?,
        tp_uring_opcode: tracefs::field_offset(
            tracefs_dir,
            "io_uring",
            "io_uring_submit_req",
            "opcode",
        )?
        .unwrap_or(0),
        // Only x86 marks 32-bit system calls there; the compat hook is attached on x86_64 only.
        task_ti_status: if cfg!(target_arch = "x86_64") {
            m("task_struct", "thread_info.status")?
        } else {
            0
        },
        tp_exec_filename: tp("sched", "sched_process_exec", "filename")?,
        tp_exec_old_pid: tp("sched", "sched_process_exec", "old_pid")?,
        // Older kernels have no group_dead field; the programs then use the leader's exit.
        tp_exit_group_dead: tracefs::field_offset(
            tracefs_dir,
            "sched",
            "sched_process_exit",
            "group_dead",
        )?
        .unwrap_or(0),
        task_cred: m("task_struct", "cred")?,
        cred_uid: m("cred", "uid")?,
        cred_euid: m("cred", "euid")?,
        cred_gid: m("cred", "gid")?,
        cred_egid: m("cred", "egid")?,
        cred_cap_effective: m("cred", "cap_effective")?,
        cred_user_ns: m("cred", "user_ns")?,
        user_ns_level: m("user_namespace", "level")?,
    };
    check_dentry_layout(&offsets)?;
    let identity = IdentityOffsets {
        inode_i_ino: m("inode", "i_ino")?,
        super_block_s_dev: m("super_block", "s_dev")?,
    };
    let socket = SocketOffsets {
        file_f_inode: m("file", "f_inode")?,
        inode_i_mode: m("inode", "i_mode")?,
        sock_family: m("sock", "__sk_common.skc_family")?,
        sock_type: m("sock", "sk_type")?,
        sock_protocol: m("sock", "sk_protocol")?,
        _pad: 0,
    };
    let guard = GuardOffsets {
        task_signal: m("task_struct", "signal")?,
        // `struct pid *pids[PIDTYPE_MAX]`: pointers, 8 bytes each on the 64-bit kernels served.
        signal_pgid: m("signal_struct", "pids")? + PIDTYPE_PGID * 8,
        pid_nr: m("pid", "numbers")? + m("upid", "nr")?,
        _pad: 0,
    };
    Ok(Offsets {
        kernel: offsets,
        identity,
        socket,
        guard,
    })
}

/// The path walk reads `d_parent` and `d_name` of a dentry in one go (one helper call per path
/// component instead of three): it needs `d_name.len` 12 bytes and `d_name.name` 16 bytes past
/// `d_parent`, as every 64-bit little-endian kernel lays them out.
fn check_dentry_layout(o: &KernelOffsets) -> Result<(), SensorError> {
    if o.dentry_d_name_len == o.dentry_d_parent + 12
        && o.dentry_d_name_name == o.dentry_d_parent + 16
    {
        return Ok(());
    }
    Err(SensorError::Btf(format!(
        "struct dentry has an unexpected layout (d_parent at {}, d_name.len at {}, d_name.name at \
         {}; the path walk needs d_name right after d_parent): this kernel is not supported, \
         please report it with `uname -a`",
        o.dentry_d_parent, o.dentry_d_name_len, o.dentry_d_name_name
    )))
}
