//! What the view knows about the build, folded from attributed events: per crate (and role) what
//! its build script or proc-macro did, and the build's progress. Bounded: counters and capped
//! maps, never every event.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::{
    attribution::{Actor, CrateRef, Role},
    model::{Event, EventKind, shown},
};

/// Most processes kept per crate.
const MAX_PROCS: usize = 256;
/// Most files kept per crate.
const MAX_FILES: usize = 1024;
/// Most programs or endpoints kept per crate.
const MAX_ITEMS: usize = 128;
/// Most pid → image entries kept for live processes (a build has far fewer at a time).
const MAX_IMAGES: usize = 65_536;

/// A crate in the role whose profile section applies (`build-script` or `proc-macro`).
pub type CrateKey = (CrateRef, Role);

/// One process of a crate's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcNode {
    /// Process id.
    pub pid: u32,
    /// Parent, as recorded at fork.
    pub ppid: u32,
    /// Image file name (`build-script-build`, `sh`, `cc`, `rustc`).
    pub name: String,
    /// Its arguments after argv[0], shortened.
    pub args: String,
    /// For a proc-macro's rustc: the crate being compiled.
    pub compiling: Option<String>,
    /// How it ended (`exit 0`, `signal 9`), None while running.
    pub exit: Option<String>,
}

/// How a file was used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileUse {
    /// Opened for reading.
    pub read: bool,
    /// Opened for writing (or created).
    pub write: bool,
}

/// A network endpoint reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointUse {
    /// connect() calls.
    pub count: u64,
    /// The last result's error name (None: connected, or in progress).
    pub error: Option<String>,
}

/// What one crate's build script or proc-macro (and everything it ran) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrateView {
    /// Programs executed.
    pub execs: u64,
    /// Files opened for reading.
    pub reads: u64,
    /// Files opened for writing.
    pub writes: u64,
    /// connect() calls.
    pub network: u64,
    /// Opens that failed.
    pub failed_opens: u64,
    /// Some events could be any of several proc-macros.
    pub ambiguous: bool,
    /// Processes, by pid.
    pub procs: BTreeMap<u32, ProcNode>,
    /// Programs run (image path → times).
    pub programs: BTreeMap<String, u64>,
    /// Files opened successfully, by directory then file name.
    pub files: BTreeMap<String, BTreeMap<String, FileUse>>,
    /// Endpoints reached.
    pub endpoints: BTreeMap<String, EndpointUse>,
    /// Items left out because a map was full.
    pub omitted: u64,
    file_count: usize,
}

