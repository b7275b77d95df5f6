//! Network without connect(): datagrams sent to an explicit address (sendto, sendmsg, every
//! message of sendmmsg), TCP Fast Open (sendto with MSG_FASTOPEN), the first bytes of DNS
//! queries (to port 53, explicit or on a connected socket), and of packets sent on raw and packet
//! sockets (see `raw_socket`).
//!
//! User ABI (x86_64/arm64): `struct user_msghdr { void *name; int namelen; struct iovec *iov;
//! size_t iovlen; ... }` (name at 0, iov at 16), `struct mmsghdr { user_msghdr hdr; unsigned
//! len; }` (hdr at 0), `struct iovec { void *base; size_t len; }`.
use crate::dispatch::{Enter, Exit};
use aya_ebpf::helpers::generated::{bpf_loop, bpf_probe_read_user};
use core::ffi::c_void;
use monitor_common::{ConnectRecord, DNS_MAX, DnsRecord, counter, kind, syscall};

use crate::{
    kernel::{current_task, fd_file, read},
    maps::{EVENTS, OFFSETS, count_loss},
    net::fill_sockaddr,
    output::{Task, current_tracked, header},
    pending::{PENDING, Pending, take_pending},
    raw_socket::{self, RawKind},
};

const MSG_FASTOPEN: u64 = 0x2000_0000;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const DNS_PORT: u16 = 53;

#[inline(always)]
fn stash(ctx: &Enter, syscall: u32) -> Option<()> {
    let task = current_tracked()?;
    let mut args = [0u64; 4];
    let mut i = 0;
    while i < 4 {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        args[i] = unsafe { ctx.read_at::<u64>(16 + 8 * i) }.unwrap_or(0);
        i += 1;
    }
    // sendto has six arguments: keep fd, buf and len, put the address in slot 3, and tell a
    // fast-open connect by its flags now.
    if syscall == syscall::SENDTO {
        // SAFETY: as above; sendto(fd, buff, len, flags, addr, addr_len).
        let flags: u64 = unsafe { ctx.read_at(40) }.unwrap_or(0);
        // SAFETY: as above.
        let addr: u64 = unsafe { ctx.read_at(48) }.unwrap_or(0);
        args[3] = addr;
        let syscall = if flags & MSG_FASTOPEN != 0 {
            syscall::FASTOPEN
        } else {
            syscall::SENDTO
        };
        return insert(
            &task,
            Pending {
                syscall,
                _pad: 0,
                args,
            },
        );
    }
    insert(
        &task,
        Pending {
            syscall,
            _pad: 0,
            args,
        },
    )
}

#[inline(always)]
fn insert(task: &Task, pending: Pending) -> Option<()> {
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(counter::PENDING_FULL);
    }
    Some(())
}

crate::syscall_program!(sys_enter_sendto, "sys_enter_sendto", exit = false, |ctx| {
    let _ = stash(ctx, syscall::SENDTO);
});

crate::syscall_program!(
    sys_enter_sendmsg,
    "sys_enter_sendmsg",
    exit = false,
    |ctx| {
        let _ = stash(ctx, syscall::SENDMSG);
    }
);

crate::syscall_program!(
    sys_enter_sendmmsg,
    "sys_enter_sendmmsg",
    exit = false,
    |ctx| {
        let _ = stash(ctx, syscall::SENDMMSG);
    }
);

crate::syscall_program!(
    /// The exit of sendto, sendmsg and sendmmsg (one program, three tracepoints).
    sys_exit_send_family,
    "sys_exit_sendto",
    exit = true,
    |ctx| {
        let _ = send_exit(ctx);
    }
);

/// Reads a user pointer-sized value.
#[inline(always)]
fn user_u64(addr: u64) -> u64 {
    let mut v = 0u64;
    // SAFETY: the helper checks the user address.
    unsafe { bpf_probe_read_user((&raw mut v).cast(), 8, addr as *const _) };
    v
}

fn send_exit(ctx: &Exit) -> Option<()> {
    let task = current_tracked()?;
    let p = take_pending(task.pid_tgid)?;
    if !matches!(
        p.syscall,
        syscall::SENDTO | syscall::FASTOPEN | syscall::SENDMSG | syscall::SENDMMSG
    ) {
        return None;
    }
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    messages(&task, &p, ret);
    Some(())
}

/// A destination sockaddr in user memory (0: none, the socket's peer).
#[derive(Clone, Copy)]
struct Dest {
    sockaddr: u64,
    len: u64,
}

/// The destination and first iovec of the `user_msghdr` at `msg`.
#[inline(always)]
fn message(msg: u64) -> (Dest, u64, u64) {
    let iov = user_u64(msg + 16);
    (
        Dest {
            sockaddr: user_u64(msg),
            len: user_u64(msg + 8) & 0xffff_ffff,
        },
        user_u64(iov),
        user_u64(iov + 8),
    )
}

