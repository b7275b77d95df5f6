//! connect(2), and the cgroup socket-address hooks that see connections and datagrams whatever
//! path they take (io_uring, TCP Fast Open) and, under `--enforce`, refuse what the crate's
//! profile does not allow.
use crate::dispatch::{Enter, Exit};
use aya_ebpf::{
    helpers::generated::bpf_probe_read_user, macros::cgroup_sock_addr, programs::SockAddrContext,
};
use monitor_common::{
    AllowKey, ConnectRecord, GROUP_UNKNOWN, UNIX_PATH_MAX, counter, flag, kind, syscall,
};

use crate::{
    maps::{ALLOW, CRATE_PROCS, ENFORCE, EVENTS, count_loss},
    output::{Task, current_tracked, header},
    pending::{PENDING, Pending, take_pending},
};

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

crate::syscall_program!(
    sys_enter_connect,
    "sys_enter_connect",
    exit = false,
    |ctx| {
        let _ = try_enter(ctx);
    }
);

fn try_enter(ctx: &Enter) -> Option<()> {
    // (int fd, struct sockaddr *uservaddr, int addrlen)
    let task = current_tracked()?;
    // SAFETY: syscall tracepoint records hold their arguments from offset 16.
    let fd: u64 = unsafe { ctx.read_at(16) }.ok()?;
    // SAFETY: as above.
    let addr: u64 = unsafe { ctx.read_at(24) }.ok()?;
    // SAFETY: as above.
    let addrlen: u64 = unsafe { ctx.read_at(32) }.ok()?;
    let pending = Pending {
        syscall: syscall::CONNECT,
        _pad: 0,
        args: [fd, addr, addrlen, 0],
    };
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(counter::PENDING_FULL);
    }
    Some(())
}

crate::syscall_program!(sys_exit_connect, "sys_exit_connect", exit = true, |ctx| {
    let _ = try_exit(ctx);
});

fn try_exit(ctx: &Exit) -> Option<()> {
    let task = current_tracked()?;
    let p = take_pending(task.pid_tgid)?;
    if p.syscall != syscall::CONNECT {
        return None;
    }
    // SAFETY: syscall exit records hold `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    let Some(mut entry) = EVENTS.reserve::<ConnectRecord>(0) else {
        count_loss(counter::RINGBUF_FULL);
        return None;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, exclusively owned ConnectRecord; every field is written
    // before submit.
    unsafe {
        (*rec).header = header(kind::CONNECT, size_of::<ConnectRecord>() as u32, &task);
        (*rec).syscall = syscall::CONNECT;
        (*rec).fd = p.args[0] as i32;
        (*rec).result = ret;
        (*rec).callers = crate::macros::callers(task.tgid);
        fill_sockaddr(rec, p.args[1], p.args[2] as u32);
        (*rec).flags |= p._pad & flag::REFUSED;
    }
    entry.submit(crate::output::lazy());
    Some(())
}

/// Fills the address fields (family, port, address or unix path, flags, addrlen) of `rec` from
/// the user sockaddr at `sockaddr`.
///
/// # Safety
/// `rec` must point at a writable ConnectRecord.
#[inline(always)]
pub unsafe fn fill_sockaddr(rec: *mut ConnectRecord, sockaddr: u64, addrlen: u32) {
    // SAFETY: the caller's contract for `rec`; user reads go through the checking helper.
    unsafe {
        (*rec).addrlen = addrlen;
        (*rec).flags = 0;
        (*rec).port = 0;
        // `addr` is at an 8-byte offset of the (8-byte aligned) record.
        crate::output::zero_words::<2>((&raw mut (*rec).addr).cast());
        (*rec).unix_path_len = 0;
        let mut family: u16 = 0;
        bpf_probe_read_user((&raw mut family).cast(), 2, sockaddr as *const _);
        (*rec).family = family;
        match family {
            AF_INET | AF_INET6 => {
                let mut port_be: u16 = 0;
                bpf_probe_read_user((&raw mut port_be).cast(), 2, (sockaddr + 2) as *const _);
                (*rec).port = u16::from_be(port_be);
                if family == AF_INET {
                    bpf_probe_read_user(
                        (&raw mut (*rec).addr).cast(),
                        4,
                        (sockaddr + 4) as *const _,
                    );
                } else {
                    bpf_probe_read_user(
                        (&raw mut (*rec).addr).cast(),
                        16,
                        (sockaddr + 8) as *const _,
                    );
                }
            }
            AF_UNIX => {
                let len = addrlen.saturating_sub(2);
                let len = if len > UNIX_PATH_MAX as u32 {
                    UNIX_PATH_MAX as u32
                } else {
                    len
                } & 0x7f;
                let len = if len > UNIX_PATH_MAX as u32 {
                    UNIX_PATH_MAX as u32
                } else {
                    len
                };
                bpf_probe_read_user(
                    (&raw mut (*rec).unix_path).cast(),
                    len,
                    (sockaddr + 2) as *const _,
                );
                (*rec).unix_path_len = len;
            }
            _ => {}
        }
    }
}

const _: () = assert!(core::mem::offset_of!(ConnectRecord, addr) % 8 == 0);

