//! Running the watched command: as the target user, in its own process group, and only after the
//! sensor tracks it.
//!
//! std's `Command::spawn` waits for the child's exec before returning the pid, which would
//! deadlock with "track the pid, then let it exec". So the fork is done here: the child sets up
//! its identity, then blocks on a pipe; the parent adds its pid to the sensor's tracked set and
//! only then lets it exec. The child runs nothing but async-signal-safe calls between fork and
//! exec (everything it needs is prepared before the fork).
use std::{
    ffi::{CString, OsStr},
    os::{
        fd::{AsRawFd as _, BorrowedFd, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
};

use nix::{
    sys::wait::{WaitPidFlag, WaitStatus, waitpid},
    unistd::{ForkResult, Pid},
};
use thiserror::Error;

use crate::user::TargetUser;

/// Starting the command failed; it did not run.
/// One of the command's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (cargo's progress and diagnostics).
    Stderr,
}

#[derive(Debug, Error)]
pub enum SpawnError {
    /// No program of that name in PATH.
    #[error("command not found: {0} (not in PATH of user {1})")]
    NotFound(String, String),
    /// An argument or variable contains a NUL byte.
    #[error("argument or environment variable contains a NUL byte: {0:?}")]
    Nul(String),
    /// A system call failed while starting the command.
    #[error("starting the command failed: {0}")]
    Sys(String),
    /// exec (or the identity switch before it) failed in the child.
    #[error("starting {program} failed: {error}")]
    Exec {
        /// The program.
        program: String,
        /// errno description.
        error: String,
    },
    /// The sensor refused to track the child.
    #[error("{0}")]
    Track(String),
}

/// The running command.
#[derive(Debug)]
pub struct Child {
    /// Its process id (also its process group id).
    pub pid: u32,
    restore_foreground: Option<Pid>,
}

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl Status {
    /// The exit code buildwatch passes on: the code, or 128 + the signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Exited(code) => code,
            Status::Signaled(sig) => 128 + sig,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(code) => write!(f, "exit status {code}"),
            Status::Signaled(sig) => {
                let name = nix::sys::signal::Signal::try_from(*sig)
                    .map(|s| s.as_str())
                    .unwrap_or("?");
                write!(f, "killed by signal {sig} ({name})")
            }
        }
    }
}

/// Finds `program` in the PATH of `env` (programs with a `/` are taken as they are).
pub fn find_program(program: &str, env: &[(String, String)]) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn cstring(s: &OsStr) -> Result<CString, SpawnError> {
    CString::new(s.as_bytes()).map_err(|_| SpawnError::Nul(s.to_string_lossy().into_owned()))
}

/// Where the command's standard streams go; `None` inherits buildwatch's own.
#[derive(Debug, Default)]
pub struct Stdio {
    /// Standard input.
    pub stdin: Option<OwnedFd>,
    /// Standard output.
    pub stdout: Option<OwnedFd>,
    /// Standard error.
    pub stderr: Option<OwnedFd>,
}

/// Starts `argv` as `user` with environment `env`. `track` is called with the child's pid while
/// the child waits, before its exec; if it fails the child is killed and never runs `argv`.
pub fn spawn(
    argv: &[String],
    user: &TargetUser,
    env: &[(String, String)],
    foreground: bool,
    track: impl FnOnce(u32) -> Result<(), String>,
) -> Result<Child, SpawnError> {
    spawn_with(
        argv,
        user,
        env,
        foreground,
        Stdio::default(),
        None,
        |pid, _| track(pid),
    )
}

