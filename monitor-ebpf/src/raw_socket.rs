//! Raw and packet sockets: packets built by hand carry their real destination inside them (a raw
//! IPv4 socket with the header included ignores the port passed with it; a packet socket's
//! address names an interface), so their creation is what is reported (and, under `--enforce`,
//! refused), and the first bytes of each packet sent on one are copied for userspace to read the
//! destination from.
//!
//! - `socket(2)`: `sys_enter_socket` keeps the arguments of a raw or packet socket, the exit
//!   reports the outcome. Under `--enforce` a crate process asking for a packet socket (or a raw
//!   socket of a family other than inet), which no cgroup hook sees, is sent SIGKILL at the call:
//!   the kernel acts on it as the task returns, before it can use the descriptor.
//! - `cgroup_sock_create` (cgroup `sock_create`, the build's cgroup): every inet/inet6 socket,
//!   whatever path created it (io_uring's `IORING_OP_SOCKET` too); a `SOCK_RAW` one made by a
//!   crate process is refused under `--enforce` (EPERM).
//! - sends: `send::messages` asks [`kind_of`] whether the socket is raw and calls [`packet`]
//!   for each message; `write(2)` on a raw socket is followed by `sys_enter_write`/`_exit`,
//!   which do nothing until a raw socket has been created in this run.
//!
//! <https://github.com/torvalds/linux/blob/v6.18/net/socket.c> (__sock_create: SOCK_PACKET on
//! PF_INET becomes PF_PACKET), <https://github.com/torvalds/linux/blob/v6.18/net/ipv4/af_inet.c>
//! (inet_create runs BPF_CGROUP_RUN_PROG_INET_SOCK; packet_create runs no cgroup hook).
use crate::dispatch::{Enter, Exit};
use aya_ebpf::{
    Global,
    helpers::generated::bpf_probe_read_user,
    macros::{cgroup_sock, map},
    maps::Array,
    programs::SockContext,
};
use monitor_common::{
    PACKET_HEAD, PacketRecord, SocketOffsets, SocketRecord, counter, flag, kind,
    records::raw_socket, syscall,
};

use crate::{
    kernel::{current_task, fd_file, read},
    maps::{CRATE_PROCS, ENFORCE, EVENTS, OFFSETS, count_loss},
    output::{Task, current_tracked, header},
    pending::{PENDING, Pending, take_pending},
};

const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;
const AF_PACKET: u32 = 17;
const SOCK_RAW: u32 = 3;
const SOCK_PACKET: u32 = 10;
/// `SOCK_TYPE_MASK`: the type without SOCK_NONBLOCK/SOCK_CLOEXEC.
const SOCK_TYPE_MASK: u32 = 0xf;
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const SIGKILL: u32 = 9;
const EPERM: i64 = 1;

/// Offsets of the socket fields [`kind_of`] reads, written by userspace at load time.
#[unsafe(no_mangle)]
pub static SOCKET_OFFSETS: Global<SocketOffsets> = Global::new(SocketOffsets {
    file_f_inode: 0,
    inode_i_mode: 0,
    sock_family: 0,
    sock_type: 0,
    sock_protocol: 0,
    _pad: 0,
});

/// Nonzero once a raw or packet socket has been created in this run: until then the write
/// programs return at once (write is the commonest system call of a build).
#[map]
pub static RAW_SEEN: Array<u32> = Array::with_max_entries(1, 0);

/// A raw or packet socket: `SOCK_RAW` of any family but unix (where it means a datagram socket)
/// and netlink (how the C library lists interfaces), any `AF_PACKET` socket, `SOCK_PACKET`.
#[inline(always)]
fn is_raw(family: u32, sock_type: u32) -> bool {
    let t = sock_type & SOCK_TYPE_MASK;
    family == AF_PACKET
        || t == SOCK_PACKET
        || (t == SOCK_RAW && family != AF_UNIX && family != AF_NETLINK)
}

