//! Tampering with other processes: ptrace requests that attach to or write into a process,
//! process_vm_writev, and process_vm_readv of another process; and with the monitor itself:
//! bpf(), perf_event_open, signals and pidfds aimed at buildwatch. Reported at syscall entry (the
//! attempt is what matters).
use monitor_common::{TamperRecord, kind, syscall};

use crate::output::{current_tracked, header, submit_record};

const PTRACE_POKETEXT: u64 = 4;
const PTRACE_POKEDATA: u64 = 5;
const PTRACE_POKEUSER: u64 = 6;
const PTRACE_SETREGS: u64 = 13;
const PTRACE_SETFPREGS: u64 = 15;
const PTRACE_ATTACH: u64 = 16;
const PTRACE_SETREGSET: u64 = 0x4205;
const PTRACE_SEIZE: u64 = 0x4206;

crate::syscall_program!(sys_enter_ptrace, "sys_enter_ptrace", exit = false, |ctx| {
    // (long request, long pid, unsigned long addr, unsigned long data)
    // SAFETY: syscall tracepoint records hold their arguments from offset 16.
    let request: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
    if matches!(
        request,
        PTRACE_POKETEXT
            | PTRACE_POKEDATA
            | PTRACE_POKEUSER
            | PTRACE_SETREGS
            | PTRACE_SETFPREGS
            | PTRACE_ATTACH
            | PTRACE_SETREGSET
            | PTRACE_SEIZE
    ) {
        // SAFETY: as above.
        let pid: u64 = unsafe { ctx.read_at(24) }.unwrap_or(0);
        emit(syscall::PTRACE, request as u32, pid as u32);
    }
});

crate::syscall_program!(
    sys_enter_process_vm_writev,
    "sys_enter_process_vm_writev",
    exit = false,
    |ctx| {
        // (pid_t pid, const struct iovec *lvec, ...)
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let pid: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        emit(syscall::PROCESS_VM_WRITEV, 0, pid as u32);
    }
);

