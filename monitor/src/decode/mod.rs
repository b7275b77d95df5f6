//! Raw sensor records (monitor-common) → typed [`Event`]s. No aya types past this point.
use std::path::Path;

use monitor_common::{
    CompatRecord, ConnectRecord, DnsRecord, ExecRecord, ExitRecord, ForkRecord, IO_URING_CREATE,
    IoUringRecord, MacroLibRecord, OpenRecord, Record, RecordHeader, TamperRecord, c_bytes, flag,
    kind, syscall,
};
use thiserror::Error;

use crate::model::{
    Access, CompatSyscall, Connect, ConnectSyscall, Dns, Event, EventKind, Exec, Exit, Fork,
    IoUring, IoUringOp, KEPT_VARIABLES, Lost, LostReason, MacroLib, NamespaceCall, Open,
    OpenSyscall, ProcessCall, SocketFamily, Tamper, TamperSyscall, path::normalize,
};

/// A record that cannot be decoded: a bug in the sensor or a version mismatch, never expected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is shorter than its fixed part or than its header says.
    #[error("sensor record of kind {kind} is truncated: {len} bytes, expected {expected}")]
    Truncated {
        /// Record kind.
        kind: u32,
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        expected: usize,
    },
    /// Unknown record kind.
    #[error("unknown sensor record kind {0}")]
    UnknownKind(u32),
}

/// Turns records into events; converts the kernel's monotonic clock into wall-clock time.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, in nanoseconds.
    realtime_offset_ns: i128,
}

impl Decoder {
    /// A decoder whose timestamps are shifted by `realtime_offset_ns` (wall clock minus the
    /// monotonic clock that `bpf_ktime_get_ns` uses).
    pub fn new(realtime_offset_ns: i128) -> Self {
        Self { realtime_offset_ns }
    }