/// Whether the current process runs a crate's code (the processes `--enforce` acts on).
#[inline(always)]
fn crate_process(tgid: u32) -> bool {
    // SAFETY: only tested for presence.
    unsafe { CRATE_PROCS.get(tgid) }.is_some()
}

crate::syscall_program!(sys_enter_socket, "sys_enter_socket", exit = false, |ctx| {
    let _ = socket_enter(ctx);
});

fn socket_enter(ctx: &Enter) -> Option<()> {
    // (int family, int type, int protocol)
    // SAFETY: syscall tracepoint records hold their arguments from offset 16.
    let family: u64 = unsafe { ctx.read_at(16) }.ok()?;
    // SAFETY: as above.
    let sock_type: u64 = unsafe { ctx.read_at(24) }.ok()?;
    // SAFETY: as above.
    let protocol: u64 = unsafe { ctx.read_at(32) }.ok()?;
    let (family, sock_type) = (family as u32, sock_type as u32);
    if !is_raw(family, sock_type) {
        return None;
    }
    let task = current_tracked()?;
    let mut flags = 0;
    // The cgroup hook refuses inet raw sockets; nothing can refuse the others from here, so
    // their process dies before it returns to user mode.
    let hooked =
        (family == AF_INET || family == AF_INET6) && sock_type & SOCK_TYPE_MASK == SOCK_RAW;
    if ENFORCE.load() != 0 && !hooked && crate_process(task.tgid) {
        // SAFETY: plain helper call; it signals the current process.
        if unsafe { aya_ebpf::helpers::bpf_send_signal(SIGKILL) } == 0 {
            flags |= raw_socket::KILLED;
        }
    }
    let pending = Pending {
        syscall: syscall::SOCKET,
        _pad: flags,
        args: [
            u64::from(family),
            u64::from(sock_type & SOCK_TYPE_MASK),
            protocol,
            0,
        ],
    };
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(counter::PENDING_FULL);
    }
    Some(())
}

crate::syscall_program!(sys_exit_socket, "sys_exit_socket", exit = true, |ctx| {
    let _ = socket_exit(ctx);
});

fn socket_exit(ctx: &Exit) -> Option<()> {
    let task = current_tracked()?;
    let p = take_pending(task.pid_tgid)?;
    if p.syscall != syscall::SOCKET {
        return None;
    }
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    if ret >= 0
        && let Some(seen) = RAW_SEEN.get_ptr_mut(0)
    {
        // SAFETY: a pointer from a successful lookup of the map's only slot.
        unsafe { *seen = 1 };
    }
    emit_socket(
        &task,
        syscall::SOCKET,
        p.args[0] as u32,
        p.args[1] as u32,
        p.args[2] as u32,
        ret,
        p._pad,
    );
    Some(())
}

