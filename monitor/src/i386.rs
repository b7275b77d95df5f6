//! Names of i386 system calls (the table `int 0x80` uses), for 32-bit calls the sensor reports.
//! <https://github.com/torvalds/linux/blob/v6.18/arch/x86/entry/syscalls/syscall_32.tbl>

/// The name of i386 system call `nr`, or `syscall#<nr>` for one not listed here.
pub fn syscall_name(nr: u32) -> String {
    let name = match nr {
        1 => "exit",
        2 => "fork",
        3 => "read",
        4 => "write",
        5 => "open",
        6 => "close",
        8 => "creat",
        9 => "link",
        10 => "unlink",
        11 => "execve",
        12 => "chdir",
        15 => "chmod",
        19 => "lseek",
        20 => "getpid",
        26 => "ptrace",
        37 => "kill",
        38 => "rename",
        39 => "mkdir",
        40 => "rmdir",
        41 => "dup",
        42 => "pipe",
        45 => "brk",
        54 => "ioctl",
        63 => "dup2",
        83 => "symlink",
        85 => "readlink",
        90 => "mmap",
        91 => "munmap",
        102 => "socketcall",
        114 => "wait4",
        120 => "clone",
        122 => "uname",
        125 => "mprotect",
        162 => "nanosleep",
        174 => "rt_sigaction",
        175 => "rt_sigprocmask",
        183 => "getcwd",
        190 => "vfork",
        192 => "mmap2",
        195 => "stat64",
        196 => "lstat64",
        197 => "fstat64",
        220 => "getdents64",
        221 => "fcntl64",
        240 => "futex",
        252 => "exit_group",
        295 => "openat",
        301 => "unlinkat",
        302 => "renameat",
        303 => "linkat",
        304 => "symlinkat",
        342 => "open_by_handle_at",
        347 => "process_vm_readv",
        348 => "process_vm_writev",
        353 => "renameat2",
        356 => "memfd_create",
        358 => "execveat",
        359 => "socket",
        361 => "bind",
        362 => "connect",
        363 => "listen",
        364 => "accept4",
        369 => "sendto",
        370 => "sendmsg",
        371 => "recvfrom",
        372 => "recvmsg",
        425 => "io_uring_setup",
        426 => "io_uring_enter",
        435 => "clone3",
        437 => "openat2",
        _ => return format!("syscall#{nr}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_numbers() {
        assert_eq!(syscall_name(5), "open");
        assert_eq!(syscall_name(362), "connect");
        assert_eq!(syscall_name(999), "syscall#999");
    }
}