    /// A decoder for this machine's clocks, now.
    pub fn for_this_boot() -> Self {
        let realtime = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME);
        let monotonic = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC);
        let ns =
            |t: nix::sys::time::TimeSpec| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128;
        match (realtime, monotonic) {
            (Ok(r), Ok(m)) => Self::new(ns(r) - ns(m)),
            _ => Self::new(0),
        }
    }

    /// Decodes one ring buffer record.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event, DecodeError> {
        let header = fixed::<RecordHeader>(bytes, 0)?;
        let mut callers = 0u32;
        let kind = match header.kind {
            kind::FORK => {
                let r = fixed::<ForkRecord>(bytes, header.kind)?;
                callers = r.callers;
                EventKind::Fork(Fork {
                    child_pid: r.child_tgid,
                })
            }
            kind::EXEC => EventKind::Exec(decode_exec(bytes)?),
            kind::EXIT => {
                let r = fixed::<ExitRecord>(bytes, header.kind)?;
                EventKind::Exit(Exit::from_wait_status(r.exit_code))
            }
            kind::OPEN => {
                let (mut open, c) = decode_open(bytes)?;
                callers = c;
                open.path = own_proc_as_self(open.path, header.tgid);
                EventKind::Open(open)
            }
            kind::CONNECT => {
                let r = fixed::<ConnectRecord>(bytes, header.kind)?;
                callers = r.callers;
                EventKind::Connect(decode_connect(&r))
            }
            kind::DNS => {
                let r = fixed::<DnsRecord>(bytes, header.kind)?;
                callers = r.callers;
                let msg = &r.data[..(r.len as usize).min(r.data.len())];
                let (name, qtype) =
                    dns_question(msg).unwrap_or_else(|| ("<unparsable>".to_owned(), String::new()));
                EventKind::Dns(Dns {
                    name,
                    qtype,
                    server: ip_text(r.family, &r.addr),
                    port: r.port,
                })
            }
            kind::TAMPER => {
                let r = fixed::<TamperRecord>(bytes, header.kind)?;
                callers = r.callers;
                let request = match r.syscall {
                    syscall::PTRACE => Some(ptrace_request(r.request)),
                    syscall::UNSHARE | syscall::SETNS | syscall::CLONE_NS => {
                        Some(namespace_flags(r.request))
                    }
                    syscall::PIDFD_GETFD => Some(format!("fd {}", r.request)),
                    _ => None,
                };
                EventKind::Tamper(Tamper {
                    syscall: tamper_syscall(r.syscall),
                    request,
                    target: r.target,
                })
            }
            kind::IO_URING => {
                let r = fixed::<IoUringRecord>(bytes, header.kind)?;
                callers = r.callers;
                EventKind::IoUring(IoUring {
                    op: if r.opcode == IO_URING_CREATE {
                        IoUringOp::Setup
                    } else {
                        IoUringOp::Op(r.opcode)
                    },
                })
            }
            kind::COMPAT => {
                let r = fixed::<CompatRecord>(bytes, header.kind)?;
                callers = r.callers;
                EventKind::CompatSyscall(CompatSyscall {
                    syscall: crate::i386::syscall_name(r.nr),
                    nr: r.nr,
                    result: r.result,
                    error: errno_name(r.result),
                })
            }
            kind::MACRO_LIB => {
                let r = fixed::<MacroLibRecord>(bytes, header.kind)?;
                let mut rest = &bytes[size_of::<MacroLibRecord>()..];
                let path = text(take(&mut rest, r.path_len, header.kind, bytes.len())?);
                EventKind::MacroLib(MacroLib {
                    slot: r.slot as u8,
                    path,
                })
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        Ok(Event {
            time_ns: self.wall_clock(header.time_ns),
            pid: header.tgid,
            tid: header.tid,
            ppid: 0,
            comm: text(c_bytes(&header.comm)),
            actor: None,
            callers: if callers == 0 {
                Vec::new()
            } else {
                (0..32u8).filter(|bit| callers & (1 << bit) != 0).collect()
            },
            kind,
        })
    }

    /// A `lost` event for `count` records dropped for `reason`, stamped now.
    pub fn lost(&self, count: u64, reason: LostReason) -> Event {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
            .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
            .unwrap_or(0);
        Event {
            time_ns: now,
            pid: 0,
            tid: 0,
            ppid: 0,
            comm: String::new(),
            actor: None,
            callers: Vec::new(),
            kind: EventKind::Lost(Lost { count, reason }),
        }
    }

    fn wall_clock(&self, monotonic_ns: u64) -> u64 {
        (monotonic_ns as i128 + self.realtime_offset_ns).clamp(0, u64::MAX as i128) as u64
    }
}

fn fixed<R: Record>(bytes: &[u8], kind: u32) -> Result<R, DecodeError> {
    R::read_from(bytes).ok_or(DecodeError::Truncated {
        kind,
        len: bytes.len(),
        expected: size_of::<R>(),
    })
}

/// Splits `len` bytes off the front of `rest`.
fn take<'a>(
    rest: &mut &'a [u8],
    len: u32,
    kind: u32,
    total: usize,
) -> Result<&'a [u8], DecodeError> {
    let len = len as usize;
    if rest.len() < len {
        return Err(DecodeError::Truncated {
            kind,
            len: total,
            expected: total - rest.len() + len,
        });
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// NUL-separated strings (argv, environment), without the empty tail.
fn strings(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let block = block.strip_suffix(b"\0").unwrap_or(block);
    block
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty() || block.is_empty())
}

fn decode_exec(bytes: &[u8]) -> Result<Exec, DecodeError> {
    let r = fixed::<ExecRecord>(bytes, kind::EXEC)?;
    let mut rest = &bytes[size_of::<ExecRecord>()..];
    let filename = take(&mut rest, r.filename_len, kind::EXEC, bytes.len())?;
    let resolved = take(&mut rest, r.resolved_len, kind::EXEC, bytes.len())?;
    let cwd = take(&mut rest, r.cwd_len, kind::EXEC, bytes.len())?;
    let argv = take(&mut rest, r.argv_len, kind::EXEC, bytes.len())?;
    let env_block = take(&mut rest, r.env_len, kind::EXEC, bytes.len())?;

    // Only the kept variables survive; the rest of the environment is dropped here.
    let mut env = std::collections::BTreeMap::new();
    for var in strings(env_block) {
        if let Some(eq) = var.iter().position(|&b| b == b'=')
            && let Ok(name) = std::str::from_utf8(&var[..eq])
            && KEPT_VARIABLES.contains(&name)
        {
            env.insert(name.to_owned(), text(&var[eq + 1..]));
        }
    }
    let path = text(filename);
    let exe = (r.flags & flag::RESOLVED_IS_TARGET != 0 && !resolved.is_empty())
        .then(|| text(resolved))
        .filter(|exe| exe != &path);
    Ok(Exec {
        path,
        exe,
        cwd: (!cwd.is_empty()).then(|| text(cwd)),
        argv: if argv.is_empty() {
            Vec::new()
        } else {
            strings(argv).map(text).collect()
        },
        argv_truncated: r.flags & flag::ARGV_TRUNCATED != 0,
        env,
        env_truncated: r.flags & flag::ENV_TRUNCATED != 0,
        deleted: r.flags & flag::EXE_DELETED != 0,
    })
}

