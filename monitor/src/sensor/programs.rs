//! The sensor's program table: every eBPF program, where it attaches and whether the sensor
//! can start without it. A new program is one entry here (and its code in monitor-ebpf); the
//! test below fails when the compiled object has a program this table does not list.

/// Where each program attaches. One table, one loader loop.
pub(super) enum Hook {
    TracePoint(&'static str, &'static str),
    RawTracePoint(&'static str),
    /// A watched system call's entry or exit, by name and (x86_64) number. On x86_64 the
    /// program goes into the raw `sys_enter`/`sys_exit` dispatcher's program array at that
    /// number (monitor-ebpf/src/dispatch.rs: a `syscalls:` tracepoint costs every such call of
    /// the machine ~600 ns, the dispatcher almost nothing); elsewhere it is attached to the
    /// `syscalls:sys_{enter,exit}_NAME` tracepoint.
    Syscall(Side, &'static str, i64),
    /// A slot of a dispatcher's array above the call numbers (`monitor_common::dispatch`):
    /// 32-bit calls' programs, and programs other programs continue with.
    Slot(Side, u32),
}

/// A system call's entry or exit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Side {
    Enter,
    Exit,
}

impl Side {
    /// The word in the `syscalls:` tracepoints' names.
    pub(super) fn word(self) -> &'static str {
        match self {
            Side::Enter => "enter",
            Side::Exit => "exit",
        }
    }
}

use Side::{Enter, Exit};

/// A program and its hooks. Required programs must attach or the sensor does not start;
/// optional ones (hooks some kernels lack) are reported as coverage gaps when missing.
pub(super) struct Program {
    pub name: &'static str,
    pub hooks: &'static [Hook],
    pub required: bool,
}

/// Programs attached only under `--enforce` (kill mode): their cost is not paid otherwise.
pub(super) const ENFORCE_PROGRAMS: &[Program] = &[
    #[cfg(target_arch = "x86_64")]
    Program {
        name: "sys_enter_compat_kill",
        hooks: &[Hook::Slot(Enter, monitor_common::dispatch::COMPAT_SLOT)],
        required: true,
    },
];

