//! Raw sensor records (monitor-common) → typed [`Event`]s. No aya types past this point.
use std::{path::Path, sync::Arc};

use monitor_common::{
    CompatRecord, ConnectRecord, DnsRecord, ExecRecord, ExitRecord, ForkRecord, IO_URING_CREATE,
    IoUringRecord, KillRecord, MacroLibRecord, OpenRecord, Record, RecordHeader, TamperRecord,
    c_bytes, flag, kind, syscall,
};
use thiserror::Error;

mod file;
mod kill;
mod net;
mod process;
mod raw_socket;
mod tamper;

use file::{decode_open, own_proc_as_self};
pub use net::dns_question;
use net::{decode_connect, ip_text};
use process::decode_exec;
use tamper::{
    bpf_command, credential_marks, namespace_flags, perf_type, privilege_marks, ptrace_request,
    signal_name, tamper_syscall,
};

use crate::model::{
    Access, CompatSyscall, Connect, ConnectSyscall, Dns, Event, EventKind, Exec, Exit, Fork,
    IoUring, IoUringOp, KEPT_VARIABLES, Lost, LostReason, MacroLib, MonitorCall, NamespaceCall,
    Open, OpenSyscall, PrivilegeCall, ProcessCall, ProtectedFile, SocketFamily, Tamper,
    TamperSyscall, path::normalize,
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
    /// The protected files the kernel knows by identity, in the order it numbers them
    /// (`OpenRecord::protected` is an index in this, plus one).
    protected: Arc<[ProtectedFile]>,
    /// The persistence targets the kernel knows by identity, in its order
    /// (`KillRecord::object` of a persistence kill is an index in this, plus one).
    persist: Arc<[ProtectedFile]>,
}

impl Decoder {
    /// A decoder whose timestamps are shifted by `realtime_offset_ns` (wall clock minus the
    /// monotonic clock that `bpf_ktime_get_ns` uses).
    pub fn new(realtime_offset_ns: i128) -> Self {
        Self {
            realtime_offset_ns,
            protected: Arc::from([]),
            persist: Arc::from([]),
        }
    }

    /// The same decoder, naming protected files from `table` (the sensor's, in its order).
    pub fn with_protected(self, table: Arc<[ProtectedFile]>) -> Self {
        Self {
            protected: table,
            ..self
        }
    }

    /// The same decoder, naming persistence targets from `table` (the sensor's, in its order).
    pub fn with_persist(self, table: Arc<[ProtectedFile]>) -> Self {
        Self {
            persist: table,
            ..self
        }
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
                EventKind::Exit(Exit {
                    quiet_failed_reads: r.quiet_failures,
                    ..Exit::from_wait_status(r.exit_code)
                })
            }
            kind::OPEN => {
                let (mut open, c, protected) = decode_open(bytes)?;
                callers = c;
                open.protected = (protected as usize)
                    .checked_sub(1)
                    .and_then(|i| self.protected.get(i))
                    .cloned();
                open.path = own_proc_as_self(open.path, header.tgid);
                EventKind::Open(open)
            }
            kind::CONNECT => {
                let r = fixed::<ConnectRecord>(bytes, header.kind)?;
                callers = r.callers;
                EventKind::Connect(decode_connect(&r))
            }
            kind::SOCKET => {
                let r = fixed::<monitor_common::SocketRecord>(bytes, header.kind)?;
                EventKind::Socket(raw_socket::decode_socket(&r))
            }
            kind::PACKET => {
                let r = fixed::<monitor_common::PacketRecord>(bytes, header.kind)?;
                callers = r.callers;
                EventKind::Connect(raw_socket::decode_packet(&r))
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
                    syscall::BPF => Some(bpf_command(r.request)),
                    syscall::PERF_EVENT_OPEN => Some(perf_type(r.request)),
                    syscall::KILL_MONITOR => Some(signal_name(r.request)),
                    syscall::PRIVILEGED_EXEC => Some(privilege_marks(r.request)),
                    syscall::PRIVILEGED_CREDS => Some(credential_marks(r.request)),
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
                    digest: None,
                })
            }
            kind::KILL => {
                let r = fixed::<KillRecord>(bytes, header.kind)?;
                callers = r.callers;
                EventKind::Killed(kill::decode_kill(&r, &self.protected, &self.persist))
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

/// The largest errno the kernel returns (`MAX_ERRNO` in include/linux/err.h).
const MAX_ERRNO: i32 = 4095;

/// NUL-separated strings (argv, environment), without the empty tail.
fn strings(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let block = block.strip_suffix(b"\0").unwrap_or(block);
    block
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty() || block.is_empty())
}

/// `ENOENT` for -2, etc.; `None` for non-negative results. The kernel returns -errno with errno
/// in 1..=4095 (MAX_ERRNO); a negative value outside that range is no errno (a corrupt record)
/// and is shown as the number it is: negating it could overflow (i64::MIN) and truncating it
/// would name an errno that was never returned.
pub fn errno_name(result: i64) -> Option<String> {
    if result >= 0 {
        return None;
    }
    let Some(errno) = result
        .checked_neg()
        .and_then(|e| i32::try_from(e).ok())
        .filter(|e| *e <= MAX_ERRNO)
    else {
        return Some(format!("result {result}"));
    };
    let name = match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => format!("E{errno}"),
        e => format!("{e:?}"),
    };
    Some(name)
}

#[cfg(test)]
mod tests;
