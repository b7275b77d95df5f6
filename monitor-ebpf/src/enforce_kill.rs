//! Kill mode (`--enforce`): a process of crate code that does what fails `ci` by default and no
//! hook can refuse is sent SIGKILL from the tracepoint that saw it, before it returns to user
//! space.
//!
//! Why that is soon enough (Linux 6.18): `bpf_send_signal` from a syscall tracepoint runs with
//! interrupts enabled, so it queues the signal at once (`bpf_send_signal_common` →
//! `group_send_sig_info`; only with interrupts disabled is it deferred to irq_work). SIGKILL
//! marks the whole thread group as exiting (`complete_signal` sets `SIGNAL_GROUP_EXIT` and
//! queues SIGKILL on every thread), and `exit_to_user_mode_loop` handles pending signals before
//! any return to user mode, so the process dies without running one more instruction. At the
//! exit of `openat` the descriptor exists but nothing was read through it: the secret never
//! reaches the process's memory, and an append never happens. At the entry of ptrace,
//! process_vm_readv/writev the call itself still runs, but the remote page walk they use
//! (`__get_user_pages`) stops with -EINTR once a fatal signal is pending; clone stops with
//! -ERESTARTNOINTR before the child exists (`copy_process` checks for pending signals); unshare
//! and setns complete, for a process that never runs again.
//! <https://github.com/torvalds/linux/blob/v6.18/kernel/trace/bpf_trace.c> (bpf_send_signal_common)
//! <https://github.com/torvalds/linux/blob/v6.18/kernel/signal.c> (complete_signal)
//! <https://github.com/torvalds/linux/blob/v6.18/kernel/entry/common.c> (exit_to_user_mode_loop)
//! <https://github.com/torvalds/linux/blob/v6.18/mm/gup.c> (__get_user_pages, fatal_signal_pending)
//!
//! Who may be killed: a process in `CRATE_PROCS` (a build script and everything it started, a
//! program a proc-macro started), or rustc while proc-macro code is on the calling thread's
//! stack or made the call (`macros::callers`). rustc, cargo and the linker doing their own work
//! are never killed: cargo is not crate code, rustc and the programs it starts for itself carry
//! `GROUP_RUSTC` with no proc-macro caller. A crate group whose profile allows the act (userspace
//! writes `KILL_ALLOW` from the profiles, with the classifier `ci` uses) is not killed.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_send_signal},
    macros::map,
    maps::HashMap,
};
#[cfg(bpf_target_arch = "x86_64")]
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use monitor_common::{GROUP_RUSTC, InodeKey, KillAllowKey, KillRecord, kill_class as class, kind};

use crate::{
    kernel::read,
    maps::{CRATE_PROCS, ENFORCE, EVENTS, count_loss},
    output::{Task, header},
};

const SIGKILL: u32 = 9;

/// What a crate group may do without being killed (userspace fills it from the profiles).
#[map]
pub static KILL_ALLOW: HashMap<KillAllowKey, u8> = HashMap::with_max_entries(65536, 0);

/// Persistence targets by identity (device, inode): their number in userspace's table plus
/// one; with [`PERSIST_DIR`] set, a directory every file of which is a target (a file created
/// or opened for writing there is).
#[map]
pub static PERSIST: HashMap<InodeKey, u32> = HashMap::with_max_entries(16384, 0);

/// Bit of a `PERSIST` value marking a directory.
pub const PERSIST_DIR: u32 = 1 << 31;

/// Whether enforcing at all: a frozen global, so the verifier drops every kill path of a
/// sensor loaded without `--enforce`.
#[inline(always)]
pub fn enforcing() -> bool {
    ENFORCE.load() != 0
}

