//! The builds a guard is watching, each with a pipeline of its own (attribution, policy: the
//! same stages as every other command), keyed by its root process. Events are routed by pid:
//! a build root's exec opens a build, fork hands the child to the parent's build, exit closes
//! the process (and, for the root, starts the end of the build).
//!
//! rust-analyzer lives as long as the editor, so each `cargo` it starts (`cargo check` on save,
//! the build scripts of a newly opened project) is a build of its own, reported when it ends.
use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use super::workspace::{self, Workspace};
use crate::{
    model::{Event, EventKind, Exec, Exit},
    pipeline::{Pipeline, PipelineOptions, RunReport},
};

/// After a root exits, how long to wait for records still being committed on other CPUs.
const SETTLE: Duration = Duration::from_millis(50);

/// Images whose process lives as long as an editor session: what they start is reported build
/// by build.
const SESSIONS: &[&str] = &["rust-analyzer"];

/// One build being watched.
pub struct Build {
    /// Its root process.
    pub root: u32,
    /// The root's command line.
    pub command: Vec<String>,
    /// The root's working directory.
    pub cwd: Option<String>,
    /// The uid the root runs as (None: it exited before it could be read).
    pub uid: Option<u32>,
    /// Its workspace (profiles, policy).
    pub workspace: Workspace,
    /// When it started.
    pub started: SystemTime,
    /// When its root exited.
    root_exited: Option<Instant>,
    /// How its root exited.
    root_exit: Option<Exit>,
    /// Whether the root is a long-lived session (rust-analyzer).
    session: bool,
    pipeline: Pipeline,
}

impl Build {
    /// Findings so far.
    pub fn finding_count(&self) -> usize {
        self.pipeline.findings().len()
    }

    /// Its pipeline (attribution, findings so far).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}

/// A build that ended, with what it amounted to.
pub struct Ended {
    /// The build's facts.
    pub root: u32,
    /// The root's command line.
    pub command: Vec<String>,
    /// Its working directory.
    pub cwd: Option<String>,
    /// Its user.
    pub uid: Option<u32>,
    /// Its workspace root.
    pub workspace: Option<PathBuf>,
    /// Problems with the workspace's files.
    pub problems: Vec<String>,
    /// When it started.
    pub started: SystemTime,
    /// The guard stopped before the build ended.
    pub unfinished: bool,
    /// How its root exited (None: unfinished, or its exit was not seen).
    pub exit: Option<Exit>,
    /// What it amounted to.
    pub report: RunReport,
}

/// Every build being watched, and which build each process belongs to.
#[derive(Default)]
pub struct Builds {
    builds: HashMap<u32, Build>,
    owner: HashMap<u32, u32>,
    monitor_pid: u32,
    /// Events of processes that belong to no build (should stay 0).
    pub unrouted: u64,
}

impl Builds {
    /// No builds yet; `monitor_pid` is the guard's own pid (reaches for it are findings).
    pub fn new(monitor_pid: u32) -> Self {
        Self {
            monitor_pid,
            ..Self::default()
        }
    }

    /// The builds being watched.
    pub fn active(&self) -> impl Iterator<Item = &Build> {
        self.builds.values()
    }

    /// The build process `pid` belongs to (its root or any other of its processes).
    pub fn build_of(&self, pid: u32) -> Option<&Build> {
        self.owner.get(&pid).and_then(|key| self.builds.get(key))
    }

    /// The build whose root is `root`.
    pub fn get(&self, root: u32) -> Option<&Build> {
        self.builds.get(&root)
    }

    /// Routes `event` to its build (opening one for a new root); returns ended builds (a pid
    /// reused by a new root ends the old build first).
    pub fn process(&mut self, event: Event) -> Vec<Ended> {
        self.process_observed(event, &mut |_, _| {})
    }

