//! When the guard's system call hooks are attached (see `sensor::Sensor::wake`): at once when
//! something tracked needs them, and detached again once nothing has for `idle_after`, so that
//! a machine with no build running pays nothing per system call (BENCHMARKS.md, guard section).
use std::time::{Duration, Instant};

use crate::sensor::Sensor;

/// How often, while the hooks are attached, the tracked set is looked at for idleness.
const IDLE_SCAN: Duration = Duration::from_secs(1);

/// The hooks' state over time.
pub struct Dormancy {
    idle_after: Duration,
    idle_since: Option<Instant>,
    last_scan: Option<Instant>,
    /// Times the hooks were attached for a build, and detached after one.
    pub wakes: u64,
    pub sleeps: u64,
}

/// What changed at an update (for the journal).
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// Attached; this many held processes were continued.
    Woke(usize),
    Slept,
}

impl Dormancy {
    /// Hooks detached after `idle_after` with nothing that needs them.
    pub fn new(idle_after: Duration) -> Self {
        Self {
            idle_after,
            idle_since: None,
            last_scan: None,
            wakes: 0,
            sleeps: 0,
        }
    }

    /// Called before the guard handles events and on every turn of its loop. An error means
    /// the hooks could not be attached: builds would run unwatched, and the guard stops.
    pub fn update(&mut self, sensor: &mut Sensor) -> Result<Change, String> {
        if !sensor.syscall_hooks_live() {
            // Dormant: cheap (the tracked set is small while no build runs), and looked at
            // every time, since a held process waits for it.
            if !sensor.syscall_hooks_wanted().map_err(|e| e.to_string())? {
                return Ok(Change::None);
            }
            let released = sensor
                .wake()
                .map_err(|e| format!("cannot attach the system call hooks: {e}"))?;
            self.wakes += 1;
            self.idle_since = None;
            return Ok(Change::Woke(released));
        }
        // Live. A process held in the meantime (the kernel saw the flag before it was set
        // again) is continued at once.
        sensor.release_held().map_err(|e| e.to_string())?;
        if self.last_scan.is_some_and(|t| t.elapsed() < IDLE_SCAN) {
            return Ok(Change::None);
        }
        self.last_scan = Some(Instant::now());
        if sensor.syscall_hooks_wanted().map_err(|e| e.to_string())? {
            self.idle_since = None;
            return Ok(Change::None);
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.idle_after {
            return Ok(Change::None);
        }
        if sensor.sleep().map_err(|e| e.to_string())? {
            self.sleeps += 1;
            self.idle_since = None;
            return Ok(Change::Slept);
        }
        Ok(Change::None)
    }
}