/// Kills the current process for `class` unless it is not crate code or its group may do it;
/// `callers` are the proc-macro slot bits of the current call (see `macros::callers`). Sends a
/// `KillRecord` when it kills. A subprogram of its own: the open programs' stack is full.
#[inline(never)]
pub fn kill(class: u32, syscall: u32, object: u32, target: u32, callers: u32) -> u32 {
    if !enforcing() {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the value is copied out at once.
    let Some(group) = (unsafe { CRATE_PROCS.get(tgid) }).copied() else {
        return 0;
    };
    // In rustc only proc-macro code is judged: rustc's own opens, and the linker and other
    // programs rustc starts for itself (which inherit GROUP_RUSTC), are never killed.
    if group == GROUP_RUSTC && callers == 0 {
        return 0;
    }
    let mut key = KillAllowKey {
        group,
        class,
        object,
        _pad: 0,
    };
    // SAFETY: only tested for presence.
    if unsafe { KILL_ALLOW.get(key) }.is_some() {
        return 0;
    }
    key.object = 0;
    // SAFETY: as above.
    if unsafe { KILL_ALLOW.get(key) }.is_some() {
        return 0;
    }
    // SAFETY: plain helper call; it signals the current process with kernel privileges.
    if unsafe { bpf_send_signal(SIGKILL) } != 0 {
        return 0;
    }
    let task = Task {
        pid_tgid,
        tgid,
        tid: pid_tgid as u32,
    };
    // Written field by field straight into the ring buffer: this frame stays small (the open
    // programs that call it have no stack to spare).
    match EVENTS.reserve::<KillRecord>(0) {
        Some(mut slot) => {
            let r = slot.as_mut_ptr();
            // SAFETY: `r` points at a reserved KillRecord-sized slot of the ring buffer; each
            // field is written once before the slot is submitted.
            unsafe {
                core::ptr::addr_of_mut!((*r).header).write(header(
                    kind::KILL,
                    size_of::<KillRecord>() as u32,
                    &task,
                ));
                core::ptr::addr_of_mut!((*r).class).write(class);
                core::ptr::addr_of_mut!((*r).syscall).write(syscall);
                core::ptr::addr_of_mut!((*r).object).write(object);
                core::ptr::addr_of_mut!((*r).target).write(target);
                core::ptr::addr_of_mut!((*r).callers).write(callers);
                core::ptr::addr_of_mut!((*r).group).write(group);
            }
            slot.submit(crate::output::URGENT);
        }
        None => count_loss(monitor_common::counter::RINGBUF_FULL),
    }
    1
}

/// The persistence target number (plus one) of a file opened for writing at `dentry`: the file
/// itself is a target, or its directory is a persistence directory (a file created there, or an
/// existing one opened for writing). 0: neither.
#[inline(never)]
pub fn persist_target(dentry: u64, d_inode: u32, d_sb: u32, d_parent: u32) -> u32 {
    if let Some(n) = identity(dentry, d_inode, d_sb)
        // SAFETY: the value is copied out at once.
        .and_then(|key| unsafe { PERSIST.get(key) }.copied())
        && n & PERSIST_DIR == 0
    {
        return n;
    }
    let Some(parent) = read::<u64>(dentry, d_parent).filter(|&p| p != 0 && p != dentry) else {
        return 0;
    };
    match identity(parent, d_inode, d_sb)
        // SAFETY: the value is copied out at once.
        .and_then(|key| unsafe { PERSIST.get(key) }.copied())
    {
        Some(n) if n & PERSIST_DIR != 0 => n & !PERSIST_DIR,
        _ => 0,
    }
}

/// The (device, inode) of `dentry`'s inode.
#[inline(always)]
fn identity(dentry: u64, d_inode: u32, d_sb: u32) -> Option<InodeKey> {
    let o = crate::protected::IDENTITY_OFFSETS.load();
    let inode = read::<u64>(dentry, d_inode).filter(|&i| i != 0)?;
    let ino = read::<u64>(inode, o.inode_i_ino)?;
    let sb = read::<u64>(dentry, d_sb)?;
    let dev = read::<u32>(sb, o.super_block_s_dev)?;
    Some(InodeKey { dev, _pad: 0, ino })
}

/// After a successful open whose descriptor refers to `dentry` (`protected`: its secret number,
/// or 0): kills for a secret opened for reading or a persistence target opened for writing.
#[inline(always)]
pub fn after_open(
    syscall: u32,
    open_flags: u64,
    protected: u32,
    dentry: u64,
    o: &monitor_common::KernelOffsets,
    callers: u32,
) {
    const O_ACCMODE: u64 = 3;
    const O_WRONLY: u64 = 1;
    const O_CREAT: u64 = 0o100;
    const O_TRUNC: u64 = 0o1000;
    let acc = open_flags & O_ACCMODE;
    if protected != 0 && acc != O_WRONLY {
        kill(class::SECRET, syscall, protected, 0, callers);
        return;
    }
    if acc != 0 || open_flags & (O_CREAT | O_TRUNC) != 0 {
        // Only crate code pays for the identity lookups: not cargo, not the command, not rustc
        // writing its own output (most writes of a build).
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        // SAFETY: the value is copied out at once.
        match unsafe { CRATE_PROCS.get(tgid) }.copied() {
            None => return,
            Some(GROUP_RUSTC) if callers == 0 => return,
            Some(_) => {}
        }
        let target = persist_target(dentry, o.dentry_d_inode, o.dentry_d_sb, o.dentry_d_parent);
        if target != 0 {
            kill(class::PERSISTENCE, syscall, target, 0, callers);
        }
    }
}

/// After a tamper record (`syscall` a tamper code): kills for reaching into another process or
/// for a namespace.
#[inline(always)]
pub fn after_tamper(syscall: u32, request: u32, target: u32, callers: u32) {
    use monitor_common::syscall as s;
    let class = match syscall {
        s::PTRACE | s::PROCESS_VM_WRITEV | s::PROCESS_VM_READV | s::PIDFD_GETFD => class::TAMPER,
        s::UNSHARE | s::SETNS | s::CLONE_NS => class::NAMESPACE,
        _ => return,
    };
    kill(class, syscall, request, target, callers);
}

/// At `sched_process_exec`, where not one instruction of the new image has run: kills a
/// process of crate code that executed a program from memory (a memfd, which has no link from
/// its creation) or a deleted file.
#[inline(always)]
pub fn after_exec(o: &monitor_common::KernelOffsets) {
    if !enforcing() {
        return;
    }
    if let Some(path) = crate::kernel::exe_path(crate::kernel::current_task(), o)
        && crate::kernel::unlinked(path, o)
    {
        // No proc-macro code is on the stack of a new image: judged by the crate group alone
        // (a build script's tree, a program a proc-macro started; not rustc's own tree).
        kill(class::FILELESS_EXEC, 0, 0, 0, 0);
    }
}

/// `sys_enter(struct pt_regs *regs, long id)` of a tracked process's 32-bit call, under
/// `--enforce` only (the dispatcher, `dispatch::raw_sys_enter`, tail-calls it): a 32-bit system
/// call by crate code kills at its entry (the call still runs, for a process that never runs
/// again; a blocking one is cut short by the pending SIGKILL). A program of its own, not a part
/// of `compat::sys_exit_compat`, whose stack and verifier budget are spent.
#[cfg(bpf_target_arch = "x86_64")]
#[raw_tracepoint]
pub fn sys_enter_compat_kill(ctx: RawTracePointContext) -> i32 {
    let Some(task) = crate::output::current_tracked() else {
        return 0;
    };
    let nr: i64 = ctx.arg(1);
    kill(
        class::COMPAT,
        0,
        nr as u32,
        0,
        crate::macros::callers(task.tgid),
    );
    0
}