fn decode_open(bytes: &[u8]) -> Result<(Open, u32), DecodeError> {
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
    };
    Ok((open, r.callers))
}

const PIPEFS_MAGIC: u32 = 0x5049_5045;
const SOCKFS_MAGIC: u32 = 0x534f_434b;
const ANON_INODE_FS_MAGIC: u32 = 0x0904_1934;

fn decode_connect(r: &ConnectRecord) -> Connect {
    let family = SocketFamily::from_af(r.family);
    let addr = match family {
        SocketFamily::Inet => {
            std::net::Ipv4Addr::new(r.addr[0], r.addr[1], r.addr[2], r.addr[3]).to_string()
        }
        SocketFamily::Inet6 => std::net::Ipv6Addr::from(r.addr).to_string(),
        SocketFamily::Unix => {
            let len = (r.unix_path_len as usize).min(r.unix_path.len());
            let path = &r.unix_path[..len];
            match path.split_first() {
                // Abstract socket: leading NUL, name runs to the end of the address.
                Some((0, name)) => {
                    format!("@{}", text(name.split(|&b| b == 0).next().unwrap_or(name)))
                }
                _ => text(c_bytes(path)),
            }
        }
        SocketFamily::Other(_) => String::new(),
    };
    let refused = r.flags & flag::REFUSED != 0;
    Connect {
        syscall: connect_syscall(r.syscall),
        family,
        addr,
        port: r.port,
        result: if refused {
            -(libc::EPERM as i64)
        } else {
            r.result
        },
        error: if refused {
            Some("EPERM".to_owned())
        } else {
            errno_name(r.result)
        },
        refused,
    }
}

/// The name a DNS query asks for, and its type, from the start of the message.
pub fn dns_question(msg: &[u8]) -> Option<(String, String)> {
    // Header: 12 bytes; then QNAME as length-prefixed labels ending with 0, then QTYPE.
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *msg.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 || labels.len() > 127 {
            return None;
        }
        let label = msg.get(pos..pos + len)?;
        labels.push(
            label
                .iter()
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
                .collect(),
        );
        pos += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    let qtype = match qtype {
        1 => "A".to_owned(),
        2 => "NS".to_owned(),
        5 => "CNAME".to_owned(),
        15 => "MX".to_owned(),
        16 => "TXT".to_owned(),
        28 => "AAAA".to_owned(),
        33 => "SRV".to_owned(),
        255 => "ANY".to_owned(),
        n => n.to_string(),
    };
    Some((labels.join("."), qtype))
}

fn ip_text(family: u16, addr: &[u8; 16]) -> String {
    if family as i32 == libc::AF_INET6 {
        std::net::Ipv6Addr::from(*addr).to_string()
    } else {
        std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string()
    }
}

fn ptrace_request(r: u32) -> String {
    match r {
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSER",
        13 => "PTRACE_SETREGS",
        15 => "PTRACE_SETFPREGS",
        16 => "PTRACE_ATTACH",
        0x4205 => "PTRACE_SETREGSET",
        0x4206 => "PTRACE_SEIZE",
        _ => return format!("request {r}"),
    }
    .to_owned()
}