/// Reports one datagram (or TCP Fast Open connection): its destination, and the first bytes of a
/// DNS query to port 53. `flags` are the stash's flags for this message (`flag::REFUSED`).
#[expect(clippy::too_many_arguments, reason = "one datagram's facts, inlined")]
#[inline(always)]
fn datagram(
    task: &Task,
    p: &Pending,
    ret: i64,
    flags: u32,
    callers: u32,
    dest: Dest,
    buf: u64,
    buf_len: u64,
) -> Option<()> {
    let (family, port, addr) = if dest.sockaddr != 0 {
        let Some(mut entry) = EVENTS.reserve::<ConnectRecord>(0) else {
            count_loss(counter::RINGBUF_FULL);
            return None;
        };
        let rec = entry.as_mut_ptr();
        // SAFETY: `rec` is a reserved ConnectRecord, exclusively ours until submitted; every
        // field is written by fill_sockaddr or here.
        let dst = unsafe {
            (*rec).header = header(kind::CONNECT, size_of::<ConnectRecord>() as u32, task);
            (*rec).syscall = p.syscall;
            (*rec).fd = p.args[0] as i32;
            (*rec).result = ret;
            (*rec).callers = callers;
            fill_sockaddr(rec, dest.sockaddr, dest.len as u32);
            (*rec).flags |= flags & monitor_common::flag::REFUSED;
            ((*rec).family, (*rec).port, (*rec).addr)
        };
        entry.submit(crate::output::lazy());
        dst
    } else {
        // A connected socket: its peer, for DNS over connect()+send().
        peer(p.args[0])?
    };
    if port == DNS_PORT && (family == AF_INET || family == AF_INET6) && buf != 0 {
        dns(task, family, port, addr, buf, buf_len, callers);
    }
    Some(())
}

/// Most messages one sendmmsg(2) call sends (UIO_MAXIOV: the kernel cuts `vlen` to it).
const MMSG_MAX: u64 = 1024;
/// `sizeof(struct mmsghdr)` on 64-bit: a 56-byte `user_msghdr`, `unsigned msg_len`, padding.
const MMSGHDR_SIZE: u64 = 64;

/// The state of the loop over one call's messages, shared with its callback.
#[repr(C)]
pub struct MmsgState {
    task: Task,
    pending: Pending,
    /// Messages sent (sendmmsg: the call's result; the others: 1, or 0 when the call failed).
    sent: u64,
    /// The syscall's result.
    ret: i64,
    callers: u32,
    _pad: u32,
    /// The previous message's destination sockaddr bytes (family+port+IPv4, 8 bytes), to report
    /// a run of messages to one destination once.
    prev: u64,
    /// Nonzero when the socket is a raw or packet socket (`raw` says which): every message is
    /// then a packet whose destination is in its own headers.
    is_raw: u64,
    raw: RawKind,
}

/// Reports every message of a send call that has a destination: sendto's and sendmsg's one, and
/// each of sendmmsg's (one call can send a decoy first and the payload to another address
/// second): the messages sent, and the one after them (the one that failed, or was refused under
/// `--enforce`, and stopped the call). One loop for the three calls, so that the verifier checks
/// the per-message code once.
#[inline(always)]
fn messages(task: &Task, p: &Pending, ret: i64) {
    let (sent, count) = if p.syscall == syscall::SENDMMSG {
        let vlen = p.args[2];
        let sent = if ret > 0 { ret as u64 } else { 0 };
        let count = if sent < vlen { sent + 1 } else { sent };
        (sent, if count > MMSG_MAX { MMSG_MAX } else { count })
    } else {
        (u64::from(ret >= 0), 1)
    };
    let mut state = MmsgState {
        task: *task,
        pending: *p,
        sent,
        ret,
        callers: crate::macros::callers(task.tgid),
        _pad: 0,
        prev: 0,
        is_raw: 0,
        raw: RawKind {
            family: 0,
            sock_type: 0,
            protocol: 0,
            _pad: 0,
        },
    };
    if let Some(raw) = raw_socket::kind_of(p.args[0]) {
        state.is_raw = 1;
        state.raw = raw;
    }
    // SAFETY: the callback is a BPF subprogram of the required signature; `state` lives on this
    // stack frame for the duration of the call.
    unsafe {
        bpf_loop(
            count as u32,
            message_step as *const () as *mut c_void,
            (&raw mut state).cast(),
            0,
        );
    }
}

/// One message of a send call (`index` into sendmmsg's `mmsghdr` vector; 0 for the others).
#[inline(never)]
extern "C" fn message_step(index: u64, ctx: *mut c_void) -> i64 {
    send_message(ctx.cast(), index);
    0
}

