//! Reading kernel structures with offsets found at load time, and the in-kernel path walk that
//! turns a (dentry, vfsmount) pair into an absolute path.
//!
//! Rust eBPF has no CO-RE relocations, so every field offset comes from `OFFSETS`, which
//! userspace fills from /sys/kernel/btf/vmlinux before loading. Struct layouts:
//! <https://github.com/torvalds/linux/blob/v6.18/include/linux/dcache.h> (dentry),
//! <https://github.com/torvalds/linux/blob/v6.18/fs/mount.h> (struct mount).
use core::ffi::c_void;

use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_get_smp_processor_id,
    generated::{bpf_loop, bpf_probe_read_kernel},
};
use monitor_common::{KernelOffsets, PATH_MAX, PATH_SCRATCH_SIZE, PATH_WALK_MAX_COMPONENTS, flag};

use crate::maps::PATH_SCRATCH;

/// Reads a `T` at kernel address `base + off`.
#[inline(always)]
pub fn read<T: Copy>(base: u64, off: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one gives an error, not a fault.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel((base + off as u64) as *const T) }.ok()
}

/// The current task_struct.
#[inline(always)]
pub fn current_task() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bpf_get_current_task() }
}

/// A `struct path`: the dentry and the vfsmount it was reached through.
#[derive(Clone, Copy)]
pub struct KPath {
    pub dentry: u64,
    pub vfsmount: u64,
}

impl KPath {
    /// Reads a `struct path` at `addr`.
    #[inline(always)]
    pub fn at(addr: u64, o: &KernelOffsets) -> Option<Self> {
        let dentry: u64 = read(addr, o.path_dentry)?;
        let vfsmount: u64 = read(addr, o.path_mnt)?;
        if dentry == 0 || vfsmount == 0 {
            return None;
        }
        Some(Self { dentry, vfsmount })
    }
}

/// The `struct file *` behind file descriptor `fd` of the current task.
#[inline(always)]
pub fn fd_file(task: u64, fd: u64, o: &KernelOffsets) -> Option<u64> {
    let files: u64 = read(task, o.task_files)?;
    let fdt: u64 = read(files, o.files_fdt)?;
    let max_fds: u32 = read(fdt, o.fdtable_max_fds)?;
    if fd >= max_fds as u64 {
        return None;
    }
    let fd_array: u64 = read(fdt, o.fdtable_fd)?;
    let file: u64 = read(fd_array + fd * 8, 0)?;
    if file == 0 { None } else { Some(file) }
}

/// The path of the object `fd` refers to.
#[inline(always)]
pub fn fd_path(task: u64, fd: u64, o: &KernelOffsets) -> Option<KPath> {
    let file = fd_file(task, fd, o)?;
    KPath::at(file + o.file_f_path as u64, o)
}

/// The current working directory of `task`.
#[inline(always)]
pub fn cwd_path(task: u64, o: &KernelOffsets) -> Option<KPath> {
    let fs: u64 = read(task, o.task_fs)?;
    KPath::at(fs + o.fs_pwd as u64, o)
}

/// The executable of `task` (`mm->exe_file`).
#[inline(always)]
pub fn exe_path(task: u64, o: &KernelOffsets) -> Option<KPath> {
    let mm: u64 = read(task, o.task_mm)?;
    let exe: u64 = read(mm, o.mm_exe_file)?;
    if exe == 0 {
        return None;
    }
    KPath::at(exe + o.file_f_path as u64, o)
}

const PATH_MASK: usize = PATH_MAX - 1;
const NAME_MAX: u32 = 255;
/// Where the walk keeps its write position: in the buffer, past PATH_MAX + NAME_MAX.
const POS_SLOT: usize = PATH_SCRATCH_SIZE - 8;
/// Where the walk keeps its [`WalkState`]: in the buffer too, between the path and POS_SLOT, so
/// that the stack of the programs walking a path holds one pointer for it.
const STATE_SLOT: usize = PATH_SCRATCH_SIZE - 128;
const _: () = assert!(
    STATE_SLOT > PATH_MAX + NAME_MAX as usize
        && STATE_SLOT.is_multiple_of(8)
        && STATE_SLOT + size_of::<WalkState>() <= POS_SLOT
);

/// The magic number of the filesystem `path` lives on.
#[inline(always)]
pub fn fs_magic(path: KPath, o: &KernelOffsets) -> u32 {
    read::<u64>(path.dentry, o.dentry_d_sb)
        .and_then(|sb| read::<u64>(sb, o.super_block_s_magic))
        .unwrap_or(0) as u32
}

/// Whether the file at `path` has no links left (deleted while open or running).
#[inline(always)]
pub fn unlinked(path: KPath, o: &KernelOffsets) -> bool {
    read::<u64>(path.dentry, o.dentry_d_inode)
        .and_then(|inode| {
            if inode == 0 {
                None
            } else {
                read::<u32>(inode, o.inode_nlink)
            }
        })
        .is_some_and(|n| n == 0)
}

