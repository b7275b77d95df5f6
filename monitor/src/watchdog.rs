//! The build never outlives buildwatch: a watchdog process kills it when buildwatch dies, even
//! by SIGKILL.
//!
//! The direct child's `PR_SET_PDEATHSIG` only reaches the command itself; cargo's children
//! (rustc, build scripts, daemons they start) would be re-parented and run on unwatched. So
//! buildwatch forks a watchdog before the command runs. It holds the reading end of a pipe
//! whose only writer is buildwatch: end of file without a "disarm" byte first means buildwatch
//! is gone, and the watchdog fires the [`KillSwitch`] (the build's cgroup, process group and
//! tracked set). A normal end disarms it, so that what the build leaves running is left as it
//! was (and reported). The watchdog sits in a session of its own and ignores the terminal's
//! signals: Ctrl-C or a hang-up reach buildwatch and the build, not it.
//!
//! The other way round, buildwatch watches the watchdog: if it dies during the run (a build
//! running as root may kill it), buildwatch stops the build at once, since it would no longer
//! die with buildwatch, and reports the run as incomplete. So does a process of the build
//! that aims ptrace (or process_vm_*, pidfd_getfd) at buildwatch or the watchdog.
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};

use nix::{
    sys::wait::{WaitPidFlag, WaitStatus, waitpid},
    unistd::{ForkResult, Pid},
};

use crate::{
    model::{Event, EventKind},
    observer::Observer,
    sensor::KillSwitch,
};

/// The byte that tells the watchdog the run ended normally.
const DISARM: u8 = b'd';

/// The running watchdog of one build.
pub struct Watchdog {
    pid: Pid,
    /// The writing end of the pipe: closing it without [`DISARM`] fires the watchdog.
    arm: Option<OwnedFd>,
    switch: KillSwitch,
    build: u32,
    lost: Option<String>,
    tampered: Vec<String>,
}

impl Watchdog {
    /// Forks the watchdog of the build whose process group is `build` (the command's pid).
    pub fn start(build: u32, switch: KillSwitch) -> std::io::Result<Self> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let keep = {
            let [a, b] = switch.fds();
            [read.as_raw_fd(), a, b]
        };
        // SAFETY: the child only makes async-signal-safe calls (see `watch_over`) and leaves
        // with _exit.
        match unsafe { nix::unistd::fork() }? {
            ForkResult::Child => {
                // SAFETY: in the child of a fork; `keep` and `switch` were set up before it.
                unsafe { watch_over(read.as_raw_fd(), &keep, &switch, build) }
            }
            ForkResult::Parent { child } => {
                drop(read);
                Ok(Self {
                    pid: child,
                    arm: Some(write),
                    switch,
                    build,
                    lost: None,
                    tampered: Vec::new(),
                })
            }
        }
    }

    /// The watchdog's pid.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Whether the watchdog still runs (it is reaped if not).
    fn alive(&self) -> bool {
        matches!(
            waitpid(self.pid, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive)
        )
    }

    /// The run ended normally: the watchdog exits without killing anything.
    pub fn disarm(mut self) {
        if let Some(arm) = self.arm.take() {
            let _ = nix::unistd::write(&arm, &[DISARM]);
            drop(arm);
            self.reap();
        }
    }

    /// Collects the watchdog once it has exited, waiting a second at most (a stopped one is
    /// left behind rather than hanging buildwatch's exit).
    fn reap(&self) {
        let start = std::time::Instant::now();
        while self.alive() && start.elapsed() < std::time::Duration::from_secs(1) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

impl Drop for Watchdog {
    /// Dropped armed (the run failed after the command started): the watchdog kills the build.
    fn drop(&mut self) {
        if let Some(arm) = self.arm.take() {
            drop(arm);
            self.reap();
        }
    }
}

/// The run loop checks on the watchdog at every turn.
impl Observer for Watchdog {
    fn tick(&mut self, _pipeline: &crate::pipeline::Pipeline) {
        if self.lost.is_some() || self.arm.is_none() || self.alive() {
            return;
        }
        self.switch.fire(self.build);
        let message = format!(
            "the watchdog (pid {}) that kills the build if buildwatch dies was killed during \
             the run (by the build, running as root?): the build was stopped, since it could \
             have outlived buildwatch unwatched. Monitoring is incomplete",
            self.pid
        );
        eprintln!("buildwatch: error: {message}");
        self.lost = Some(message);
        // Nothing to disarm any more.
        self.arm = None;
    }

    /// A process of the build aiming ptrace (or process_vm_*, pidfd_getfd) at buildwatch or
    /// its watchdog could have changed what buildwatch sees or does: the run's record is not
    /// to be trusted, whatever the profiles say.
    fn event(&mut self, event: &Event, _pipeline: &crate::pipeline::Pipeline) {
        let EventKind::Tamper(tamper) = &event.kind else {
            return;
        };
        let target = tamper.target;
        let us = std::process::id();
        // Only reaching into a process counts here; signals aimed at buildwatch are the policy's
        // (`monitor-tamper`): one that stops or kills it shows as loss or as its death.
        if !matches!(tamper.syscall, crate::model::TamperSyscall::Process(_))
            || (target != us && target != self.pid())
        {
            return;
        }
        let whom = if target == us {
            "buildwatch itself"
        } else {
            "buildwatch's watchdog"
        };
        let how = tamper.request.as_deref().unwrap_or(tamper.syscall.as_str());
        self.tampered.push(format!(
            "process {} ({}) of the build aimed {how} at {whom} (pid {target}): what buildwatch \
             saw and did may have been altered. Monitoring is incomplete",
            event.pid, event.comm
        ));
    }

    fn take_errors(&mut self) -> Vec<String> {
        let mut errors: Vec<String> = self.lost.take().into_iter().collect();
        errors.append(&mut self.tampered);
        errors
    }
}

/// The watchdog's life, in the forked child.
///
/// # Safety
/// Only in the child of a fork of a possibly multi-threaded process: async-signal-safe calls
/// only (no allocation, no locks).
unsafe fn watch_over(read: RawFd, keep: &[RawFd; 3], switch: &KillSwitch, build: u32) -> ! {
    // SAFETY: raw system calls on values prepared before the fork.
    unsafe {
        libc::setsid();
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let name = b"bw-watchdog\0";
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        close_all_but(keep);
        let mut byte = 0u8;
        let disarmed = loop {
            let r = libc::read(read, (&raw mut byte).cast(), 1);
            if r == 1 {
                break byte == DISARM;
            }
            if r == 0 || *libc::__errno_location() != libc::EINTR {
                break false;
            }
        };
        if !disarmed {
            switch.fire(build);
        }
        libc::_exit(0)
    }
}

/// Closes every descriptor from 3 up except those in `keep` (the watchdog must not hold
/// buildwatch's pipes, files or eBPF links open).
///
/// # Safety
/// Closes descriptors behind the back of whoever owns them: only in a child about to live on
/// raw system calls.
unsafe fn close_all_but(keep: &[RawFd; 3]) {
    let mut keep = *keep;
    keep.sort_unstable();
    let mut from: u32 = 3;
    for fd in keep {
        if fd < from as RawFd {
            continue;
        }
        close_range(from, fd as u32 - 1);
        from = fd as u32 + 1;
    }
    close_range(from, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: close_range(2) (Linux 5.9) on plain numbers.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r != 0 {
        // Older kernels: one by one, up to the descriptor limit.
        // SAFETY: sysconf and close on plain numbers.
        let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(0, 1 << 20) as u32;
        for fd in first..=last.min(max) {
            // SAFETY: as above.
            unsafe { libc::close(fd as i32) };
        }
    }
}
