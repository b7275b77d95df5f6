//! io_uring: operations submitted through a ring never pass through the syscall tracepoints
//! (an openat or connect done by io_uring is invisible to them). The io_uring tracepoints say a
//! tracked process set up a ring and which kinds of operations it submitted (each kind reported
//! once per process); the cgroup hooks still see its network.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use monitor_common::{IO_URING_CREATE, IoUringRecord, kind};

use crate::{
    maps::{OFFSETS, URING_OPS},
    output::{Task, current_tracked, header, submit_record},
};

#[tracepoint(category = "io_uring", name = "io_uring_create")]
pub fn io_uring_create(_ctx: TracePointContext) -> i32 {
    if let Some(task) = current_tracked() {
        emit(&task, IO_URING_CREATE);
    }
    0
}

#[tracepoint(category = "io_uring", name = "io_uring_submit_req")]
pub fn io_uring_submit_req(ctx: TracePointContext) -> i32 {
    let _ = try_submit(&ctx);
    0
}

fn try_submit(ctx: &TracePointContext) -> Option<()> {
    let task = current_tracked()?;
    let o = OFFSETS.load();
    // SAFETY: offset from the tracepoint's format file.
    let opcode: u8 = unsafe { ctx.read_at(o.tp_uring_opcode as usize) }.ok()?;
    let bit = 1u64 << (opcode & 63);
    // SAFETY: the value is copied out.
    let seen = unsafe { URING_OPS.get(task.tgid) }.copied().unwrap_or(0);
    if seen & bit != 0 {
        return None;
    }
    let _ = URING_OPS.insert(task.tgid, seen | bit, 0);
    emit(&task, opcode as u32);
    Some(())
}

#[inline(always)]
fn emit(task: &Task, opcode: u32) {
    let record = IoUringRecord {
        header: header(kind::IO_URING, size_of::<IoUringRecord>() as u32, task),
        opcode,
        callers: crate::macros::callers(task.tgid),
    };
    submit_record(&record, crate::output::lazy());
}
