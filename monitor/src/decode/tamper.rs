//! Decoding the tamper family: what was done to which process or namespace.

use super::*;

pub(super) fn ptrace_request(r: u32) -> String {
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
pub(super) fn namespace_flags(flags: u32) -> String {
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

pub(super) fn tamper_syscall(code: u32) -> TamperSyscall {
    match code {
        syscall::PTRACE => TamperSyscall::Process(ProcessCall::Ptrace),
        syscall::PROCESS_VM_WRITEV => TamperSyscall::Process(ProcessCall::ProcessVmWritev),
        syscall::PROCESS_VM_READV => TamperSyscall::Process(ProcessCall::ProcessVmReadv),
        syscall::PIDFD_GETFD => TamperSyscall::Process(ProcessCall::PidfdGetfd),
        syscall::UNSHARE => TamperSyscall::Namespace(NamespaceCall::Unshare),
        syscall::SETNS => TamperSyscall::Namespace(NamespaceCall::Setns),
        syscall::CLONE_NS => TamperSyscall::Namespace(NamespaceCall::Clone),
        syscall::BPF => TamperSyscall::Monitor(MonitorCall::Bpf),
        syscall::PERF_EVENT_OPEN => TamperSyscall::Monitor(MonitorCall::PerfEventOpen),
        syscall::KILL_MONITOR => TamperSyscall::Monitor(MonitorCall::Kill),
        syscall::PIDFD_OPEN_MONITOR => TamperSyscall::Monitor(MonitorCall::PidfdOpen),
        syscall::PRIVILEGED_EXEC => TamperSyscall::Privilege(PrivilegeCall::Exec),
        syscall::PRIVILEGED_CREDS => TamperSyscall::Privilege(PrivilegeCall::Creds),
        _ => TamperSyscall::Process(ProcessCall::Unknown),
    }
}

/// bpf(2) commands by name (include/uapi/linux/bpf.h, `enum bpf_cmd`).
pub(super) fn bpf_command(cmd: u32) -> String {
    const NAMES: [&str; 37] = [
        "BPF_MAP_CREATE",
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
        "BPF_PROG_LOAD",
        "BPF_OBJ_PIN",
        "BPF_OBJ_GET",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
        "BPF_PROG_TEST_RUN",
        "BPF_PROG_GET_NEXT_ID",
        "BPF_MAP_GET_NEXT_ID",
        "BPF_PROG_GET_FD_BY_ID",
        "BPF_MAP_GET_FD_BY_ID",
        "BPF_OBJ_GET_INFO_BY_FD",
        "BPF_PROG_QUERY",
        "BPF_RAW_TRACEPOINT_OPEN",
        "BPF_BTF_LOAD",
        "BPF_BTF_GET_FD_BY_ID",
        "BPF_TASK_FD_QUERY",
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "BPF_MAP_FREEZE",
        "BPF_BTF_GET_NEXT_ID",
        "BPF_MAP_LOOKUP_BATCH",
        "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        "BPF_MAP_UPDATE_BATCH",
        "BPF_MAP_DELETE_BATCH",
        "BPF_LINK_CREATE",
        "BPF_LINK_UPDATE",
        "BPF_LINK_GET_FD_BY_ID",
        "BPF_LINK_GET_NEXT_ID",
        "BPF_ENABLE_STATS",
        "BPF_ITER_CREATE",
        "BPF_LINK_DETACH",
        "BPF_PROG_BIND_MAP",
        "BPF_TOKEN_CREATE",
    ];
    NAMES
        .get(cmd as usize)
        .map_or_else(|| format!("command {cmd}"), |n| (*n).to_owned())
}

/// `perf_event_attr.type` by name (include/uapi/linux/perf_event.h); dynamic PMUs (kprobe,
/// uprobe) have numbers of their own, shown as such.
pub(super) fn perf_type(t: u32) -> String {
    match t {
        0 => "PERF_TYPE_HARDWARE".to_owned(),
        1 => "PERF_TYPE_SOFTWARE".to_owned(),
        2 => "PERF_TYPE_TRACEPOINT".to_owned(),
        3 => "PERF_TYPE_HW_CACHE".to_owned(),
        4 => "PERF_TYPE_RAW".to_owned(),
        5 => "PERF_TYPE_BREAKPOINT".to_owned(),
        u32::MAX => "type unreadable".to_owned(),
        t => format!("PMU type {t}"),
    }
}

/// A signal number by name.
pub(super) fn signal_name(sig: u32) -> String {
    const NAMES: [&str; 32] = [
        "signal 0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES
        .get(sig as usize)
        .map_or_else(|| format!("signal {sig}"), |n| (*n).to_owned())
}

/// A credential call's privilege bits as [`privilege_marks`], followed by the call as
/// `syscall=NAME` (`root,caps,syscall=setresuid`); the number is this architecture's.
pub(super) fn credential_marks(request: u32) -> String {
    use monitor_common::privilege as p;
    let nr = i64::from((request >> p::NR_SHIFT) & p::NR_MASK);
    let name = match nr {
        libc::SYS_setuid => "setuid".to_owned(),
        libc::SYS_setreuid => "setreuid".to_owned(),
        libc::SYS_setresuid => "setresuid".to_owned(),
        libc::SYS_setfsuid => "setfsuid".to_owned(),
        libc::SYS_setgid => "setgid".to_owned(),
        libc::SYS_setregid => "setregid".to_owned(),
        libc::SYS_setresgid => "setresgid".to_owned(),
        libc::SYS_setfsgid => "setfsgid".to_owned(),
        libc::SYS_capset => "capset".to_owned(),
        nr => format!("syscall {nr}"),
    };
    let marks = privilege_marks(request & !(p::NR_MASK << p::NR_SHIFT));
    if marks.is_empty() {
        format!("syscall={name}")
    } else {
        format!("{marks},syscall={name}")
    }
}

/// The sensor's privilege bits as the marks `policy` reads (`setuid,root,killed`).
pub(super) fn privilege_marks(bits: u32) -> String {
    use monitor_common::privilege as p;
    [
        (p::SETUID, "setuid"),
        (p::SETGID, "setgid"),
        (p::ROOT, "root"),
        (p::CAPS, "caps"),
        (p::KILLED, "killed"),
    ]
    .iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, mark)| *mark)
    .collect::<Vec<_>>()
    .join(",")
}