/// The CLONE_NEW* flags in `flags` (`CLONE_NEWUSER|CLONE_NEWNS`), `0` for setns's "any type".
fn namespace_flags(flags: u32) -> String {
    const NAMES: [(u32, &str); 8] = [
        (0x1000_0000, "CLONE_NEWUSER"),
        (0x0002_0000, "CLONE_NEWNS"),
        (0x2000_0000, "CLONE_NEWPID"),
        (0x4000_0000, "CLONE_NEWNET"),
        (0x0200_0000, "CLONE_NEWCGROUP"),
        (0x0400_0000, "CLONE_NEWUTS"),
        (0x0800_0000, "CLONE_NEWIPC"),
        (0x80, "CLONE_NEWTIME"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "0".to_owned()
    } else {
        names.join("|")
    }
}

/// `/proc/<own pid>/...` is what the kernel resolves `/proc/self/...` to; saying `self` keeps
/// paths comparable across runs. Another process's `/proc/<pid>` stays as it is.
fn own_proc_as_self(path: String, tgid: u32) -> String {
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

fn open_syscall(code: u32) -> OpenSyscall {
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

fn connect_syscall(code: u32) -> ConnectSyscall {
    match code {
        syscall::CONNECT => ConnectSyscall::Connect,
        syscall::SENDTO => ConnectSyscall::Sendto,
        syscall::SENDMSG => ConnectSyscall::Sendmsg,
        syscall::SENDMMSG => ConnectSyscall::Sendmmsg,
        syscall::FASTOPEN => ConnectSyscall::Fastopen,
        syscall::CGROUP_CONNECT => ConnectSyscall::IoUring,
        syscall::CGROUP_SENDMSG => ConnectSyscall::Send,
        syscall::COMPAT_CONNECT => ConnectSyscall::Int80Connect,
        syscall::COMPAT_SENDMSG => ConnectSyscall::Int80Send,
        _ => ConnectSyscall::Unknown,
    }
}

fn tamper_syscall(code: u32) -> TamperSyscall {
    match code {
        syscall::PTRACE => TamperSyscall::Process(ProcessCall::Ptrace),
        syscall::PROCESS_VM_WRITEV => TamperSyscall::Process(ProcessCall::ProcessVmWritev),
        syscall::PROCESS_VM_READV => TamperSyscall::Process(ProcessCall::ProcessVmReadv),
        syscall::PIDFD_GETFD => TamperSyscall::Process(ProcessCall::PidfdGetfd),
        syscall::UNSHARE => TamperSyscall::Namespace(NamespaceCall::Unshare),
        syscall::SETNS => TamperSyscall::Namespace(NamespaceCall::Setns),
        syscall::CLONE_NS => TamperSyscall::Namespace(NamespaceCall::Clone),
        _ => TamperSyscall::Process(ProcessCall::Unknown),
    }
}

/// `ENOENT` for -2, etc.; `None` for non-negative results.
pub fn errno_name(result: i64) -> Option<String> {
    if result >= 0 {
        return None;
    }
    let errno = (-result) as i32;
    let name = match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => format!("E{errno}"),
        e => format!("{e:?}"),
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_common::{COMM_LEN, UNIX_PATH_MAX};

    fn header(kind: u32, size: usize) -> RecordHeader {
        let mut comm = [0u8; COMM_LEN];
        comm[..4].copy_from_slice(b"test");
        RecordHeader {
            kind,
            size: size as u32,
            time_ns: 1_000,
            tgid: 100,
            tid: 101,
            comm,
        }
    }

    fn decoder() -> Decoder {
        Decoder::new(5_000)
    }

    #[test]
    fn fork_and_exit() {
        let rec = ForkRecord {
            header: header(kind::FORK, 56),
            child_tgid: 200,
            parent_tgid: 100,
            callers: 0b1010,
            _pad: 0,
        };
        let ev = decoder().decode(rec.as_bytes()).expect("decode");
        assert_eq!(ev.kind, EventKind::Fork(Fork { child_pid: 200 }));
        assert_eq!(ev.callers, [1, 3]);
        assert_eq!(ev.callers, [1, 3]);
        assert_eq!(
            (ev.pid, ev.tid, ev.comm.as_str(), ev.time_ns),
            (100, 101, "test", 6_000)
        );

        let rec = ExitRecord {
            header: header(kind::EXIT, 48),
            exit_code: 3 << 8,
            _pad: 0,
        };
        let ev = decoder().decode(rec.as_bytes()).expect("decode");
        assert_eq!(
            ev.kind,
            EventKind::Exit(Exit {
                code: Some(3),
                signal: None
            })
        );
    }

    fn with_tail(fixed: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut v = fixed.to_vec();
        for p in parts {
            v.extend_from_slice(p);
        }
        v
    }

    #[test]
    fn exec_keeps_only_cargo_variables() {
        let env: &[u8] = b"HOME=/root\0SECRET_TOKEN=hunter2\0CARGO_PKG_NAME=foo\0CARGO_PKG_VERSION=1.2.3\0OUT_DIR=/t/out\0CARGO_MANIFEST_DIR=/src/foo\0CARGO_CRATE_NAME=build_script_build\0";
        let argv: &[u8] = b"/t/build-script-build\0--flag\0";
        let rec = ExecRecord {
            header: header(kind::EXEC, 0),
            old_tid: 101,
            flags: flag::RESOLVED_IS_TARGET,
            filename_len: 21,
            resolved_len: 0,
            cwd_len: 8,
            argv_len: argv.len() as u32,
            env_len: env.len() as u32,
            fs_magic: 0,
        };
        let bytes = with_tail(
            rec.as_bytes(),
            &[b"/t/build-script-build", b"/src/foo", argv, env],
        );
        let EventKind::Exec(exec) = decoder().decode(&bytes).expect("decode").kind else {
            panic!()
        };
        assert_eq!(exec.path, "/t/build-script-build");
        assert_eq!(exec.exe, None);
        assert_eq!(exec.argv, ["/t/build-script-build", "--flag"]);
        assert_eq!(exec.cwd.as_deref(), Some("/src/foo"));
        assert_eq!(exec.var("CARGO_PKG_NAME"), Some("foo"));
        assert_eq!(exec.var("CARGO_PKG_VERSION"), Some("1.2.3"));
        assert_eq!(exec.var("OUT_DIR"), Some("/t/out"));
        assert_eq!(exec.var("CARGO_MANIFEST_DIR"), Some("/src/foo"));
        assert_eq!(exec.var("CARGO_CRATE_NAME"), Some("build_script_build"));
        assert_eq!(exec.var("HOME"), Some("/root"));
        assert_eq!(exec.env.len(), 6, "only kept variables: {:?}", exec.env);
        assert!(!format!("{exec:?}").contains("hunter2"));
    }

    #[test]
    fn exec_truncated_record_is_an_error() {
        let rec = ExecRecord {
            header: header(kind::EXEC, 0),
            filename_len: 50,
            ..Default::default()
        };
        let bytes = with_tail(rec.as_bytes(), &[b"short"]);
        assert!(matches!(
            decoder().decode(&bytes),
            Err(DecodeError::Truncated { .. })
        ));
    }

    fn open(raw: &str, resolved: &str, flags: u32, result: i64, open_flags: u32) -> Open {
        let rec = OpenRecord {
            header: header(kind::OPEN, 0),
            syscall: syscall::OPENAT,
            dfd: -100,
            open_flags,
            mode: 0,
            result,
            flags,
            path_len: raw.len() as u32,
            resolved_len: resolved.len() as u32,
            fs_magic: 0,
            callers: 0,
            _pad: 0,
        };
        let bytes = with_tail(rec.as_bytes(), &[raw.as_bytes(), resolved.as_bytes()]);
        let EventKind::Open(open) = decoder().decode(&bytes).expect("decode").kind else {
            panic!()
        };
        open
    }

    #[test]
    fn open_paths() {
        // Success: the kernel's resolution wins; the argument is kept when it differs.
        let o = open(
            "x/../secret",
            "/home/u/secret",
            flag::RESOLVED_IS_TARGET,
            3,
            0,
        );
        assert_eq!(o.path, "/home/u/secret");
        assert_eq!(o.requested.as_deref(), Some("x/../secret"));
        assert_eq!(
            (o.access, o.create, o.error.as_deref()),
            (Access::Read, false, None)
        );
        // Failure, relative: joined to the base directory.
        let o = open(
            "../.ssh/id_rsa",
            "/home/u/proj",
            flag::RESOLVED_IS_BASE,
            -2,
            0,
        );
        assert_eq!(o.path, "/home/u/.ssh/id_rsa");
        assert_eq!(o.error.as_deref(), Some("ENOENT"));
        // Failure, absolute.
        let o = open("/etc/./shadow", "", 0, -13, 0);
        assert_eq!(o.path, "/etc/shadow");
        assert_eq!(o.error.as_deref(), Some("EACCES"));
        // Write with O_CREAT|O_TRUNC.
        let o = open("/tmp/x", "/tmp/x", flag::RESOLVED_IS_TARGET, 4, 0o1101);
        assert_eq!(
            (o.access, o.create, o.requested.clone()),
            (Access::Write, true, None)
        );
        assert!(o.writes());
    }

    #[test]
    fn pipes_are_named_by_kind() {
        let rec = OpenRecord {
            header: header(kind::OPEN, 0),
            syscall: syscall::OPENAT,
            dfd: -100,
            open_flags: 1,
            mode: 0,
            result: 4,
            flags: flag::RESOLVED_IS_TARGET,
            path_len: 9,
            resolved_len: 1,
            fs_magic: PIPEFS_MAGIC,
            callers: 0,
            _pad: 0,
        };
        let bytes = with_tail(rec.as_bytes(), &[b"/dev/fd/7", b"/"]);
        let EventKind::Open(o) = decoder().decode(&bytes).expect("decode").kind else {
            panic!()
        };
        assert_eq!(o.path, "pipe:/dev/fd/7");
    }

    #[test]
    fn connect_families() {
        let mut rec = ConnectRecord {
            header: header(kind::CONNECT, size_of::<ConnectRecord>()),
            syscall: syscall::CONNECT,
            fd: 3,
            result: 0,
            family: libc::AF_INET as u16,
            port: 4444,
            addrlen: 16,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            flags: 0,
            unix_path_len: 0,
            unix_path: [0; UNIX_PATH_MAX],
            callers: 0,
        };
        let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decode").kind else {
            panic!()
        };
        assert_eq!(c.endpoint(), "127.0.0.1:4444");
        rec.family = libc::AF_INET6 as u16;
        rec.addr = std::net::Ipv6Addr::LOCALHOST.octets();
        rec.result = -111;
        let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decode").kind else {
            panic!()
        };
        assert_eq!(
            (c.endpoint(), c.error.as_deref()),
            ("[::1]:4444".to_owned(), Some("ECONNREFUSED"))
        );
        rec.family = libc::AF_UNIX as u16;
        rec.unix_path[..12].copy_from_slice(b"\0agent.sock\0");
        rec.unix_path_len = 11;
        let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decode").kind else {
            panic!()
        };
        assert_eq!(
            (c.family, c.addr.as_str()),
            (SocketFamily::Unix, "@agent.sock")
        );
    }

    #[test]
    fn namespace_flags_are_named() {
        assert_eq!(namespace_flags(0x1002_0000), "CLONE_NEWUSER|CLONE_NEWNS");
        assert_eq!(namespace_flags(0x4000_0000 | 0x11), "CLONE_NEWNET");
        assert_eq!(namespace_flags(0), "0");
    }

    #[test]
    fn own_proc_paths_say_self() {
        assert_eq!(
            own_proc_as_self("/proc/42/maps".into(), 42),
            "/proc/self/maps"
        );
        assert_eq!(own_proc_as_self("/proc/42".into(), 42), "/proc/self");
        assert_eq!(
            own_proc_as_self("/proc/421/environ".into(), 42),
            "/proc/421/environ"
        );
        assert_eq!(
            own_proc_as_self("/proc/43/environ".into(), 42),
            "/proc/43/environ"
        );
    }

    #[test]
    fn unknown_kind() {
        assert_eq!(
            decoder().decode(header(99, 40).as_bytes()),
            Err(DecodeError::UnknownKind(99))
        );
    }
}