crate::syscall_program!(
    sys_enter_process_vm_readv,
    "sys_enter_process_vm_readv",
    exit = false,
    |ctx| {
        // (pid_t pid, const struct iovec *lvec, ...)
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let pid: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        // Reading one's own memory this way is odd but harmless.
        if pid as u32 != (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32 {
            emit(syscall::PROCESS_VM_READV, 0, pid as u32);
        }
    }
);

crate::syscall_program!(
    /// pidfd_getfd(pidfd, fd, flags): a copy of another process's descriptor (an agent's socket, a
    /// file it has open), with the same rights as ptrace. `target` carries the pidfd (the process
    /// behind it is whatever the caller opened it for), `request` the descriptor taken.
    sys_enter_pidfd_getfd,
    "sys_enter_pidfd_getfd",
    exit = false,
    |ctx| {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let pidfd: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        // SAFETY: as above.
        let fd: u64 = unsafe { ctx.read_at(24) }.unwrap_or(0);
        emit(syscall::PIDFD_GETFD, fd as u32, pidfd as u32);
    }
);

/// Every CLONE_NEW* flag: NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
const CLONE_NEW_ANY: u64 = 0x80
    | 0x0002_0000
    | 0x0200_0000
    | 0x0400_0000
    | 0x0800_0000
    | 0x1000_0000
    | 0x2000_0000
    | 0x4000_0000;

crate::syscall_program!(
    /// Namespaces: inside a new mount namespace (which an unprivileged user namespace allows) a
    /// bind mount shows `~/.ssh/id_rsa` under any path, and the path walk can only show the path
    /// the process sees. Creating or joining a namespace is reported (as the attempt, at entry).
    sys_enter_unshare,
    "sys_enter_unshare",
    exit = false,
    |ctx| {
        // (unsigned long unshare_flags)
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let flags: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        if flags & CLONE_NEW_ANY != 0 {
            emit(syscall::UNSHARE, flags as u32, 0);
        }
    }
);

crate::syscall_program!(sys_enter_setns, "sys_enter_setns", exit = false, |ctx| {
    // (int fd, int nstype)
    // SAFETY: as above.
    let fd: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
    // SAFETY: as above.
    let nstype: u64 = unsafe { ctx.read_at(24) }.unwrap_or(0);
    emit(syscall::SETNS, nstype as u32, fd as u32);
});

crate::syscall_program!(sys_enter_clone, "sys_enter_clone", exit = false, |ctx| {
    // (unsigned long clone_flags, ...)
    // SAFETY: as above.
    let flags: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
    if flags & CLONE_NEW_ANY != 0 {
        emit(syscall::CLONE_NS, flags as u32, 0);
    }
});

crate::syscall_program!(sys_enter_clone3, "sys_enter_clone3", exit = false, |ctx| {
    // (struct clone_args *uargs, size_t size): `flags` is the struct's first u64.
    // SAFETY: as above.
    let args: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
    // SAFETY: the helper checks the user address.
    let flags: u64 =
        unsafe { aya_ebpf::helpers::bpf_probe_read_user(args as *const u64) }.unwrap_or(0);
    if flags & CLONE_NEW_ANY != 0 {
        emit(syscall::CLONE_NS, flags as u32, 0);
    }
});

crate::syscall_program!(
    /// bpf(cmd, attr, size): every command. The build has no business with eBPF; root in it could
    /// list and detach buildwatch's programs (BPF_PROG_DETACH, BPF_LINK_DETACH) or empty its maps.
    sys_enter_bpf,
    "sys_enter_bpf",
    exit = false,
    |ctx| {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let cmd: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        emit(syscall::BPF, cmd as u32, 0);
    }
);

crate::syscall_program!(
    /// perf_event_open(attr, pid, cpu, group_fd, flags): kprobes, uprobes and tracepoints through
    /// perf, beside the sensor's own. `request` is `attr->type`.
    sys_enter_perf_event_open,
    "sys_enter_perf_event_open",
    exit = false,
    |ctx| {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let attr: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        // SAFETY: the helper checks the user address; `type` is the struct's first u32.
        let kind: u32 =
            unsafe { aya_ebpf::helpers::bpf_probe_read_user(attr as *const u32) }.unwrap_or(u32::MAX);
        emit(syscall::PERF_EVENT_OPEN, kind, 0);
    }
);

crate::syscall_program!(
    /// kill(pid, sig): reported when aimed at buildwatch, or at everything (-1). The build runs in a
    /// process group of its own, so kill(0) and kill(-pgid) of the build's group cannot reach it.
    sys_enter_kill,
    "sys_enter_kill",
    exit = false,
    |ctx| {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let pid: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        // SAFETY: as above.
        let sig: u64 = unsafe { ctx.read_at(24) }.unwrap_or(0);
        let pid = pid as u32;
        if pid == u32::MAX || is_monitor(pid) {
            emit(syscall::KILL_MONITOR, sig as u32, pid);
        }
    }
);

crate::syscall_program!(
    /// tkill(tid, sig): buildwatch's main thread has its process id.
    sys_enter_tkill,
    "sys_enter_tkill",
    exit = false,
    |ctx| {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let tid: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        // SAFETY: as above.
        let sig: u64 = unsafe { ctx.read_at(24) }.unwrap_or(0);
        if is_monitor(tid as u32) {
            emit(syscall::KILL_MONITOR, sig as u32, tid as u32);
        }
    }
);

crate::syscall_program!(
    /// tgkill(tgid, tid, sig)
    sys_enter_tgkill,
    "sys_enter_tgkill",
    exit = false,
    |ctx| {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let tgid: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        // SAFETY: as above.
        let sig: u64 = unsafe { ctx.read_at(32) }.unwrap_or(0);
        if is_monitor(tgid as u32) {
            emit(syscall::KILL_MONITOR, sig as u32, tgid as u32);
        }
    }
);

crate::syscall_program!(
    /// pidfd_open(pid, flags): a handle on buildwatch, to signal it (pidfd_send_signal) or take its
    /// descriptors (pidfd_getfd).
    sys_enter_pidfd_open,
    "sys_enter_pidfd_open",
    exit = false,
    |ctx| {
        // SAFETY: syscall tracepoint records hold their arguments from offset 16.
        let pid: u64 = unsafe { ctx.read_at(16) }.unwrap_or(0);
        if is_monitor(pid as u32) {
            emit(syscall::PIDFD_OPEN_MONITOR, 0, pid as u32);
        }
    }
);

#[inline(always)]
fn is_monitor(pid: u32) -> bool {
    let monitor = crate::maps::MONITOR_TGID.load();
    monitor != 0 && pid == monitor
}

#[inline(always)]
pub(crate) fn emit(syscall: u32, request: u32, target: u32) {
    let Some(task) = current_tracked() else {
        return;
    };
    let record = TamperRecord {
        header: header(kind::TAMPER, size_of::<TamperRecord>() as u32, &task),
        syscall,
        request,
        target,
        callers: crate::macros::callers(task.tgid),
    };
    submit_record(&record, crate::output::lazy());
    crate::enforce_kill::after_tamper(syscall, request, target, record.callers);
}
