//! `buildwatch guard`: the system call hooks attached only while something that can run crate
//! code is tracked. While any `sys_enter`/`sys_exit` tracepoint is attached, the kernel sends
//! every system call of every process through its slow path (monitor-ebpf/src/dispatch.rs), which
//! a machine with no build running should not pay. The process hooks (fork, exec, exit) stay
//! attached, so the guard still adopts every build root at exec; while the system call hooks are
//! detached the kernel holds each tracked process that execs an image that may run crate code
//! (monitor-ebpf/src/guard.rs) until [`Sensor::wake`] has attached them and continues it.
use aya::maps::{Array, HashMap as BpfHashMap, MapData};
use monitor_common::{HOOKS_LIVE, tracked};

use super::{Sensor, SensorError, load::attach, maps::map_failed};

impl Sensor {
    /// Whether the system call hooks are attached (always, outside the guard).
    pub fn syscall_hooks_live(&self) -> bool {
        self.deferred.is_empty() || !self.syscall_links.is_empty()
    }

    /// Whether anything tracked needs the system call hooks: a process held for them, or a
    /// tracked process other than an editor's language server. Processes that are gone (their
    /// exit missed) are forgotten on the way.
    pub fn syscall_hooks_wanted(&mut self) -> Result<bool, SensorError> {
        if !self.held()?.is_empty() {
            return Ok(true);
        }
        let entries: Vec<(u32, u32)> = self.tracked.iter().filter_map(Result::ok).collect();
        let mut wanted = false;
        for (pid, how) in entries {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = self.tracked.remove(&pid);
            } else if how != tracked::EDITOR_ROOT {
                wanted = true;
            }
        }
        Ok(wanted)
    }

    /// Attaches the system call hooks, tells the kernel, and continues the processes it held
    /// for them. Returns how many were continued.
    pub fn wake(&mut self) -> Result<usize, SensorError> {
        if self.syscall_hooks_live() {
            return self.release_held();
        }
        let deferred = self.deferred.clone();
        for (name, hooks) in &deferred {
            if let Err(e) = attach(&mut self.ebpf, name, hooks, &mut self.syscall_links) {
                self.syscall_links.clear();
                return Err(e);
            }
        }
        // After attaching: an exec that sees the flag set is watched from its first instruction.
        self.set_live(true)?;
        self.release_held()
    }

    /// Detaches the system call hooks unless something wants them. The kernel is told first
    /// and the tracked set read again after, so that a process that execs in between is either
    /// seen here (the hooks stay) or held at its exec. Returns whether they were detached.
    pub fn sleep(&mut self) -> Result<bool, SensorError> {
        if !self.syscall_hooks_live() || self.deferred.is_empty() {
            return Ok(false);
        }
        self.set_live(false)?;
        if self.syscall_hooks_wanted()? {
            self.set_live(true)?;
            return Ok(false);
        }
        // Each detach waits for an RCU grace period (tens of ms): done here, not handed off, so
        // that a wake right after cannot run the dispatchers twice.
        self.syscall_links.clear();
        Ok(true)
    }

    fn set_live(&mut self, live: bool) -> Result<(), SensorError> {
        let mut state: Array<&mut MapData, u32> = self.named_map("GUARD_STATE")?;
        state
            .set(HOOKS_LIVE, u32::from(live), 0)
            .map_err(map_failed("GUARD_STATE"))
    }

    fn held_map(&mut self) -> Result<BpfHashMap<&mut MapData, u32, u32>, SensorError> {
        self.named_map("HOOK_HELD")
    }

    /// The processes the kernel holds until the system call hooks are attached.
    pub fn held(&mut self) -> Result<Vec<u32>, SensorError> {
        Ok(self.held_map()?.keys().filter_map(Result::ok).collect())
    }

    /// Continues every held process (also when the guard stops: nobody will attach the hooks
    /// for them any more, and a build must not hang).
    pub fn release_held(&mut self) -> Result<usize, SensorError> {
        let mut map = self.held_map()?;
        let pids: Vec<u32> = map.keys().filter_map(Result::ok).collect();
        for pid in &pids {
            // Removed first: the kernel forgets a held process at its exit, so a pid still here
            // is the stopped process itself, not a reuse.
            let _ = map.remove(pid);
            // SAFETY: kill(2) with a pid and a signal number; a stale pid fails harmlessly.
            unsafe { libc::kill(*pid as i32, libc::SIGCONT) };
        }
        Ok(pids.len())
    }
}
