//! The process table: every process of the watched tree, its parent as recorded at fork, its
//! image, and what it is in the build.
use std::collections::{BTreeMap, HashMap};

use super::rustc::RustcInfo;
use crate::model::{Actor, CrateRef};

/// What a process is in the build. Decided at each exec from the new image and from what the
/// process was before (a build script's descendants stay tools of its crate whatever they run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcKind {
    /// The watched command, or a process outside cargo's roles.
    Command,
    /// cargo (or a cargo subcommand, or a program cargo runs for itself such as git).
    Cargo,
    /// rustc compiling a crate; proc-macros run inside it.
    Rustc(Box<RustcInfo>),
    /// The linker (and its helpers) a rustc runs: rustc's own work, judged by rustc's rules.
    Linker(Box<RustcInfo>),
    /// A crate's build script.
    BuildScript(CrateRef),
    /// A program run by a build script or a proc-macro (directly or not), acting for its crate.
    /// The actor is ready-made: every event of the process gets it.
    Tool(Box<Actor>),
}

/// What is known of one process.
#[derive(Clone, Debug, PartialEq)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Parent process id, recorded at fork (0 for the watched command).
    pub ppid: u32,
    /// Current image (absolute path when known), empty before the first exec seen.
    pub image: String,
    /// argv of the current image.
    pub argv: Vec<String>,
    /// Kept environment variables of the current image.
    pub env: BTreeMap<String, String>,
    /// Working directory at the last exec.
    pub cwd: Option<String>,
    /// The comm last seen.
    pub comm: String,
    /// The process has exited.
    pub exited: bool,
    /// What it is in the build.
    pub kind: ProcKind,
}

impl Process {
    /// A process first seen doing something (no fork or exec seen).
    pub fn unknown(pid: u32, ppid: u32, comm: &str) -> Self {
        Self {
            pid,
            ppid,
            image: String::new(),
            argv: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            comm: comm.to_owned(),
            exited: false,
            kind: ProcKind::Command,
        }
    }

    /// The image's file name (`cc`, `build-script-build`), or the comm before any exec.
    pub fn image_name(&self) -> &str {
        if self.image.is_empty() {
            &self.comm
        } else {
            self.image.rsplit('/').next().unwrap_or(&self.image)
        }
    }
}

/// All processes seen, by pid. A fork replaces any older entry with the same pid (pid reuse).
#[derive(Debug, Default)]
pub struct ProcessTable {
    processes: HashMap<u32, Process>,
}

impl ProcessTable {
    /// The process with this pid.
    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }

    /// The process with this pid, mutably.
    pub fn get_mut(&mut self, pid: u32) -> Option<&mut Process> {
        self.processes.get_mut(&pid)
    }

    /// The process with this pid, created if unseen.
    pub fn entry(&mut self, pid: u32, ppid: u32, comm: &str) -> &mut Process {
        self.processes
            .entry(pid)
            .or_insert_with(|| Process::unknown(pid, ppid, comm))
    }

    /// Records a new process (replacing a dead one with the same pid).
    pub fn insert(&mut self, process: Process) {
        self.processes.insert(process.pid, process);
    }

    /// All processes.
    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    /// Processes that have not exited.
    pub fn alive(&self) -> impl Iterator<Item = &Process> {
        self.processes.values().filter(|p| !p.exited)
    }

    /// Number of processes known.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// No process known.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// Forgets exited processes beyond the most recent `keep`, to bound memory on long runs.
    pub fn prune_exited(&mut self, keep: usize) {
        let exited = self.processes.values().filter(|p| p.exited).count();
        if exited <= keep {
            return;
        }
        let mut dead: Vec<u32> = self
            .processes
            .values()
            .filter(|p| p.exited)
            .map(|p| p.pid)
            .collect();
        dead.sort_unstable();
        for pid in dead.into_iter().take(exited - keep) {
            self.processes.remove(&pid);
        }
    }
}