pub(super) const PROGRAMS: &[Program] = &[
    Program {
        name: "sched_process_fork",
        hooks: &[Hook::RawTracePoint("sched_process_fork")],
        required: true,
    },
    Program {
        name: "sched_process_exec",
        hooks: &[Hook::TracePoint("sched", "sched_process_exec")],
        required: true,
    },
    Program {
        name: "sched_process_exit",
        hooks: &[Hook::TracePoint("sched", "sched_process_exit")],
        required: true,
    },
    // x86_64 reads the arguments of the open family (and of rename, link, symlink) from the
    // saved registers at sys_exit: these sys_enter programs are for other architectures.
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_openat",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_openat")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_openat2",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_openat2")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_open",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_open")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_creat",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_creat")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_open_by_handle_at",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_open_by_handle_at")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_rename",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_rename")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_renameat",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_renameat")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_renameat2",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_renameat2")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_link",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_link")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_linkat",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_linkat")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_symlink",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_symlink")],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_enter_symlinkat",
        hooks: &[Hook::TracePoint("syscalls", "sys_enter_symlinkat")],
        required: true,
    },
    // The dispatchers of the watched system calls (monitor-ebpf/src/dispatch.rs), and the
    // program for 32-bit calls, which the syscalls: tracepoints skip (x86_64: int 0x80).
    #[cfg(target_arch = "x86_64")]
    Program {
        name: "raw_sys_enter",
        hooks: &[Hook::RawTracePoint("sys_enter")],
        required: true,
    },
    #[cfg(target_arch = "x86_64")]
    Program {
        name: "raw_sys_exit",
        hooks: &[Hook::RawTracePoint("sys_exit")],
        required: true,
    },
    #[cfg(target_arch = "x86_64")]
    Program {
        name: "sys_exit_compat",
        hooks: &[Hook::Slot(Exit, monitor_common::dispatch::COMPAT_SLOT)],
        required: true,
    },
    // Renames and links go to `sys_exit_link_source` first (their old names), which continues
    // with this program (their new names) through its slot.
    #[cfg(target_arch = "x86_64")]
    Program {
        name: "sys_exit_open_family",
        hooks: &[
            Hook::Syscall(Exit, "openat", libc::SYS_openat),
            Hook::Syscall(Exit, "openat2", libc::SYS_openat2),
            Hook::Syscall(Exit, "open", libc::SYS_open),
            Hook::Syscall(Exit, "creat", libc::SYS_creat),
            Hook::Syscall(Exit, "open_by_handle_at", libc::SYS_open_by_handle_at),
            Hook::Syscall(Exit, "symlink", libc::SYS_symlink),
            Hook::Syscall(Exit, "symlinkat", libc::SYS_symlinkat),
            Hook::Slot(Exit, monitor_common::dispatch::LINK_NEW_SLOT),
        ],
        required: true,
    },
    #[cfg(not(target_arch = "x86_64"))]
    Program {
        name: "sys_exit_open_family",
        hooks: &[
            Hook::TracePoint("syscalls", "sys_exit_openat"),
            Hook::TracePoint("syscalls", "sys_exit_openat2"),
            Hook::TracePoint("syscalls", "sys_exit_open"),
            Hook::TracePoint("syscalls", "sys_exit_creat"),
            Hook::TracePoint("syscalls", "sys_exit_open_by_handle_at"),
            Hook::TracePoint("syscalls", "sys_exit_rename"),
            Hook::TracePoint("syscalls", "sys_exit_renameat"),
            Hook::TracePoint("syscalls", "sys_exit_renameat2"),
            Hook::TracePoint("syscalls", "sys_exit_link"),
            Hook::TracePoint("syscalls", "sys_exit_linkat"),
            Hook::TracePoint("syscalls", "sys_exit_symlink"),
            Hook::TracePoint("syscalls", "sys_exit_symlinkat"),
        ],
        required: true,
    },
    // The old names of renames and links (x86_64: read from the saved registers).
    #[cfg(target_arch = "x86_64")]
    Program {
        name: "sys_exit_link_source",
        hooks: &[
            Hook::Syscall(Exit, "rename", libc::SYS_rename),
            Hook::Syscall(Exit, "renameat", libc::SYS_renameat),
            Hook::Syscall(Exit, "renameat2", libc::SYS_renameat2),
            Hook::Syscall(Exit, "link", libc::SYS_link),
            Hook::Syscall(Exit, "linkat", libc::SYS_linkat),
        ],
        required: true,
    },
    Program {
        name: "sys_enter_connect",
        hooks: &[Hook::Syscall(Enter, "connect", libc::SYS_connect)],
        required: true,
    },
    Program {
        name: "sys_exit_connect",
        hooks: &[Hook::Syscall(Exit, "connect", libc::SYS_connect)],
        required: true,
    },
    Program {
        name: "sys_enter_sendto",
        hooks: &[Hook::Syscall(Enter, "sendto", libc::SYS_sendto)],
        required: true,
    },
    Program {
        name: "sys_enter_sendmsg",
        hooks: &[Hook::Syscall(Enter, "sendmsg", libc::SYS_sendmsg)],
        required: true,
    },
    Program {
        name: "sys_enter_sendmmsg",
        hooks: &[Hook::Syscall(Enter, "sendmmsg", libc::SYS_sendmmsg)],
        required: true,
    },
    Program {
        name: "sys_exit_send_family",
        hooks: &[
            Hook::Syscall(Exit, "sendto", libc::SYS_sendto),
            Hook::Syscall(Exit, "sendmsg", libc::SYS_sendmsg),
            Hook::Syscall(Exit, "sendmmsg", libc::SYS_sendmmsg),
        ],
        required: true,
    },
    // Raw and packet sockets (raw_socket.rs): their creation, and packets written to them.
    Program {
        name: "sys_enter_socket",
        hooks: &[Hook::Syscall(Enter, "socket", libc::SYS_socket)],
        required: true,
    },
    Program {
        name: "sys_exit_socket",
        hooks: &[Hook::Syscall(Exit, "socket", libc::SYS_socket)],
        required: true,
    },
    Program {
        name: "sys_enter_write",
        hooks: &[Hook::Syscall(Enter, "write", libc::SYS_write)],
        required: true,
    },
    Program {
        name: "sys_exit_write",
        hooks: &[Hook::Syscall(Exit, "write", libc::SYS_write)],
        required: true,
    },
    Program {
        name: "sys_enter_mmap",
        hooks: &[Hook::Syscall(Enter, "mmap", libc::SYS_mmap)],
        required: true,
    },
    Program {
        name: "sys_exit_mmap",
        hooks: &[Hook::Syscall(Exit, "mmap", libc::SYS_mmap)],
        required: true,
    },
    Program {
        name: "sys_enter_ptrace",
        hooks: &[Hook::Syscall(Enter, "ptrace", libc::SYS_ptrace)],
        required: true,
    },
    Program {
        name: "sys_enter_process_vm_writev",
        hooks: &[Hook::Syscall(
            Enter,
            "process_vm_writev",
            libc::SYS_process_vm_writev,
        )],
        required: true,
    },
    Program {
        name: "sys_enter_process_vm_readv",
        hooks: &[Hook::Syscall(
            Enter,
            "process_vm_readv",
            libc::SYS_process_vm_readv,
        )],
        required: true,
    },
    Program {
        name: "sys_enter_pidfd_getfd",
        hooks: &[Hook::Syscall(Enter, "pidfd_getfd", libc::SYS_pidfd_getfd)],
        required: true,
    },
    Program {
        name: "sys_enter_unshare",
        hooks: &[Hook::Syscall(Enter, "unshare", libc::SYS_unshare)],
        required: true,
    },
    Program {
        name: "sys_enter_setns",
        hooks: &[Hook::Syscall(Enter, "setns", libc::SYS_setns)],
        required: true,
    },
    Program {
        name: "sys_enter_clone",
        hooks: &[Hook::Syscall(Enter, "clone", libc::SYS_clone)],
        required: true,
    },
    Program {
        name: "sys_enter_clone3",
        hooks: &[Hook::Syscall(Enter, "clone3", libc::SYS_clone3)],
        required: true,
    },
    Program {
        name: "sys_enter_bpf",
        hooks: &[Hook::Syscall(Enter, "bpf", libc::SYS_bpf)],
        required: true,
    },
    Program {
        name: "sys_enter_perf_event_open",
        hooks: &[Hook::Syscall(
            Enter,
            "perf_event_open",
            libc::SYS_perf_event_open,
        )],
        required: true,
    },
    Program {
        name: "sys_enter_kill",
        hooks: &[Hook::Syscall(Enter, "kill", libc::SYS_kill)],
        required: true,
    },
    Program {
        name: "sys_enter_tkill",
        hooks: &[Hook::Syscall(Enter, "tkill", libc::SYS_tkill)],
        required: true,
    },
    Program {
        name: "sys_enter_tgkill",
        hooks: &[Hook::Syscall(Enter, "tgkill", libc::SYS_tgkill)],
        required: true,
    },
    // Privilege gains without exec: the credential calls, at entry and exit (privilege.rs).
    Program {
        name: "sys_enter_cred",
        hooks: &[
            Hook::Syscall(Enter, "setuid", libc::SYS_setuid),
            Hook::Syscall(Enter, "setreuid", libc::SYS_setreuid),
            Hook::Syscall(Enter, "setresuid", libc::SYS_setresuid),
            Hook::Syscall(Enter, "setfsuid", libc::SYS_setfsuid),
            Hook::Syscall(Enter, "setgid", libc::SYS_setgid),
            Hook::Syscall(Enter, "setregid", libc::SYS_setregid),
            Hook::Syscall(Enter, "setresgid", libc::SYS_setresgid),
            Hook::Syscall(Enter, "setfsgid", libc::SYS_setfsgid),
            Hook::Syscall(Enter, "capset", libc::SYS_capset),
        ],
        required: true,
    },
    Program {
        name: "sys_exit_cred",
        hooks: &[
            Hook::Syscall(Exit, "setuid", libc::SYS_setuid),
            Hook::Syscall(Exit, "setreuid", libc::SYS_setreuid),
            Hook::Syscall(Exit, "setresuid", libc::SYS_setresuid),
            Hook::Syscall(Exit, "setfsuid", libc::SYS_setfsuid),
            Hook::Syscall(Exit, "setgid", libc::SYS_setgid),
            Hook::Syscall(Exit, "setregid", libc::SYS_setregid),
            Hook::Syscall(Exit, "setresgid", libc::SYS_setresgid),
            Hook::Syscall(Exit, "setfsgid", libc::SYS_setfsgid),
            Hook::Syscall(Exit, "capset", libc::SYS_capset),
        ],
        required: true,
    },
    Program {
        name: "sys_enter_pidfd_open",
        hooks: &[Hook::Syscall(Enter, "pidfd_open", libc::SYS_pidfd_open)],
        required: false,
    },
    Program {
        name: "io_uring_create",
        hooks: &[Hook::TracePoint("io_uring", "io_uring_create")],
        required: false,
    },
    Program {
        name: "io_uring_submit_req",
        hooks: &[Hook::TracePoint("io_uring", "io_uring_submit_req")],
        required: false,
    },
];

