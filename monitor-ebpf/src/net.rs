//! connect(2): address family, address, port (or unix socket path) and result.
use aya_ebpf::{
    helpers::generated::bpf_probe_read_user, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{ConnectRecord, UNIX_PATH_MAX, counter, kind, syscall};

use crate::{
    file::take_pending,
    maps::{EVENTS, PENDING, Pending, count_loss},
    output::{current_tracked, header},
};

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn sys_enter_connect(ctx: TracePointContext) -> i32 {
    let _ = try_enter(&ctx);
    0
}

fn try_enter(ctx: &TracePointContext) -> Option<()> {
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

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> i32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &TracePointContext) -> Option<()> {
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
    let sockaddr = p.args[1];
    let addrlen = p.args[2] as u32;
    // SAFETY: `rec` points at a reserved, exclusively owned ConnectRecord; every field is written
    // before submit; user reads go through the checking helper.
    unsafe {
        (*rec).header = header(kind::CONNECT, size_of::<ConnectRecord>() as u32, &task);
        (*rec).syscall = syscall::CONNECT;
        (*rec).fd = p.args[0] as i32;
        (*rec).result = ret;
        (*rec).addrlen = addrlen;
        (*rec).flags = 0;
        (*rec).port = 0;
        (*rec).addr = [0; 16];
        (*rec).unix_path_len = 0;
        (*rec).callers = crate::macros::callers(task.tgid);
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
                let mut len = addrlen.saturating_sub(2);
                if len > UNIX_PATH_MAX as u32 {
                    len = UNIX_PATH_MAX as u32;
                }
                let len = len & 0x7f;
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
    entry.submit(0);
    Some(())
}