/// Builds the absolute path of `path` in this CPU's path buffer, back to front, ending at
/// offset PATH_MAX. Returns the buffer, the offset where the path starts and `flag` bits
/// (`RESOLVED_TRUNCATED` when the walk ran out of components or room).
///
/// Crosses mount points (`mnt_mountpoint`/`mnt_parent`) up to the root of the mount tree, so a
/// chroot or a bind mount cannot hide where a file really is. A dentry that is its own parent
/// without being a mount root (pipes, sockets, memfds) yields `/<its name>`, e.g. `/memfd:x`.
#[inline(always)]
pub fn walk(path: KPath, o: &KernelOffsets) -> Option<(*const u8, u32, u32)> {
    // The offsets as scalars, two to a word (a global function takes five arguments): a
    // pointer to `o` would make the callers keep all of OFFSETS on a stack they have filled.
    let r = path_walk(
        path.dentry,
        path.vfsmount,
        u64::from(o.dentry_d_parent) | u64::from(o.mount_mnt) << 32,
        u64::from(o.mount_mnt_parent) | u64::from(o.mount_mnt_mountpoint) << 32,
        u64::from(o.vfsmount_mnt_root),
    );
    if r < 0 {
        return None;
    }
    // SAFETY: no preconditions. The same CPU as `path_walk`'s (programs do not migrate).
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let buf = PATH_SCRATCH.get_ptr_mut(cpu)?.cast::<u8>();
    let pos = r as u32 & (PATH_MAX as u32 * 2 - 1);
    let pos = if pos >= PATH_MAX as u32 {
        PATH_MAX as u32 - 1
    } else {
        pos
    };
    Some((buf.cast_const(), pos, (r >> 32) as u32))
}

/// [`walk`] as a global BPF function (exported, so BTF gives it global linkage): the verifier
/// checks it once per program, its callback's passes included, instead of once for every state
/// a program reaches a walk in (an exec reached its walks in a score of states). Returns the
/// offset where the path starts (below PATH_MAX), with the flags in the high 32 bits; -1 when
/// there is no path buffer. The offsets of `KernelOffsets` it needs come two to a word:
/// `dentry_d_parent | mount_mnt << 32`, `mount_mnt_parent | mount_mnt_mountpoint << 32`,
/// `vfsmount_mnt_root`.
///
/// Each component is one step of a bpf_loop callback: the verifier checks the step once, not
/// once per component as an unrolled loop would make it.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn path_walk(
    dentry: u64,
    vfsmount: u64,
    parent_offsets: u64,
    mount_offsets: u64,
    mnt_root_offset: u64,
) -> i64 {
    let mount_mnt = (parent_offsets >> 32) as u32;
    let vfsmount_mnt_root = mnt_root_offset as u32;
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(buf) = PATH_SCRATCH.get_ptr_mut(cpu) else {
        return -1;
    };
    let mut buf = buf.cast::<u8>();
    // The write position and the rest of the state live in the map value, not on the stack:
    // read back from there they are unknown scalars to the verifier, so the callback's states
    // converge at once instead of being re-verified for every position range, and the frames
    // of the walk take little of the stack the programs share with them.
    // SAFETY: POS_SLOT + 4 <= PATH_SCRATCH_SIZE.
    unsafe { core::ptr::write_volatile(buf.add(POS_SLOT).cast::<u32>(), PATH_MAX as u32) };
    let state = WalkState {
        dentry,
        mount: vfsmount - u64::from(mount_mnt),
        mnt_root: read(vfsmount, vfsmount_mnt_root).unwrap_or(0),
        flags: flag::RESOLVED_TRUNCATED,
        d_parent: parent_offsets as u32,
        mount_mnt,
        mount_mnt_parent: mount_offsets as u32,
        mount_mnt_mountpoint: (mount_offsets >> 32) as u32,
        vfsmount_mnt_root,
    };
    let s = buf.wrapping_add(STATE_SLOT).cast::<WalkState>();
    // SAFETY: STATE_SLOT is 8-byte aligned in the (8-byte aligned) map value, with room for a
    // WalkState before POS_SLOT. The callback is a BPF subprogram of the required signature;
    // `buf` lives on this stack frame for the duration of the call.
    unsafe {
        core::ptr::write(s, state);
        bpf_loop(
            PATH_WALK_MAX_COMPONENTS,
            walk_step as *const () as *mut c_void,
            (&raw mut buf).cast(),
            0,
        );
    }
    // SAFETY: as above.
    let mut pos = unsafe { core::ptr::read_volatile(buf.add(POS_SLOT).cast::<u32>()) }
        & (PATH_MAX as u32 * 2 - 1);
    if pos >= PATH_MAX as u32 {
        pos = PATH_MAX as u32 - 1;
        // The root directory itself (or nothing could be read).
        // SAFETY: pos < PATH_MAX.
        unsafe { *buf.add(pos as usize) = b'/' };
    }
    // SAFETY: as above.
    let flags = unsafe { core::ptr::read_volatile(&raw const (*s).flags) };
    i64::from(flags) << 32 | i64::from(pos)
}

