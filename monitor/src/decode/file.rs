//! Decoding the file family: opens, and the names given by rename/link/symlink.

use super::*;

/// The open, the proc-macro callers and the protected-file number of an `OpenRecord`.
pub(super) fn decode_open(bytes: &[u8]) -> Result<(Open, u32, u32), DecodeError> {
    let r = fixed::<OpenRecord>(bytes, kind::OPEN)?;
    let mut rest = &bytes[size_of::<OpenRecord>()..];
    let raw = text(take(&mut rest, r.path_len, kind::OPEN, bytes.len())?);
    let resolved = text(take(&mut rest, r.resolved_len, kind::OPEN, bytes.len())?);
    let truncated = r.flags & flag::RESOLVED_TRUNCATED != 0;

    let pseudo = match r.fs_magic {
        PIPEFS_MAGIC => Some("pipe:"),
        SOCKFS_MAGIC => Some("socket:"),
        ANON_INODE_FS_MAGIC => Some("anon_inode:"),
        _ => None,
    };
    let path = if let Some(prefix) = pseudo.filter(|_| r.flags & flag::RESOLVED_IS_TARGET != 0) {
        // Pipes, sockets and anonymous inodes have no path: name the object by its kind and
        // the name it was opened by (`/dev/fd/6`, `/proc/self/fd/3`).
        format!("{prefix}{raw}")
    } else if r.flags & flag::RESOLVED_IS_TARGET != 0 && !resolved.is_empty() {
        resolved
    } else if raw.starts_with('/') {
        normalize(Path::new(&raw))
    } else if r.flags & flag::RESOLVED_IS_BASE != 0 && !resolved.is_empty() {
        normalize(&Path::new(&resolved).join(&raw))
    } else if r.flags & flag::PATH_UNREADABLE != 0 {
        "<unreadable>".to_owned()
    } else {
        raw.clone()
    };
    let access = match r.open_flags & libc::O_ACCMODE as u32 {
        x if x == libc::O_WRONLY as u32 => Access::Write,
        x if x == libc::O_RDWR as u32 => Access::ReadWrite,
        _ => Access::Read,
    };
    let open = Open {
        syscall: open_syscall(r.syscall),
        requested: (raw != path).then_some(raw),
        path,
        flags: r.open_flags,
        access,
        create: r.open_flags & (libc::O_CREAT | libc::O_TRUNC) as u32 != 0,
        result: r.result,
        error: errno_name(r.result),
        truncated,
        compat: r.flags & flag::COMPAT != 0,
        protected: None,
    };
    Ok((open, r.callers, r.protected))
}

/// Filesystem magic numbers of objects that have no path (include/uapi/linux/magic.h).
pub(super) const PIPEFS_MAGIC: u32 = 0x5049_5045;
const SOCKFS_MAGIC: u32 = 0x534f_434b;
const ANON_INODE_FS_MAGIC: u32 = 0x0904_1934;

/// `/proc/<own pid>/...` is what the kernel resolves `/proc/self/...` to; saying `self` keeps
/// paths comparable across runs. Another process's `/proc/<pid>` stays as it is.
pub(super) fn own_proc_as_self(path: String, tgid: u32) -> String {
    // Most paths are not under /proc: no formatting for those.
    let Some(after) = path.strip_prefix("/proc/") else {
        return path;
    };
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    if after[..digits].parse::<u32>().ok() != Some(tgid) {
        return path;
    }
    match after.get(digits..) {
        Some("") => "/proc/self".to_owned(),
        Some(rest) if rest.starts_with('/') => format!("/proc/self{rest}"),
        _ => path,
    }
}

pub(super) fn open_syscall(code: u32) -> OpenSyscall {
    match code {
        syscall::OPENAT => OpenSyscall::Openat,
        syscall::OPENAT2 => OpenSyscall::Openat2,
        syscall::OPEN => OpenSyscall::Open,
        syscall::CREAT => OpenSyscall::Creat,
        syscall::OPEN_BY_HANDLE_AT => OpenSyscall::OpenByHandleAt,
        syscall::RENAME => OpenSyscall::Rename,
        syscall::LINK => OpenSyscall::Link,
        syscall::SYMLINK => OpenSyscall::Symlink,
        syscall::RENAME_SOURCE => OpenSyscall::RenameSource,
        syscall::LINK_SOURCE => OpenSyscall::LinkSource,
        _ => OpenSyscall::Unknown,
    }
}
