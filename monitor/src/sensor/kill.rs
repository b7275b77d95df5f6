//! Killing the whole build at once, from anywhere: buildwatch itself, or its watchdog (a forked
//! child that must only make async-signal-safe calls, since buildwatch has threads).
//!
//! Three nets, each catching what the one before may miss:
//! 1. `cgroup.kill` of the build's cgroup (Linux 5.14+): every process in it, atomically, forks
//!    in flight included. A process cannot leave the cgroup unless it is root.
//! 2. SIGKILL to the command's process group (no cgroup v2, or an older kernel).
//! 3. SIGKILL to every process in the sensor's tracked set (a daemon that left the process
//!    group with `setsid`, without cgroup v2). The kernel removes a process from the set when
//!    it exits, so a pid found there is a live process of the build.
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd, RawFd};

/// What it takes to kill the build; see the module documentation.
#[derive(Debug)]
pub struct KillSwitch {
    /// `<build cgroup>/cgroup.kill`, open for writing.
    cgroup_kill: Option<OwnedFd>,
    /// The tracked set (`TRACKED`, tgid → 1).
    tracked: OwnedFd,
}

/// The most pids read from the tracked set in one pass (on the stack: no allocation).
const PASS: usize = 1024;

impl KillSwitch {
    pub(super) fn new(cgroup_kill: Option<OwnedFd>, tracked: OwnedFd) -> Self {
        Self {
            cgroup_kill,
            tracked,
        }
    }

    /// The descriptors [`Self::fire`] uses (a forked watchdog keeps these open, and no other).
    pub fn fds(&self) -> [RawFd; 2] {
        [
            self.cgroup_kill.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            self.tracked.as_fd().as_raw_fd(),
        ]
    }

    /// Kills every process of the build whose process group is `pgid`. Async-signal-safe: only
    /// raw system calls on descriptors opened beforehand, no allocation.
    pub fn fire(&self, pgid: u32) {
        if let Some(fd) = &self.cgroup_kill {
            // SAFETY: write(2) of a static byte to a descriptor we own.
            unsafe { libc::write(fd.as_raw_fd(), b"1".as_ptr().cast(), 1) };
        }
        // SAFETY: kill(2) on the build's process group (a negative pid).
        unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
        // Processes exit asynchronously and may fork in between: a few passes until the set
        // holds nothing that is still alive.
        for _ in 0..8 {
            let mut pids = [0u32; PASS];
            let n = tracked_pids(self.tracked.as_raw_fd(), &mut pids);
            let mut alive = 0;
            for &pid in &pids[..n] {
                // SAFETY: kill(2) on a pid of the build's tracked set.
                if pid > 1 && unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0 {
                    alive += 1;
                }
            }
            if alive == 0 {
                break;
            }
            // SAFETY: a plain sleep, to let the killed exit (and leave the set).
            unsafe { libc::usleep(2_000) };
        }
    }
}

/// `union bpf_attr` as `BPF_MAP_GET_NEXT_KEY` reads it.
#[repr(C)]
struct NextKeyAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    next_key: u64,
    flags: u64,
}

const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// Reads up to `out.len()` keys of the hash map `fd` (u32 keys) with raw `bpf(2)` calls;
/// returns how many.
pub(super) fn tracked_pids(fd: RawFd, out: &mut [u32]) -> usize {
    let mut n = 0;
    let mut key = 0u32;
    let mut next = 0u32;
    let mut first = true;
    while n < out.len() {
        let attr = NextKeyAttr {
            map_fd: fd as u32,
            _pad: 0,
            // A null key asks for the first one.
            key: if first { 0 } else { (&raw const key) as u64 },
            next_key: (&raw mut next) as u64,
            flags: 0,
        };
        // SAFETY: bpf(2) with a valid attribute of the size given; the kernel writes one u32
        // key into `next`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_GET_NEXT_KEY,
                &raw const attr,
                std::mem::size_of::<NextKeyAttr>() as u32,
            )
        };
        if r != 0 {
            break;
        }
        out[n] = next;
        n += 1;
        key = next;
        first = false;
    }
    n
}
