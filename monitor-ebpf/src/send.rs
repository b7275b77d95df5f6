//! Network without connect(): datagrams sent to an explicit address (sendto, sendmsg,
//! sendmmsg), TCP Fast Open (sendto with MSG_FASTOPEN), and the first bytes of DNS queries
//! (to port 53, explicit or on a connected socket).
//!
//! User ABI (x86_64/arm64): `struct user_msghdr { void *name; int namelen; struct iovec *iov;
//! size_t iovlen; ... }` (name at 0, iov at 16), `struct mmsghdr { user_msghdr hdr; unsigned
//! len; }` (hdr at 0), `struct iovec { void *base; size_t len; }`.
use aya_ebpf::{
    helpers::generated::bpf_probe_read_user, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{ConnectRecord, DNS_MAX, DnsRecord, counter, kind, syscall};

use crate::{
    file::take_pending,
    kernel::{current_task, fd_file, read},
    maps::{EVENTS, OFFSETS, PENDING, Pending, count_loss},
    net::fill_sockaddr,
    output::{Task, current_tracked, header},
};

const MSG_FASTOPEN: u64 = 0x2000_0000;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const DNS_PORT: u16 = 53;

#[inline(always)]
fn stash(ctx: &TracePointContext, syscall: u32) -> Option<()> {
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

#[tracepoint(category = "syscalls", name = "sys_enter_sendto")]
pub fn sys_enter_sendto(ctx: TracePointContext) -> i32 {
    let _ = stash(&ctx, syscall::SENDTO);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_sendmsg")]
pub fn sys_enter_sendmsg(ctx: TracePointContext) -> i32 {
    let _ = stash(&ctx, syscall::SENDMSG);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_sendmmsg")]
pub fn sys_enter_sendmmsg(ctx: TracePointContext) -> i32 {
    let _ = stash(&ctx, syscall::SENDMMSG);
    0
}

/// The exit of sendto, sendmsg and sendmmsg (one program, three tracepoints).
#[tracepoint(category = "syscalls", name = "sys_exit_sendto")]
pub fn sys_exit_send_family(ctx: TracePointContext) -> i32 {
    let _ = send_exit(&ctx);
    0
}

/// Reads a user pointer-sized value.
#[inline(always)]
fn user_u64(addr: u64) -> u64 {
    let mut v = 0u64;
    // SAFETY: the helper checks the user address.
    unsafe { bpf_probe_read_user((&raw mut v).cast(), 8, addr as *const _) };
    v
}

fn send_exit(ctx: &TracePointContext) -> Option<()> {
    let task = current_tracked()?;
    let p = take_pending(task.pid_tgid)?;
    // (destination sockaddr, its length, payload pointer, payload length)
    let (dest, dest_len, buf, buf_len) = match p.syscall {
        syscall::SENDTO | syscall::FASTOPEN => (p.args[3], 128u64, p.args[1], p.args[2]),
        syscall::SENDMSG | syscall::SENDMMSG => {
            // sendmsg: args[1] is the msghdr; sendmmsg: the first mmsghdr starts with one.
            let msg = p.args[1];
            let iov = user_u64(msg + 16);
            (
                user_u64(msg),
                user_u64(msg + 8) & 0xffff_ffff,
                user_u64(iov),
                user_u64(iov + 8),
            )
        }
        _ => return None,
    };
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    let (family, port, addr) = if dest != 0 {
        let Some(mut entry) = EVENTS.reserve::<ConnectRecord>(0) else {
            count_loss(counter::RINGBUF_FULL);
            return None;
        };
        let rec = entry.as_mut_ptr();
        // SAFETY: `rec` is a reserved ConnectRecord, exclusively ours until submitted; every
        // field is written by fill_sockaddr or here.
        let dst = unsafe {
            (*rec).header = header(kind::CONNECT, size_of::<ConnectRecord>() as u32, &task);
            (*rec).syscall = p.syscall;
            (*rec).fd = p.args[0] as i32;
            (*rec).result = ret;
            (*rec).callers = crate::macros::callers(task.tgid);
            fill_sockaddr(rec, dest, dest_len as u32);
            (*rec).flags |= p._pad & monitor_common::flag::REFUSED;
            ((*rec).family, (*rec).port, (*rec).addr)
        };
        entry.submit(crate::output::lazy());
        dst
    } else {
        // A connected socket: its peer, for DNS over connect()+send().
        peer(p.args[0])?
    };
    if port == DNS_PORT && (family == AF_INET || family == AF_INET6) && buf != 0 {
        dns(&task, family, port, addr, buf, buf_len);
    }
    Some(())
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
    let daddr: [u8; 4] = read(sk, o.sock_daddr)?;
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&daddr);
    Some((AF_INET, port, addr))
}

/// Sends the first bytes of a DNS message to userspace (the query name is in them).
#[inline(always)]
fn dns(task: &Task, family: u16, port: u16, addr: [u8; 16], buf: u64, len: u64) {
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
        (*rec).callers = crate::macros::callers(task.tgid);
        (*rec)._pad = 0;
        let ret = bpf_probe_read_user((&raw mut (*rec).data).cast(), len, buf as *const _);
        (*rec).len = if ret < 0 { 0 } else { len };
    }
    entry.submit(crate::output::lazy());
}
