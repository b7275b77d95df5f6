//! Protected files: the user's secrets known by identity (device, inode), so that an open of one
//! is recognised whatever name reached it (a hard link, a bind mount in a private namespace,
//! `/proc/PID/root/...`). Not a ring buffer record: the key of the kernel's `PROTECTED` map,
//! which userspace fills at start.

/// The identity of a file: its filesystem's device number as the kernel keeps it
/// (`super_block.s_dev`, `MAJOR << 20 | MINOR`, not the `st_dev` encoding of stat(2)) and its
/// inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InodeKey {
    /// `super_block.s_dev` (kernel `dev_t` encoding).
    pub dev: u32,
    /// Reserved, zero.
    pub _pad: u32,
    /// `inode.i_ino`.
    pub ino: u64,
}

impl InodeKey {
    /// The kernel's `dev_t` encoding (`MKDEV`) of a device number's major and minor.
    pub const fn kernel_dev(major: u32, minor: u32) -> u32 {
        (major << 20) | (minor & 0xf_ffff)
    }
}

/// The kernel structure offsets reading a file's identity needs, found from BTF at load time
/// (a global of their own: the open programs copy [`crate::KernelOffsets`] onto a stack that
/// has no room left).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdentityOffsets {
    /// `inode.i_ino`
    pub inode_i_ino: u32,
    /// `super_block.s_dev`
    pub super_block_s_dev: u32,
}

impl_record!(InodeKey, IdentityOffsets);

const _: () = assert!(size_of::<InodeKey>() == 16);
const _: () = assert!(size_of::<IdentityOffsets>() == 8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::round_trip;

    #[test]
    fn inode_key_round_trips() {
        round_trip(InodeKey {
            dev: InodeKey::kernel_dev(8, 1),
            _pad: 0,
            ino: 1_234_567,
        });
        assert_eq!(InodeKey::kernel_dev(259, 3), (259 << 20) | 3);
    }
}
