//! Attribution: which crate, which version, build script or proc-macro, is behind each event.
//!
//! Pure: consumes decoded events in order and keeps a process table; no aya, no I/O.
mod actor;
mod process_table;

pub use actor::{Actor, Role};
pub use process_table::{Process, ProcessTable};

use crate::event::Event;

/// Labels events with their actor, keeping the process table up to date.
#[derive(Debug, Default)]
pub struct Attributor {
    table: ProcessTable,
}

impl Attributor {
    /// An attributor with an empty process table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Updates the process table with `event` and fills in its `ppid` (and, once attribution
    /// knows, its actor).
    pub fn process(&mut self, event: &mut Event) {
        self.table.apply(event);
        if let Some(process) = self.table.get(event.pid)
            && event.ppid == 0
        {
            event.ppid = process.ppid;
        }
    }

    /// The process table.
    pub fn table(&self) -> &ProcessTable {
        &self.table
    }
}