#[inline(always)]
fn emit_socket(
    task: &Task,
    via: u32,
    family: u32,
    sock_type: u32,
    protocol: u32,
    result: i64,
    flags: u32,
) {
    let Some(mut entry) = EVENTS.reserve::<SocketRecord>(0) else {
        count_loss(counter::RINGBUF_FULL);
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` is a reserved SocketRecord, exclusively ours; every field is written.
    unsafe {
        (*rec).header = header(kind::SOCKET, size_of::<SocketRecord>() as u32, task);
        (*rec).syscall = via;
        (*rec).family = family;
        (*rec).sock_type = sock_type;
        (*rec).protocol = protocol;
        (*rec).result = result;
        (*rec).flags = flags;
        (*rec)._pad = 0;
    }
    entry.submit(crate::output::lazy());
}

/// Every inet/inet6 socket created in the build's cgroup. 1 lets it be, 0 refuses (EPERM).
#[cgroup_sock(sock_create)]
pub fn cgroup_sock_create(ctx: SockContext) -> i32 {
    let sk = ctx.sock;
    // SAFETY: the context the kernel gives a cgroup/sock program; family, type and protocol are
    // readable in sock_create.
    let (family, sock_type, protocol) = unsafe { ((*sk).family, (*sk).type_, (*sk).protocol) };
    if sock_type != SOCK_RAW {
        return 1;
    }
    let Some(task) = current_tracked() else {
        return 1;
    };
    let refuse = ENFORCE.load() != 0 && crate_process(task.tgid);
    // socket(2) under way: its exit reports it, with the refusal noted in its stash. Otherwise
    // (io_uring) report it here.
    match PENDING.get_ptr_mut(task.pid_tgid) {
        // SAFETY: a pointer from a successful lookup of this thread's own stash.
        Some(p) if unsafe { (*p).syscall } == syscall::SOCKET => {
            if refuse {
                // SAFETY: as above.
                unsafe { (*p)._pad |= flag::REFUSED };
            }
        }
        _ => emit_socket(
            &task,
            syscall::CGROUP_SOCKET,
            family,
            sock_type,
            protocol,
            if refuse { -EPERM } else { 0 },
            if refuse { flag::REFUSED } else { 0 },
        ),
    }
    if refuse { 0 } else { 1 }
}

/// A raw or packet socket's family, type and protocol.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RawKind {
    pub family: u16,
    pub sock_type: u16,
    pub protocol: u16,
    pub _pad: u16,
}

/// The kind of the socket behind descriptor `fd` of the current task, when it is a raw or
/// packet socket (None for any other file or socket).
#[inline(always)]
pub fn kind_of(fd: u64) -> Option<RawKind> {
    let o = OFFSETS.load();
    let s = SOCKET_OFFSETS.load();
    let file = fd_file(current_task(), fd, &o)?;
    let inode: u64 = read(file, s.file_f_inode)?;
    let mode: u16 = read(inode, s.inode_i_mode)?;
    if mode & S_IFMT != S_IFSOCK {
        return None;
    }
    let socket: u64 = read(file, o.file_private_data)?;
    let sk: u64 = read(socket, o.socket_sk)?;
    let family: u16 = read(sk, s.sock_family)?;
    let sock_type: u16 = read(sk, s.sock_type)?;
    if !is_raw(u32::from(family), u32::from(sock_type)) {
        return None;
    }
    let protocol: u16 = read(sk, s.sock_protocol)?;
    Some(RawKind {
        family,
        sock_type,
        protocol,
        _pad: 0,
    })
}

const _: () = assert!(
    core::mem::offset_of!(PacketRecord, to_addr) % 8 == 0
        && core::mem::offset_of!(PacketRecord, data) % 8 == 0
);

/// Where a packet was sent: the address passed with it (0: none).
#[derive(Clone, Copy)]
pub struct Sent {
    pub sockaddr: u64,
    pub buf: u64,
    pub len: u64,
}

/// Reports one packet sent on a raw or packet socket: the socket, the address passed, its first
/// bytes.
#[expect(clippy::too_many_arguments, reason = "one packet's facts, inlined")]
#[inline(always)]
pub fn packet(
    task: &Task,
    via: u32,
    fd: u64,
    ret: i64,
    flags: u32,
    callers: u32,
    raw: RawKind,
    sent: Sent,
) {
    let Some(mut entry) = EVENTS.reserve::<PacketRecord>(0) else {
        count_loss(counter::RINGBUF_FULL);
        return;
    };
    let rec = entry.as_mut_ptr();
    let len = if sent.len >= PACKET_HEAD as u64 {
        PACKET_HEAD as u32
    } else {
        sent.len as u32
    };
    // SAFETY: `rec` is a reserved PacketRecord, exclusively ours; every field is written; user
    // reads go through the checking helper, bounded by the record's arrays.
    unsafe {
        (*rec).header = header(kind::PACKET, size_of::<PacketRecord>() as u32, task);
        (*rec).syscall = via;
        (*rec).fd = fd as i32;
        (*rec).result = ret;
        (*rec).sock_family = raw.family;
        (*rec).sock_type = raw.sock_type;
        (*rec).protocol = raw.protocol;
        (*rec)._pad = 0;
        (*rec).callers = callers;
        (*rec).flags = flags;
        (*rec).to_family = 0;
        (*rec).to_port = 0;
        // Both at 8-byte offsets of the (8-byte aligned) record.
        crate::output::zero_words::<2>((&raw mut (*rec).to_addr).cast());
        crate::output::zero_words::<{ PACKET_HEAD / 8 }>((&raw mut (*rec).data).cast());
        if sent.sockaddr != 0 {
            let mut family: u16 = 0;
            bpf_probe_read_user((&raw mut family).cast(), 2, sent.sockaddr as *const _);
            (*rec).to_family = family;
            if u32::from(family) == AF_INET || u32::from(family) == AF_INET6 {
                let mut port_be: u16 = 0;
                bpf_probe_read_user(
                    (&raw mut port_be).cast(),
                    2,
                    (sent.sockaddr + 2) as *const _,
                );
                (*rec).to_port = u16::from_be(port_be);
                if u32::from(family) == AF_INET {
                    bpf_probe_read_user(
                        (&raw mut (*rec).to_addr).cast(),
                        4,
                        (sent.sockaddr + 4) as *const _,
                    );
                } else {
                    bpf_probe_read_user(
                        (&raw mut (*rec).to_addr).cast(),
                        16,
                        (sent.sockaddr + 8) as *const _,
                    );
                }
            }
        }
        let n = len & (PACKET_HEAD as u32 * 2 - 1);
        let n = if n > PACKET_HEAD as u32 {
            PACKET_HEAD as u32
        } else {
            n
        };
        let r = bpf_probe_read_user((&raw mut (*rec).data).cast(), n, sent.buf as *const _);
        (*rec).len = if r < 0 { 0 } else { n };
    }
    entry.submit(crate::output::lazy());
}

crate::syscall_program!(sys_enter_write, "sys_enter_write", exit = false, |ctx| {
    let _ = write_enter(ctx);
});

#[inline(always)]
fn raw_seen() -> bool {
    RAW_SEEN.get(0).is_some_and(|v| *v != 0)
}

fn write_enter(ctx: &Enter) -> Option<()> {
    if !raw_seen() {
        return None;
    }
    let task = current_tracked()?;
    // (unsigned int fd, const char *buf, size_t count)
    // SAFETY: syscall tracepoint records hold their arguments from offset 16.
    let fd: u64 = unsafe { ctx.read_at(16) }.ok()?;
    kind_of(fd)?;
    // SAFETY: as above.
    let buf: u64 = unsafe { ctx.read_at(24) }.ok()?;
    // SAFETY: as above.
    let count: u64 = unsafe { ctx.read_at(32) }.ok()?;
    let pending = Pending {
        syscall: syscall::RAW_WRITE,
        _pad: 0,
        args: [fd, buf, count, 0],
    };
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(counter::PENDING_FULL);
    }
    Some(())
}

crate::syscall_program!(sys_exit_write, "sys_exit_write", exit = true, |ctx| {
    let _ = write_exit(ctx);
});

fn write_exit(ctx: &Exit) -> Option<()> {
    if !raw_seen() {
        return None;
    }
    let task = current_tracked()?;
    // SAFETY: only tested.
    if unsafe { PENDING.get(task.pid_tgid) }.is_none_or(|p| p.syscall != syscall::RAW_WRITE) {
        return None;
    }
    let p = take_pending(task.pid_tgid)?;
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    let raw = kind_of(p.args[0])?;
    packet(
        &task,
        syscall::RAW_WRITE,
        p.args[0],
        ret,
        0,
        crate::macros::callers(task.tgid),
        raw,
        Sent {
            sockaddr: 0,
            buf: p.args[1],
            len: p.args[2],
        },
    );
    Some(())
}