impl CrateView {
    fn record(&mut self, event: &Event, actor: &Actor, images: &HashMap<u32, (String, String)>) {
        self.ambiguous |= !actor.exact;
        let mut omitted = 0;
        let node = |pid: u32, ppid: u32| {
            let (name, args) = images
                .get(&pid)
                .cloned()
                .unwrap_or_else(|| (shown(&event.comm).into_owned(), String::new()));
            ProcNode {
                pid,
                ppid,
                name,
                args,
                compiling: None,
                exit: None,
            }
        };
        if !self.procs.contains_key(&event.pid) {
            if self.procs.len() < MAX_PROCS {
                let mut n = node(event.pid, event.ppid);
                if actor.role == Role::ProcMacro {
                    n.compiling = actor.compiling.as_ref().map(|c| c.name.clone());
                }
                self.procs.insert(event.pid, n);
            } else {
                omitted += 1;
            }
        }
        match &event.kind {
            EventKind::Fork(fork) => {
                if self.procs.len() < MAX_PROCS {
                    let mut child = node(event.pid, event.pid);
                    child.pid = fork.child_pid;
                    self.procs.insert(fork.child_pid, child);
                } else {
                    omitted += 1;
                }
            }
            EventKind::Exec(exec) => {
                self.execs += 1;
                let image = shown(exec.image()).into_owned();
                if let Some(n) = self.procs.get_mut(&event.pid) {
                    n.name = file_name(&image).to_owned();
                    n.args = short_args(&exec.argv);
                }
                if let Some(count) = self.programs.get_mut(&image) {
                    *count += 1;
                } else if self.programs.len() < MAX_ITEMS {
                    self.programs.insert(image, 1);
                } else {
                    omitted += 1;
                }
            }
            EventKind::Exit(exit) => {
                // Failed reads the kernel counted instead of sending (model::Exit).
                self.failed_opens += u64::from(exit.quiet_failed_reads);
                if let Some(n) = self.procs.get_mut(&event.pid) {
                    n.exit = Some(match (exit.code, exit.signal) {
                        (_, Some(sig)) => format!("signal {sig}"),
                        (Some(code), None) => format!("exit {code}"),
                        (None, None) => "exited".to_owned(),
                    });
                }
            }
            EventKind::Open(open) if open.result < 0 => self.failed_opens += 1,
            EventKind::Open(open) => {
                if open.writes() {
                    self.writes += 1;
                } else {
                    self.reads += 1;
                }
                let path = shown(&open.path);
                let (dir, name) = split_path(&path);
                let known = self
                    .files
                    .get(dir)
                    .is_some_and(|files| files.contains_key(name));
                if known || self.file_count < MAX_FILES {
                    let entry = self
                        .files
                        .entry(dir.to_owned())
                        .or_default()
                        .entry(name.to_owned())
                        .or_default();
                    if !known {
                        self.file_count += 1;
                    }
                    if open.writes() {
                        entry.write = true;
                    } else {
                        entry.read = true;
                    }
                } else {
                    omitted += 1;
                }
            }
            EventKind::Connect(c) => {
                self.network += 1;
                let ep = shown(&c.endpoint()).into_owned();
                let error = if c.result < 0 && c.error.as_deref() != Some("EINPROGRESS") {
                    Some(c.error.clone().unwrap_or_else(|| c.result.to_string()))
                } else {
                    None
                };
                if let Some(e) = self.endpoints.get_mut(&ep) {
                    e.count += 1;
                    e.error = error;
                } else if self.endpoints.len() < MAX_ITEMS {
                    self.endpoints.insert(ep, EndpointUse { count: 1, error });
                } else {
                    omitted += 1;
                }
            }
            EventKind::Dns(d) => {
                self.network += 1;
                let ep = shown(&format!("dns:{} ({}:{})", d.name, d.server, d.port)).into_owned();
                if let Some(e) = self.endpoints.get_mut(&ep) {
                    e.count += 1;
                } else if self.endpoints.len() < MAX_ITEMS {
                    self.endpoints.insert(
                        ep,
                        EndpointUse {
                            count: 1,
                            error: None,
                        },
                    );
                } else {
                    omitted += 1;
                }
            }
            EventKind::Lost(_)
            | EventKind::MacroLib(_)
            | EventKind::Tamper(_)
            | EventKind::IoUring(_)
            | EventKind::CompatSyscall(_)
            | EventKind::Socket(_)
            | EventKind::Killed(_) => {}
        }
        self.omitted += omitted;
    }

    /// The process tree: (depth, node), parents before their children, roots in pid order.
    pub fn tree(&self) -> Vec<(usize, &ProcNode)> {
        let mut children: BTreeMap<u32, Vec<&ProcNode>> = BTreeMap::new();
        let mut roots = Vec::new();
        for n in self.procs.values() {
            if n.ppid != n.pid && self.procs.contains_key(&n.ppid) {
                children.entry(n.ppid).or_default().push(n);
            } else {
                roots.push(n);
            }
        }
        let mut out = Vec::new();
        let mut stack: Vec<(usize, &ProcNode)> = roots.into_iter().rev().map(|n| (0, n)).collect();
        let mut seen = BTreeSet::new();
        while let Some((depth, n)) = stack.pop() {
            if !seen.insert(n.pid) {
                continue;
            }
            out.push((depth, n));
            if let Some(kids) = children.get(&n.pid) {
                stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
            }
        }
        out
    }
}

