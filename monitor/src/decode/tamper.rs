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
        _ => TamperSyscall::Process(ProcessCall::Unknown),
    }
}
