//! `buildwatch guard`: builds nobody asked to watch. Userspace resolves the executables that
//! start a build (cargo, rustc, rust-analyzer and its proc-macro server, of every toolchain on
//! the machine) to their identities (device, inode) and fills `GUARD_ROOTS`; at exec, a process
//! that is not tracked yet and whose new image is one of them becomes tracked, a build root. The
//! rest of the machine pays one flag load per exec, and the same single `TRACKED` lookup per
//! event as in a normal run.
use aya_ebpf::{Global, helpers::bpf_get_current_pid_tgid, macros::map, maps::HashMap};
use monitor_common::InodeKey;

use crate::{
    kernel::{current_task, read},
    maps::{OFFSETS, TRACKED, count_loss},
    protected::IDENTITY_OFFSETS,
};

/// The executables that start a build: identity → 1.
#[map]
pub static GUARD_ROOTS: HashMap<InodeKey, u32> = HashMap::with_max_entries(4096, 0);

/// Nonzero in guard mode (set at load time): exec adopts build roots. Zero in every other run,
/// which then behaves as before.
#[unsafe(no_mangle)]
pub static GUARD: Global<u32> = Global::new(0);

/// `TRACKED`'s value for a build root adopted at exec (forked processes get 1).
const ROOT: u32 = 2;

/// At `sched_process_exec`, before the exec record is written: in guard mode, tracks the
/// current process when it is untracked and its new image is a build root. True when it did
/// (the exec record then says so, which is how userspace learns of a new build). A subprogram
/// of its own, so that nothing of it lands on the exec program's stack.
#[inline(never)]
pub fn adopt() -> bool {
    if GUARD.load() == 0 {
        return false;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only tested for presence.
    if unsafe { TRACKED.get(tgid) }.is_some() {
        return false;
    }
    let Some(key) = exe_identity() else {
        return false;
    };
    // SAFETY: only tested for presence.
    if unsafe { GUARD_ROOTS.get(key) }.is_none() {
        return false;
    }
    if TRACKED.insert(tgid, ROOT, 0).is_err() {
        count_loss(monitor_common::counter::TRACK_FULL);
        return false;
    }
    true
}

/// The identity of the current task's executable (`mm->exe_file`), as `PROTECTED`'s keys.
#[inline(always)]
fn exe_identity() -> Option<InodeKey> {
    let o = OFFSETS.load();
    let id = IDENTITY_OFFSETS.load();
    let mm: u64 = read(current_task(), o.task_mm)?;
    let file: u64 = read(mm, o.mm_exe_file)?;
    if file == 0 {
        return None;
    }
    let dentry: u64 = read(file, o.file_f_path + o.path_dentry)?;
    let inode: u64 = read(dentry, o.dentry_d_inode)?;
    let sb: u64 = read(dentry, o.dentry_d_sb)?;
    if inode == 0 || sb == 0 {
        return None;
    }
    let ino: u64 = read(inode, id.inode_i_ino)?;
    let dev: u32 = read(sb, id.super_block_s_dev)?;
    Some(InodeKey { dev, _pad: 0, ino })
}