/// As [`spawn`], with the command's standard streams redirected as `stdio` says (the live view
/// captures the build's output), and born in the cgroup `cgroup` when one is given and the
/// kernel can (`clone3` with `CLONE_INTO_CGROUP`, Linux 5.7): `track`'s second argument says
/// whether it was.
pub fn spawn_with(
    argv: &[String],
    user: &TargetUser,
    env: &[(String, String)],
    foreground: bool,
    stdio: Stdio,
    cgroup: Option<BorrowedFd<'_>>,
    track: impl FnOnce(u32, bool) -> Result<(), String>,
) -> Result<Child, SpawnError> {
    let program = argv
        .first()
        .ok_or_else(|| SpawnError::Sys("empty command".to_owned()))?;
    let path = find_program(program, env)
        .ok_or_else(|| SpawnError::NotFound(program.clone(), user.name.clone()))?;
    // Everything the child needs, allocated before the fork.
    let c_path = cstring(path.as_os_str())?;
    let c_argv: Vec<CString> = argv
        .iter()
        .map(|a| cstring(OsStr::new(a)))
        .collect::<Result<_, _>>()?;
    let c_env: Vec<CString> = env
        .iter()
        .map(|(k, v)| cstring(OsStr::new(&format!("{k}={v}"))))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = c_argv.iter().map(|c| c.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = c_env.iter().map(|c| c.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let groups: Vec<libc::gid_t> = user.groups.clone();
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |fd| fd.as_raw_fd());
    let stdio_fds = [raw(&stdio.stdin), raw(&stdio.stdout), raw(&stdio.stderr)];

    let (go_read, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::Sys(e.to_string()))?;
    let (err_read, err_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::Sys(e.to_string()))?;
    let parent_pid = nix::unistd::getpid().as_raw();
    let terminal = foreground
        .then(|| nix::unistd::tcgetpgrp(std::io::stdin()).ok())
        .flatten();

    // SAFETY: between fork and exec the child only makes async-signal-safe calls (raw system
    // calls where glibc would consult its thread list: see `child_after_fork`) on data
    // prepared above, and leaves with execve or _exit.
    // SAFETY: as said above, for both ways of forking.
    let forked = cgroup.and_then(|fd| unsafe { clone_into(fd) });
    let (fork, in_cgroup) = match forked {
        Some(forked) => (forked, true),
        // SAFETY: as said above.
        None => match unsafe { nix::unistd::fork() } {
            Ok(forked) => (forked, false),
            Err(e) => return Err(SpawnError::Sys(format!("fork: {e}"))),
        },
    };
    match fork {
        ForkResult::Child => {
            // SAFETY: see above; all pointers are valid NUL-terminated arrays built before fork.
            unsafe {
                child_after_fork(ChildSetup {
                    go: go_read.as_raw_fd(),
                    err: err_write.as_raw_fd(),
                    parent_pid,
                    user_switch: user.switch,
                    uid: user.uid,
                    gid: user.gid,
                    groups: &groups,
                    stdio: stdio_fds,
                    path: c_path.as_ptr(),
                    argv: argv_ptrs.as_ptr(),
                    envp: env_ptrs.as_ptr(),
                })
            }
        }
        ForkResult::Parent { child } => {
            drop(go_read);
            drop(err_write);
            // The child has its copies; the reading ends (held by the caller) see end of file
            // once the command's whole tree is done with them.
            drop(stdio);
            // Also set the group from this side, so that it exists whichever process runs first.
            let _ = nix::unistd::setpgid(child, child);
            let kill_child = || {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
            };
            if let Err(e) = track(child.as_raw() as u32, in_cgroup) {
                kill_child();
                return Err(SpawnError::Track(e));
            }
            let restore_foreground = terminal.and_then(|ours| give_terminal(child).then_some(ours));
            if nix::unistd::write(&go_write, &[1]).is_err() {
                kill_child();
                return Err(SpawnError::Sys("could not release the child".to_owned()));
            }
            drop(go_write);
            let mut buf = [0u8; 4];
            let n = read_full(err_read.as_raw_fd(), &mut buf);
            if n == 4 {
                let errno = nix::errno::Errno::from_raw(i32::from_ne_bytes(buf));
                let _ = waitpid(child, None);
                if let Some(ours) = restore_foreground {
                    take_terminal(ours);
                }
                return Err(SpawnError::Exec {
                    program: path.display().to_string(),
                    error: errno.desc().to_owned(),
                });
            }
            Ok(Child {
                pid: child.as_raw() as u32,
                restore_foreground,
            })
        }
    }
}

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7): glibc's libc crate
/// has no definition.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (linux/sched.h).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks into the cgroup `dir` with `clone3`; `None` when the kernel cannot (too old, or
/// refused), and the caller forks as usual.
///
/// # Safety
/// As fork: the child may only make async-signal-safe calls, and none of glibc's that rely on
/// its own idea of the process's threads (glibc does not know of this fork).
unsafe fn clone_into(dir: BorrowedFd<'_>) -> Option<ForkResult> {
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: a valid clone_args of the size given; no CLONE_VM, so the child has its own copy
    // of the address space, as after fork.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw mut args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        0 => Some(ForkResult::Child),
        pid if pid > 0 => Some(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
        _ => None,
    }
}

fn read_full(fd: i32, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: reading into the unfilled tail of `buf`.
        let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        if r > 0 {
            n += r as usize;
        } else if r == 0 || nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            break;
        }
    }
    n
}

struct ChildSetup<'a> {
    go: i32,
    err: i32,
    parent_pid: i32,
    user_switch: bool,
    uid: u32,
    gid: u32,
    groups: &'a [libc::gid_t],
    /// Descriptors to become fds 0, 1, 2 (-1: keep).
    stdio: [i32; 3],
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
}