/// The cgroup hooks' verdicts.
const ALLOWED: i32 = 1;
const REFUSED: i32 = 0;

#[cgroup_sock_addr(connect4)]
pub fn cgroup_connect4(ctx: SockAddrContext) -> i32 {
    hook(&ctx, AF_INET, syscall::CGROUP_CONNECT)
}

#[cgroup_sock_addr(connect6)]
pub fn cgroup_connect6(ctx: SockAddrContext) -> i32 {
    hook(&ctx, AF_INET6, syscall::CGROUP_CONNECT)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn cgroup_sendmsg4(ctx: SockAddrContext) -> i32 {
    hook(&ctx, AF_INET, syscall::CGROUP_SENDMSG)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn cgroup_sendmsg6(ctx: SockAddrContext) -> i32 {
    hook(&ctx, AF_INET6, syscall::CGROUP_SENDMSG)
}

/// Reports what the syscall tracepoints cannot see, and enforces.
#[inline(always)]
fn hook(ctx: &SockAddrContext, family: u16, via: u32) -> i32 {
    let Some(task) = current_tracked() else {
        return ALLOWED;
    };
    let sa = ctx.sock_addr;
    // SAFETY: the context pointer the kernel gives a cgroup/sock_addr program; these fields are
    // readable in every such program type.
    let (port_be, ip4, ip6) = unsafe { ((*sa).user_port as u16, (*sa).user_ip4, (*sa).user_ip6) };
    let mut addr = [0u8; 16];
    if family == AF_INET {
        addr[..4].copy_from_slice(&ip4.to_ne_bytes());
    } else {
        let mut i = 0;
        while i < 4 {
            addr[i * 4..i * 4 + 4].copy_from_slice(&ip6[i].to_ne_bytes());
            i += 1;
        }
    }
    let refuse = ENFORCE.load() != 0 && !allowed(task.tgid, family, port_be, addr);
    // A connect-family syscall under way is reported by its tracepoint (with the refusal noted
    // in its stash, and the proc-macro stack scan the hook cannot do); only other paths
    // (io_uring, the kernel connecting for TCP Fast Open from sendto) are reported here.
    let pending = PENDING.get_ptr_mut(task.pid_tgid);
    // SAFETY: a pointer from a successful lookup of this thread's own stash.
    let syscall_path = pending.is_some_and(|p| unsafe {
        matches!(
            (*p).syscall,
            syscall::CONNECT
                | syscall::SENDTO
                | syscall::SENDMSG
                | syscall::SENDMMSG
                | syscall::FASTOPEN
        )
    });
    match pending {
        Some(p) if syscall_path => {
            if refuse {
                // SAFETY: as above; `_pad` carries flags for the syscall's exit.
                unsafe { (*p)._pad |= flag::REFUSED };
            }
        }
        _ => {
            // A 32-bit connect/sendto/sendmsg (int 0x80) has no tracepoint: say so.
            let via = match (crate::output::in_compat_syscall(), via) {
                (true, syscall::CGROUP_CONNECT) => syscall::COMPAT_CONNECT,
                (true, _) => syscall::COMPAT_SENDMSG,
                (false, via) => via,
            };
            report(&task, family, u16::from_be(port_be), addr, via, refuse)
        }
    }
    if refuse { REFUSED } else { ALLOWED }
}

/// Whether process `tgid` may reach the address: always for processes that do not run crate
/// code (cargo itself), else when its crate group's allow list has it.
#[inline(always)]
fn allowed(tgid: u32, family: u16, port_be: u16, addr: [u8; 16]) -> bool {
    // SAFETY: the value is copied out.
    let Some(group) = (unsafe { CRATE_PROCS.get(tgid) }).copied() else {
        return true;
    };
    let bits = AllowKey::FIXED_BITS + if family == AF_INET { 32 } else { 128 };
    for port in [port_be, 0] {
        let key = aya_ebpf::maps::lpm_trie::Key::new(
            bits,
            AllowKey {
                group,
                port,
                family,
                addr,
            },
        );
        if ALLOW.get(&key).is_some() {
            return true;
        }
    }
    let _ = GROUP_UNKNOWN;
    false
}

#[inline(always)]
fn report(task: &Task, family: u16, port: u16, addr: [u8; 16], via: u32, refused: bool) {
    let Some(mut entry) = EVENTS.reserve::<ConnectRecord>(0) else {
        count_loss(counter::RINGBUF_FULL);
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` is a reserved ConnectRecord, exclusively ours; every field is written.
    unsafe {
        (*rec).header = header(kind::CONNECT, size_of::<ConnectRecord>() as u32, task);
        (*rec).syscall = via;
        (*rec).fd = -1;
        (*rec).result = if refused { -1 } else { 0 };
        (*rec).family = family;
        (*rec).port = port;
        (*rec).addrlen = 0;
        (*rec).addr = addr;
        (*rec).flags = if refused { flag::REFUSED } else { 0 };
        (*rec).unix_path_len = 0;
        // No stack scan here: cgroup programs may not read user memory.
        (*rec).callers = 0;
    }
    entry.submit(crate::output::lazy());
}