    /// [`Self::process`], telling `observe` each event as attributed, with its build after it:
    /// how enforcement and attached views follow a build.
    pub fn process_observed(
        &mut self,
        event: Event,
        observe: &mut dyn FnMut(&Event, &Build),
    ) -> Vec<Ended> {
        let mut ended = Vec::new();
        if let EventKind::Exec(exec) = &event.kind {
            let in_session = self
                .owner
                .get(&event.pid)
                .and_then(|k| self.builds.get(k))
                .is_some_and(|b| b.session && b.root != event.pid);
            if exec.guard_root || (in_session && image_name(exec) == "cargo") {
                if let Some(old) = self.builds.remove(&event.pid) {
                    ended.push(finish(old, true));
                }
                let build = self.open(event.pid, exec);
                self.builds.insert(event.pid, build);
                self.owner.insert(event.pid, event.pid);
            }
        }
        if let EventKind::Fork(fork) = &event.kind
            && let Some(&key) = self.owner.get(&event.pid)
        {
            self.owner.insert(fork.child_pid, key);
        }
        let exit = matches!(event.kind, EventKind::Exit(_));
        let pid = event.pid;
        match self.owner.get(&pid).copied() {
            Some(key) => {
                if let Some(build) = self.builds.get_mut(&key) {
                    let (event, _) = build.pipeline.process_through(event);
                    if exit && key == pid {
                        build.root_exited = Some(Instant::now());
                        if let EventKind::Exit(e) = &event.kind {
                            build.root_exit = Some(e.clone());
                        }
                    }
                    observe(&event, build);
                }
                if exit {
                    self.owner.remove(&pid);
                }
            }
            // Losses are the machine's, not one build's: every build is told.
            None if matches!(event.kind, EventKind::Lost(_)) => {
                for build in self.builds.values_mut() {
                    let (event, _) = build.pipeline.process_through(event.clone());
                    observe(&event, build);
                }
            }
            None => self.unrouted += 1,
        }
        ended
    }

    fn open(&self, root: u32, exec: &Exec) -> Build {
        let dir = workspace::start_dir(exec);
        let workspace = Workspace::for_dir(dir.as_deref());
        let uid = read_uid(root);
        let home = uid.and_then(home_of);
        let mut policy = workspace.policy.clone();
        policy.monitor_pid = Some(self.monitor_pid);
        // The policy and profiles are the workspace's: a pipeline with no file output cannot
        // fail to be made.
        let mut pipeline = Pipeline::new(PipelineOptions {
            events: None,
            profiles: workspace.profiles.clone(),
            policy,
            learn: false,
            // No hashing thread per build: the guard's log carries findings, not the images
            // (documented in docs/guard.md).
            digests: false,
        })
        .unwrap_or_else(|_| unreachable!("no events file to create"));
        pipeline.set_context(workspace.context(exec, home.as_deref()));
        Build {
            root,
            command: exec.argv.clone(),
            cwd: exec.cwd.clone(),
            uid,
            workspace,
            started: SystemTime::now(),
            root_exited: None,
            root_exit: None,
            session: SESSIONS.contains(&image_name(exec)),
            pipeline,
        }
    }

    /// Ends the builds whose root has exited and whose processes have all exited, or that have
    /// outlived their root by `grace`; their leftovers are reported (and returned, to be
    /// untracked: they are no build's any more).
    pub fn tick(&mut self, grace: Duration) -> (Vec<Ended>, Vec<u32>) {
        let mut done = Vec::new();
        let mut leftovers = Vec::new();
        for (key, build) in &mut self.builds {
            let Some(at) = build.root_exited else {
                continue;
            };
            if at.elapsed() < SETTLE {
                continue;
            }
            let alive: Vec<u32> = build
                .pipeline
                .attributor()
                .table()
                .alive()
                .map(|p| p.pid)
                .filter(|p| *p != build.root && self.owner.get(p) == Some(key))
                .collect();
            if alive.is_empty() {
                done.push(*key);
            } else if at.elapsed() >= grace {
                build.pipeline.outlived(&alive, &[], None);
                leftovers.extend(alive);
                done.push(*key);
            }
        }
        for pid in &leftovers {
            self.owner.remove(pid);
        }
        let ended = done
            .into_iter()
            .filter_map(|k| self.builds.remove(&k))
            .map(|b| finish(b, false))
            .collect();
        self.owner.retain(|_, k| self.builds.contains_key(k));
        (ended, leftovers)
    }