/// The cgroup socket-address programs (attached to the build's cgroup, not to tracepoints).
pub(super) const CGROUP_PROGRAMS: [&str; 4] = [
    "cgroup_connect4",
    "cgroup_connect6",
    "cgroup_sendmsg4",
    "cgroup_sendmsg6",
];

/// The cgroup socket programs: `sock_create`, which sees every inet socket created in the build's
/// cgroup (and refuses raw ones under `--enforce`).
pub(super) const CGROUP_SOCK_PROGRAMS: [&str; 1] = ["cgroup_sock_create"];

/// Programs of the object this architecture leaves unattached: x86_64 reads the arguments of the
/// open family and of rename, link and symlink from the saved registers at sys_exit, so their
/// sys_enter programs (which stash the arguments elsewhere) are not needed there. (Only the
/// test needs the list: the loader attaches what [`PROGRAMS`] lists.)
#[cfg(all(test, target_arch = "x86_64"))]
const UNUSED_HERE: &[&str] = &[
    "sys_enter_openat",
    "sys_enter_openat2",
    "sys_enter_open",
    "sys_enter_creat",
    "sys_enter_open_by_handle_at",
    "sys_enter_rename",
    "sys_enter_renameat",
    "sys_enter_renameat2",
    "sys_enter_link",
    "sys_enter_linkat",
    "sys_enter_symlink",
    "sys_enter_symlinkat",
];
/// See the x86_64 list: other architectures attach every program.
#[cfg(all(test, not(target_arch = "x86_64")))]
const UNUSED_HERE: &[&str] = &[];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_program_in_the_object_is_listed_once() {
        let object = aya_obj::Object::parse(super::super::OBJECT).expect("parse the eBPF object");
        let in_object: BTreeSet<&str> = object.programs.keys().map(String::as_str).collect();
        let mut listed = BTreeSet::new();
        for name in PROGRAMS
            .iter()
            .chain(ENFORCE_PROGRAMS)
            .map(|p| p.name)
            .chain(CGROUP_PROGRAMS)
            .chain(CGROUP_SOCK_PROGRAMS)
            .chain(UNUSED_HERE.iter().copied())
        {
            assert!(listed.insert(name), "`{name}` is listed twice");
        }
        let unlisted: Vec<&&str> = in_object.difference(&listed).collect();
        assert!(unlisted.is_empty(), "programs never attached: {unlisted:?}");
        let missing: Vec<&&str> = listed.difference(&in_object).collect();
        assert!(
            missing.is_empty(),
            "listed but not in the object: {missing:?}"
        );
    }

    #[test]
    fn every_program_has_a_hook() {
        for program in PROGRAMS.iter().chain(ENFORCE_PROGRAMS) {
            assert!(
                !program.hooks.is_empty(),
                "`{}` attaches nowhere",
                program.name
            );
        }
    }
}