/// The child between fork and exec.
///
/// # Safety
/// Only to be called in the child of a fork; the pointers must be valid.
unsafe fn child_after_fork(s: ChildSetup<'_>) -> ! {
    // SAFETY: async-signal-safe calls on valid arguments (the caller's contract).
    unsafe {
        let fail = |err: i32| -> ! {
            let bytes = err.to_ne_bytes();
            libc::write(s.err, bytes.as_ptr().cast(), 4);
            libc::_exit(127)
        };
        libc::setpgid(0, 0);
        for (target, fd) in s.stdio.iter().enumerate() {
            // dup2 clears close-on-exec on the copy: the command keeps it.
            if *fd >= 0 && libc::dup2(*fd, target as i32) < 0 {
                fail(*libc::__errno_location());
            }
        }
        // Raw system calls: glibc's setuid and kin, in a process it believes multi-threaded,
        // have every thread of its list change identity too, and after `clone3` (which glibc
        // does not see) that list still names the monitor's threads.
        if s.user_switch {
            if libc::syscall(libc::SYS_setgroups, s.groups.len(), s.groups.as_ptr()) != 0 {
                fail(*libc::__errno_location());
            }
            if libc::syscall(libc::SYS_setgid, s.gid) != 0 {
                fail(*libc::__errno_location());
            }
            if libc::syscall(libc::SYS_setuid, s.uid) != 0 {
                fail(*libc::__errno_location());
            }
        }
        // Never left running unwatched: die with the monitor. Set after setuid, which clears it.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != s.parent_pid {
            libc::_exit(127);
        }
        // Signal state for a fresh program: Rust ignores SIGPIPE, and the mask is inherited.
        for sig in [
            libc::SIGPIPE,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGTTOU,
            libc::SIGTTIN,
            libc::SIGTSTP,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Wait until the parent has added us to the tracked set.
        let mut byte = 0u8;
        loop {
            let r = libc::read(s.go, (&raw mut byte).cast(), 1);
            if r == 1 {
                break;
            }
            if r == 0 || *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        libc::execve(s.path, s.argv, s.envp);
        fail(*libc::__errno_location())
    }
}

/// Makes the child's process group the terminal's foreground group (so that Ctrl-C and terminal
/// reads go to the build, as they would without buildwatch).
fn give_terminal(child: Pid) -> bool {
    // SAFETY: ignoring SIGTTOU so that tcsetpgrp from a (soon) background group does not stop us.
    unsafe { libc::signal(libc::SIGTTOU, libc::SIG_IGN) };
    nix::unistd::tcsetpgrp(std::io::stdin(), child).is_ok()
}

fn take_terminal(ours: Pid) {
    let _ = nix::unistd::tcsetpgrp(std::io::stdin(), ours);
}

impl Child {
    /// Waits for the command to end (retrying on EINTR) and takes the terminal back.
    pub fn wait(&self) -> Result<Status, SpawnError> {
        let pid = Pid::from_raw(self.pid as i32);
        loop {
            match waitpid(pid, Some(WaitPidFlag::empty())) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(self.finish(Status::Exited(code))),
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    return Ok(self.finish(Status::Signaled(sig as i32)));
                }
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SpawnError::Sys(format!("waitpid: {e}"))),
            }
        }
    }

    fn finish(&self, status: Status) -> Status {
        if let Some(ours) = self.restore_foreground {
            take_terminal(ours);
        }
        status
    }

    /// Sends `signal` to the command's whole process group.
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: kill(2) on our child's process group.
        unsafe { libc::kill(-(self.pid as i32), signal) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_in_path() {
        let env = vec![("PATH".to_owned(), "/nonexistent:/bin:/usr/bin".to_owned())];
        let sh = find_program("sh", &env).expect("sh in /bin or /usr/bin");
        assert!(sh.ends_with("sh"));
        assert_eq!(find_program("./x", &env), Some(PathBuf::from("./x")));
        assert_eq!(find_program("no-such-program-buildwatch", &env), None);
    }

    /// A directory that is no cgroup: `clone3` refuses it, and the command is forked as
    /// usual, with `track` told it was not born in the cgroup (so that it is moved there).
    #[test]
    fn a_refused_clone_into_a_cgroup_falls_back_to_fork() {
        let me = TargetUser {
            name: "me".to_owned(),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            groups: Vec::new(),
            home: PathBuf::from("/"),
            switch: false,
        };
        let env = vec![("PATH".to_owned(), "/bin:/usr/bin".to_owned())];
        let not_a_cgroup = std::fs::File::open(std::env::temp_dir()).expect("temp dir");
        let mut told = None;
        let child = spawn_with(
            &["sh".to_owned(), "-c".to_owned(), "exit 7".to_owned()],
            &me,
            &env,
            false,
            Stdio::default(),
            Some(std::os::fd::AsFd::as_fd(&not_a_cgroup)),
            |_, in_cgroup| {
                told = Some(in_cgroup);
                Ok(())
            },
        )
        .expect("spawned");
        assert_eq!(told, Some(false));
        assert_eq!(child.wait().expect("waited"), Status::Exited(7));
    }

    #[test]
    fn status_codes() {
        assert_eq!(Status::Exited(3).exit_code(), 3);
        assert_eq!(Status::Signaled(9).exit_code(), 137);
        assert_eq!(
            Status::Signaled(2).to_string(),
            "killed by signal 2 (SIGINT)"
        );
    }
}
