//! The process table: every process of the watched tree, with its parent as recorded at fork.
use std::collections::HashMap;

use crate::event::{CargoEnv, Event, EventKind};

/// What is known of one process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Parent process id, recorded at fork (0 for the watched command).
    pub ppid: u32,
    /// Current image (absolute path when known), empty before the first exec seen.
    pub image: String,
    /// argv of the current image.
    pub argv: Vec<String>,
    /// Cargo variables of the current image's environment.
    pub cargo: CargoEnv,
    /// The comm last seen.
    pub comm: String,
    /// The process has exited.
    pub exited: bool,
}

impl Process {
    /// The image's file name (`cc`, `build-script-build`), or the comm before any exec.
    pub fn image_name(&self) -> &str {
        if self.image.is_empty() {
            &self.comm
        } else {
            self.image.rsplit('/').next().unwrap_or(&self.image)
        }
    }
}

/// All processes seen, by pid. A pid that is reused after its process exited starts a new entry.
#[derive(Debug, Default)]
pub struct ProcessTable {
    processes: HashMap<u32, Process>,
}

impl ProcessTable {
    /// Updates the table with one event.
    pub fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::Fork(fork) => {
                let parent = self.processes.get(&event.pid);
                let child = Process {
                    pid: fork.child_pid,
                    ppid: event.pid,
                    // A forked child runs its parent's image until it execs.
                    image: parent.map(|p| p.image.clone()).unwrap_or_default(),
                    argv: parent.map(|p| p.argv.clone()).unwrap_or_default(),
                    cargo: parent.map(|p| p.cargo.clone()).unwrap_or_default(),
                    comm: event.comm.clone(),
                    exited: false,
                };
                self.processes.insert(fork.child_pid, child);
            }
            EventKind::Exec(exec) => {
                let p = self.entry(event);
                p.image = exec.image().to_owned();
                p.argv = exec.argv.clone();
                p.cargo = exec.cargo.clone();
                p.comm = event.comm.clone();
            }
            EventKind::Exit(_) => {
                self.entry(event).exited = true;
            }
            EventKind::Lost(_) => {}
            EventKind::Open(_) | EventKind::Connect(_) => {
                self.entry(event);
            }
        }
    }

    fn entry(&mut self, event: &Event) -> &mut Process {
        let process = self.processes.entry(event.pid).or_insert_with(|| Process {
            pid: event.pid,
            ppid: event.ppid,
            comm: event.comm.clone(),
            ..Process::default()
        });
        if process.exited && !matches!(event.kind, EventKind::Exit(_)) {
            // The pid was reused by a process we did not see fork (should not happen inside the
            // tree, where every fork is recorded): start afresh.
            *process = Process {
                pid: event.pid,
                ppid: event.ppid,
                comm: event.comm.clone(),
                ..Process::default()
            };
        }
        process
    }

    /// The process with this pid.
    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }

    /// All processes.
    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    /// Processes that have not exited.
    pub fn alive(&self) -> impl Iterator<Item = &Process> {
        self.processes.values().filter(|p| !p.exited)
    }
}