/// Build progress, counted from the processes' own events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// rustc processes compiling a crate that have exited.
    pub rustc_done: u64,
    /// rustc processes compiling a crate, running now.
    pub rustc_running: BTreeSet<u32>,
    /// Build script processes that have exited.
    pub build_scripts_done: u64,
    /// Build script processes running now.
    pub build_scripts_running: BTreeSet<u32>,
    /// Distinct proc-macro crates seen at work.
    pub proc_macros: BTreeSet<CrateRef>,
}

/// Everything the view folds from the event stream.
#[derive(Clone, Debug, Default)]
pub struct BuildModel {
    /// Per crate and role.
    pub crates: BTreeMap<CrateKey, CrateView>,
    /// Progress counters.
    pub progress: Progress,
    /// Events seen.
    pub events: u64,
    /// Records the sensor lost (from `lost` events).
    pub lost: u64,
    /// Time of the first event (ns since the epoch).
    pub first_ns: Option<u64>,
    /// pid → (image file name, shortened args), for processes alive.
    images: HashMap<u32, (String, String)>,
}

impl BuildModel {
    /// Folds one attributed event in.
    pub fn record(&mut self, event: &Event) {
        self.events += 1;
        self.first_ns.get_or_insert(event.time_ns);
        match &event.kind {
            EventKind::Lost(lost) => self.lost += lost.count,
            EventKind::Exec(exec) if self.images.len() < MAX_IMAGES => {
                self.images.insert(
                    event.pid,
                    (
                        shown(file_name(exec.image())).into_owned(),
                        short_args(&exec.argv),
                    ),
                );
            }
            EventKind::Fork(fork) if self.images.len() < MAX_IMAGES => {
                let parent = self
                    .images
                    .get(&event.pid)
                    .cloned()
                    .unwrap_or_else(|| (shown(&event.comm).into_owned(), String::new()));
                self.images.insert(fork.child_pid, parent);
            }
            _ => {}
        }
        if let Some(actor) = &event.actor {
            self.progress(event, actor);
            let role = actor.policy_role();
            if matches!(role, Role::BuildScript | Role::ProcMacro)
                && let Some(krate) = actor.crate_ref()
            {
                self.crates
                    .entry((krate, role))
                    .or_default()
                    .record(event, actor, &self.images);
            }
        }
        if matches!(event.kind, EventKind::Exit(_)) {
            self.images.remove(&event.pid);
        }
    }

    fn progress(&mut self, event: &Event, actor: &Actor) {
        let p = &mut self.progress;
        match event.kind {
            // The last thread to exit may have another comm than the process's main thread.
            EventKind::Exit(_) => {
                if p.rustc_running.remove(&event.pid) {
                    p.rustc_done += 1;
                }
                if p.build_scripts_running.remove(&event.pid) || actor.role == Role::BuildScript {
                    p.build_scripts_done += 1;
                }
                return;
            }
            // An exec event belongs to the image before it (cargo's child becoming rustc): the
            // process is counted from its first event as what it became.
            EventKind::Exec(_) => return,
            _ => {}
        }
        match actor.role {
            Role::Rustc if actor.krate.is_some() && event.comm == "rustc" => {
                p.rustc_running.insert(event.pid);
            }
            Role::BuildScript => {
                p.build_scripts_running.insert(event.pid);
            }
            Role::ProcMacro => {
                if let Some(k) = actor.crate_ref() {
                    p.proc_macros.insert(k);
                }
            }
            _ => {}
        }
    }
}

/// The file name of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// (directory, file name); the directory of `/x` is `/`.
fn split_path(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("", path),
    }
}

/// argv after argv[0], joined and shortened.
fn short_args(argv: &[String]) -> String {
    let joined = argv.iter().skip(1).cloned().collect::<Vec<_>>().join(" ");
    shorten(&shown(&joined), 60)
}

/// `s` cut to `max` characters, with `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
