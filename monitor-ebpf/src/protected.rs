//! Secrets known by identity: userspace resolves the build user's secrets to (device, inode) at
//! start and fills `PROTECTED`; an open whose object is one of them is marked in its record,
//! whatever name reached it (hard link, bind mount, `/proc/PID/root`, symlinks).
use aya_ebpf::{Global, macros::map, maps::HashMap};
use monitor_common::{IdentityOffsets, InodeKey};

use crate::kernel::read;

/// Protected files: identity → their index in userspace's table, plus one.
#[map]
pub static PROTECTED: HashMap<InodeKey, u32> = HashMap::with_max_entries(16384, 0);

/// `inode.i_ino` and `super_block.s_dev`, written by userspace at load time (from BTF).
#[unsafe(no_mangle)]
pub static IDENTITY_OFFSETS: Global<IdentityOffsets> = Global::new(IdentityOffsets {
    inode_i_ino: 0,
    super_block_s_dev: 0,
});

/// The protected-file number of `dentry`'s file (0: not protected): three reads and one lookup
/// per successful open. A subprogram of its own (not inlined), so that its key takes no room
/// on the stack of the open programs, which the path walk fills to the limit.
#[inline(never)]
pub fn protected(dentry: u64, d_inode: u32, d_sb: u32) -> u32 {
    let o = IDENTITY_OFFSETS.load();
    let Some(inode) = read::<u64>(dentry, d_inode).filter(|&i| i != 0) else {
        return 0;
    };
    let (Some(ino), Some(sb)) = (read::<u64>(inode, o.inode_i_ino), read::<u64>(dentry, d_sb))
    else {
        return 0;
    };
    let Some(dev) = read::<u32>(sb, o.super_block_s_dev) else {
        return 0;
    };
    let key = InodeKey { dev, _pad: 0, ino };
    // SAFETY: the value is copied out at once.
    unsafe { PROTECTED.get(key) }.copied().unwrap_or(0)
}