/// The work of [`message_step`], as a global BPF function (exported, so BTF gives it global
/// linkage): the verifier checks it once, with every field of the state unknown, instead of
/// once per pass of the loop and per state `messages` reaches the loop in (which made this the
/// most expensive program to load).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn send_message(state: *mut MmsgState, index: u64) -> i32 {
    // The verifier knows a global function's pointer arguments only as possibly null.
    if state.is_null() {
        return 0;
    }
    // SAFETY: `state` is the MmsgState `messages` passed to bpf_loop, alive for the whole loop.
    let s = unsafe { &mut *state };
    let a = s.pending.args;
    let (dest, buf, buf_len) = match s.pending.syscall {
        // sendto(fd, buf, len, flags, addr, addrlen), stashed as [fd, buf, len, addr].
        syscall::SENDTO | syscall::FASTOPEN => (
            Dest {
                sockaddr: a[3],
                len: 128,
            },
            a[1],
            a[2],
        ),
        syscall::SENDMSG => message(a[1]),
        _ => message(a[1] + (index & (MMSG_MAX - 1)) * MMSGHDR_SIZE),
    };
    if s.is_raw != 0 {
        // Each packet on a raw socket may go elsewhere, whatever address comes with it.
        let via = match s.pending.syscall {
            syscall::SENDMSG => syscall::RAW_SENDMSG,
            syscall::SENDMMSG => syscall::RAW_SENDMMSG,
            _ => syscall::RAW_SENDTO,
        };
        let (ret, flags) = if index < s.sent {
            (s.ret, 0)
        } else if s.ret < 0 {
            (s.ret, s.pending._pad)
        } else {
            (-1, s.pending._pad)
        };
        raw_socket::packet(
            &s.task,
            via,
            a[0],
            ret,
            flags,
            s.callers,
            s.raw,
            raw_socket::Sent {
                sockaddr: dest.sockaddr,
                buf,
                len: buf_len,
            },
        );
        return 0;
    }
    let (ret, flags) = if dest.sockaddr == 0 {
        // A connected socket: only the first message says anything new (its peer).
        if index != 0 {
            return 0;
        }
        (s.ret, 0)
    } else {
        // Runs of messages to one IPv4 destination are reported once (an IPv6 address does
        // not fit in the compared bytes: every such message is reported).
        let head = user_u64(dest.sockaddr);
        let v4 = head & 0xffff == AF_INET as u64;
        if v4 && index > 0 && head == s.prev && index < s.sent {
            return 0;
        }
        s.prev = head;
        // Sent messages report what the call returned; the one that stopped it, why.
        if index < s.sent {
            (s.ret, 0)
        } else if s.ret < 0 {
            (s.ret, s.pending._pad)
        } else {
            (-1, s.pending._pad)
        }
    };
    let _ = datagram(
        &s.task, &s.pending, ret, flags, s.callers, dest, buf, buf_len,
    );
    0
}

/// The peer of a connected inet socket (family, port, IPv4 address).
#[inline(always)]
fn peer(fd: u64) -> Option<(u16, u16, [u8; 16])> {
    let o = OFFSETS.load();
    let file = fd_file(current_task(), fd, &o)?;
    let socket: u64 = read(file, o.file_private_data)?;
    let sk: u64 = read(socket, o.socket_sk)?;
    let dport_be: u16 = read(sk, o.sock_dport)?;
    let port = u16::from_be(dport_be);
    if port != DNS_PORT {
        return None;
    }
    let daddr: u32 = read(sk, o.sock_daddr)?;
    // The address's bytes first, then zeros: built in registers (a zeroed array would be a
    // call to memset, see `output::zero_words`).
    Some((AF_INET, port, u128::from(daddr).to_ne_bytes()))
}

/// Sends the first bytes of a DNS message to userspace (the query name is in them).
#[inline(always)]
fn dns(task: &Task, family: u16, port: u16, addr: [u8; 16], buf: u64, len: u64, callers: u32) {
    let Some(mut entry) = EVENTS.reserve::<DnsRecord>(0) else {
        count_loss(counter::RINGBUF_FULL);
        return;
    };
    let rec = entry.as_mut_ptr();
    // At most DNS_MAX - 1 bytes, masked so that the verifier sees the bound.
    let len = if len >= DNS_MAX as u64 {
        DNS_MAX as u32 - 1
    } else {
        len as u32
    } & (DNS_MAX as u32 - 1);
    // SAFETY: `rec` is a reserved DnsRecord, exclusively ours; the user read is checked by the
    // helper and bounded by the `data` array.
    unsafe {
        (*rec).header = header(kind::DNS, size_of::<DnsRecord>() as u32, task);
        (*rec).family = family;
        (*rec).port = port;
        (*rec).addr = addr;
        (*rec).callers = callers;
        (*rec)._pad = 0;
        let ret = bpf_probe_read_user((&raw mut (*rec).data).cast(), len, buf as *const _);
        (*rec).len = if ret < 0 { 0 } else { len };
    }
    entry.submit(crate::output::lazy());
}