/// The walk's state, at STATE_SLOT of the path buffer, shared with the callback. It carries
/// the offsets the step needs, so that the step reads neither `OFFSETS` nor the mount's root
/// again until the walk crosses into another mount.
#[repr(C)]
struct WalkState {
    dentry: u64,
    mount: u64,
    /// `vfsmount.mnt_root` of the mount being walked.
    mnt_root: u64,
    flags: u32,
    d_parent: u32,
    mount_mnt: u32,
    mount_mnt_parent: u32,
    mount_mnt_mountpoint: u32,
    vfsmount_mnt_root: u32,
}

/// `dentry.d_parent` followed by `dentry.d_name` (`struct qstr`: the hash, the length, the
/// name pointer), read in one go. Userspace checks at load time that the running kernel lays
/// the dentry out this way (`d_name.len` at `d_parent + 12`, `d_name.name` at `d_parent + 16`).
#[repr(C)]
#[derive(Clone, Copy)]
struct DentryHead {
    parent: u64,
    hash: u32,
    len: u32,
    name: u64,
}

/// One component of the walk. Returns 1 to stop.
#[inline(never)]
extern "C" fn walk_step(_index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the path buffer pointer the caller passed to bpf_loop: this CPU's
    // PATH_SCRATCH_SIZE-byte map value, with the state at STATE_SLOT; every index into the path
    // is masked below PATH_MAX + NAME_MAX.
    unsafe {
        let buf = *ctx.cast::<*mut u8>();
        let s = buf.add(STATE_SLOT).cast::<WalkState>();
        let (dentry, mount) = ((*s).dentry, (*s).mount);
        let Some(head) = read::<DentryHead>(dentry, (*s).d_parent) else {
            return 1;
        };
        let parent = head.parent;
        if parent == 0 {
            return 1;
        }
        if dentry == (*s).mnt_root {
            let mount_parent: u64 = read(mount, (*s).mount_mnt_parent).unwrap_or(0);
            if mount_parent == mount || mount_parent == 0 {
                (*s).flags = 0;
                return 1;
            }
            let vfsmount = mount_parent + (*s).mount_mnt as u64;
            (*s).dentry = read(mount, (*s).mount_mnt_mountpoint).unwrap_or(0);
            (*s).mount = mount_parent;
            (*s).mnt_root = read(vfsmount, (*s).vfsmount_mnt_root).unwrap_or(0);
            return 0;
        }
        let pos_slot = buf.add(POS_SLOT).cast::<u32>();
        let pos = core::ptr::read_volatile(pos_slot);
        let name = head.name;
        let len: u32 = head.len & NAME_MAX;
        if pos > PATH_MAX as u32 || pos < len + 1 {
            return 1;
        }
        let start = (pos - len) as usize & PATH_MASK;
        // Exactly `len` bytes (no NUL): the byte after the name is the '/' of the component
        // written before it.
        bpf_probe_read_kernel(buf.add(start).cast(), len, name as *const _);
        let slash = (pos - len - 1) as usize & PATH_MASK;
        *buf.add(slash) = b'/';
        core::ptr::write_volatile(pos_slot, slash as u32);
        if dentry == parent {
            // Not a mount root yet its own parent: a pseudo file (pipe, socket, memfd).
            (*s).flags = 0;
            return 1;
        }
        (*s).dentry = parent;
    }
    0
}

/// `v`, written to the path buffer's position slot (free once the walk is over) and read back:
/// the verifier then knows it only as some value, so that the states of a search loop over the
/// walked path, which can stop at any of its iterations with a different known index, become
/// one state from here on instead of one per iteration.
///
/// # Safety
/// `buf` must be the path buffer [`walk`] returned, and the walk over.
#[inline(always)]
pub unsafe fn opaque(buf: *const u8, v: u32) -> u32 {
    // SAFETY: POS_SLOT + 4 <= PATH_SCRATCH_SIZE, the size of the map value `buf` points at.
    unsafe {
        let slot = buf.cast_mut().add(POS_SLOT).cast::<u32>();
        core::ptr::write_volatile(slot, v);
        core::ptr::read_volatile(slot)
    }
}

/// Copies the path the walk built (`buf[start..PATH_MAX]`) to `dst`; returns its length.
///
/// # Safety
/// `dst` must have room for PATH_MAX bytes.
#[inline(always)]
pub unsafe fn copy_walked(dst: *mut u8, buf: *const u8, start: u32) -> u32 {
    let start = start as usize & PATH_MASK;
    let len = PATH_MAX - start;
    // SAFETY: source is within the path buffer (start < PATH_MAX), destination has PATH_MAX
    // bytes of room (caller's contract), len <= PATH_MAX.
    let ret = unsafe {
        bpf_probe_read_kernel(
            dst.cast(),
            len as u32 & (PATH_SCRATCH_SIZE as u32 - 1),
            buf.add(start).cast(),
        )
    };
    if ret < 0 { 0 } else { len as u32 }
}