    /// Ends every build (the guard is stopping): reported as unfinished.
    pub fn finish_all(&mut self) -> Vec<Ended> {
        self.owner.clear();
        self.builds
            .drain()
            .map(|(_, b)| {
                let finished = b.root_exited.is_some();
                finish(b, !finished)
            })
            .collect()
    }
}

fn finish(build: Build, unfinished: bool) -> Ended {
    let mut pipeline = build.pipeline;
    let _ = pipeline.close_events();
    let report = pipeline
        .finish()
        .map(|(report, _)| report)
        .unwrap_or_default();
    Ended {
        root: build.root,
        command: build.command,
        cwd: build.cwd,
        uid: build.uid,
        workspace: build.workspace.root,
        problems: build.workspace.problems,
        started: build.started,
        unfinished,
        exit: build.root_exit,
        report,
    }
}

/// The file name of the image an exec ran.
fn image_name(exec: &Exec) -> &str {
    exec.image().rsplit('/').next().unwrap_or_default()
}

/// The real uid of process `pid`, from /proc.
fn read_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The home directory of `uid`.
pub fn home_of(uid: u32) -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exit, Fork};

    fn event(pid: u32, kind: EventKind) -> Event {
        Event {
            time_ns: 1,
            pid,
            tid: pid,
            ppid: 0,
            comm: String::new(),
            actor: None,
            callers: Vec::new(),
            kind,
        }
    }

    fn exec(path: &str, root: bool) -> EventKind {
        EventKind::Exec(Exec {
            path: path.to_owned(),
            argv: vec![path.to_owned(), "check".to_owned()],
            cwd: Some("/".to_owned()),
            guard_root: root,
            ..Exec::default()
        })
    }

    #[test]
    fn a_build_per_root_ending_with_its_processes() {
        let mut builds = Builds::new(1);
        assert!(
            builds
                .process(event(10, exec("/t/bin/cargo", true)))
                .is_empty()
        );
        builds.process(event(10, EventKind::Fork(Fork { child_pid: 11 })));
        builds.process(event(11, exec("/t/bin/rustc", false)));
        assert!(
            builds
                .process(event(20, exec("/t/bin/cargo", true)))
                .is_empty()
        );
        assert_eq!(builds.active().count(), 2);
        builds.process(event(
            10,
            EventKind::Exit(Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 0,
            }),
        ));
        std::thread::sleep(SETTLE);
        // 11 is still running: the build waits for it.
        let (ended, left) = builds.tick(Duration::from_secs(60));
        assert!(ended.is_empty() && left.is_empty());
        builds.process(event(
            11,
            EventKind::Exit(Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 0,
            }),
        ));
        let (ended, left) = builds.tick(Duration::from_secs(60));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].root, 10);
        assert!(!ended[0].unfinished && left.is_empty());
        // An event of no build is counted, not pinned on one.
        builds.process(event(99, exec("/bin/sh", false)));
        assert_eq!(builds.unrouted, 1);
        let rest = builds.finish_all();
        assert_eq!(rest.len(), 1);
        assert!(rest[0].unfinished);
    }

    #[test]
    fn leftovers_past_the_grace_period_end_the_build_and_are_reported() {
        let mut builds = Builds::new(1);
        builds.process(event(10, exec("/t/bin/cargo", true)));
        builds.process(event(10, EventKind::Fork(Fork { child_pid: 11 })));
        builds.process(event(
            10,
            EventKind::Exit(Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 0,
            }),
        ));
        std::thread::sleep(SETTLE);
        let (ended, left) = builds.tick(Duration::ZERO);
        assert_eq!(left, vec![11]);
        assert_eq!(ended.len(), 1);
        assert!(
            ended[0]
                .report
                .findings
                .iter()
                .any(|f| f.detail.contains("process 11")),
            "{:?}",
            ended[0].report.findings
        );
    }

    #[test]
    fn each_cargo_an_editor_session_starts_is_a_build() {
        let mut builds = Builds::new(1);
        builds.process(event(5, exec("/t/bin/rust-analyzer", true)));
        builds.process(event(5, EventKind::Fork(Fork { child_pid: 6 })));
        builds.process(event(6, exec("/t/bin/cargo", false)));
        builds.process(event(6, EventKind::Fork(Fork { child_pid: 7 })));
        assert_eq!(builds.active().count(), 2);
        builds.process(event(
            7,
            EventKind::Exit(Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 0,
            }),
        ));
        builds.process(event(
            6,
            EventKind::Exit(Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 0,
            }),
        ));
        std::thread::sleep(SETTLE);
        let (ended, _) = builds.tick(Duration::from_secs(60));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].root, 6);
        assert_eq!(ended[0].command, ["/t/bin/cargo", "check"]);
        assert_eq!(builds.active().count(), 1, "the session goes on");
    }
}
