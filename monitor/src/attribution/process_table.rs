//! The process table: every process of the watched tree, its parent as recorded at fork, its
//! image, and what it is in the build.
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::rustc::RustcInfo;
use crate::model::{Actor, CrateRef, Exec};

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
    /// `OUT_DIR` and `CARGO_MANIFEST_DIR` of the current image, as the kernel writes the paths
    /// below them (see [`Exec::dir_var`]): worked out once at exec, since the policy asks
    /// for them on every event the process makes.
    pub dirs: ProcDirs,
    /// The comm last seen.
    pub comm: String,
    /// The process has exited.
    pub exited: bool,
    /// What it is in the build.
    pub kind: ProcKind,
}

/// The crate directories cargo gave a process in its environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcDirs {
    /// `OUT_DIR`.
    pub out_dir: Option<String>,
    /// `CARGO_MANIFEST_DIR`.
    pub manifest_dir: Option<String>,
}

impl ProcDirs {
    /// The directories `exec`'s environment names ([`Exec::dir_var`]).
    pub fn of(exec: &Exec) -> Self {
        Self {
            out_dir: exec.dir_var("OUT_DIR"),
            manifest_dir: exec.dir_var("CARGO_MANIFEST_DIR"),
        }
    }
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
            dirs: ProcDirs::default(),
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
    /// Exited processes, in the order their exits were seen (oldest first): what pruning
    /// forgets first. May hold pids since reused or already forgotten.
    exits: VecDeque<u32>,
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

    /// Marks a process exited (created if unseen), remembering the order of exits.
    pub fn mark_exited(&mut self, pid: u32, ppid: u32, comm: &str) -> &mut Process {
        self.exits.push_back(pid);
        let p = self.entry(pid, ppid, comm);
        p.exited = true;
        p
    }

    /// Exits remembered (an upper bound on the exited processes kept).
    pub fn exits_recorded(&self) -> usize {
        self.exits.len()
    }

    /// Forgets the exited processes whose exits came earliest, keeping the `keep` most recent
    /// exits, so that a long build does not grow the table without bound. Kept whatever their
    /// age: processes still running (their exit is still to come) and the exited parents of
    /// processes still running (a child's ancestry stays whole); processes that exited late
    /// (leftovers the run still reports on) are among the most recent.
    pub fn prune_exited(&mut self, keep: usize) {
        if self.exits.len() <= keep {
            return;
        }
        let parents: HashSet<u32> = self.alive().map(|p| p.ppid).collect();
        let mut kept = VecDeque::new();
        while self.exits.len() > keep {
            let Some(pid) = self.exits.pop_front() else {
                break;
            };
            match self.processes.get(&pid) {
                // Reused by a live process, or already forgotten: nothing to do.
                Some(p) if !p.exited => {}
                None => {}
                Some(_) if parents.contains(&pid) => kept.push_back(pid),
                Some(_) => {
                    self.processes.remove(&pid);
                }
            }
        }
        // Parents still needed go back at the front: the oldest, looked at again next time.
        while let Some(pid) = kept.pop_back() {
            self.exits.push_front(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, ppid: u32) -> Process {
        Process::unknown(pid, ppid, "x")
    }

    #[test]
    fn pruning_keeps_the_living_their_parents_and_recent_exits() {
        let mut t = ProcessTable::default();
        t.insert(process(1, 0));
        t.insert(process(2, 1));
        t.insert(process(3, 2));
        t.mark_exited(2, 1, "x"); // exited first, but 3 (alive) is its child
        for pid in 10..20 {
            t.insert(process(pid, 1));
            t.mark_exited(pid, 1, "x");
        }
        // A pid reused by a live process after its first life exited.
        t.insert(process(10, 1));
        t.prune_exited(3);
        let mut left: Vec<u32> = t.iter().map(|p| p.pid).collect();
        left.sort_unstable();
        assert_eq!(left, [1, 2, 3, 10, 17, 18, 19]);
        // Once the child has exited too, its parent can go.
        t.mark_exited(3, 2, "x");
        t.prune_exited(3);
        let mut left: Vec<u32> = t.iter().map(|p| p.pid).collect();
        left.sort_unstable();
        assert_eq!(left, [1, 3, 10, 18, 19]);
    }
}
