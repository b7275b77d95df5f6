//! Attribution: which crate, which version, build script or proc-macro, is behind each event.
//!
//! Pure: consumes decoded events in order and keeps a process table; no aya, no I/O. The same
//! code serves live runs and `replay`.
//!
//! - cargo runs rustc and build scripts; a build script is recognised by its binary
//!   (`<target>/<profile>/build/<pkg>-<hash>/build-script-*`) and cargo's variables
//!   (`CARGO_PKG_NAME`, `CARGO_PKG_VERSION`) in its environment;
//! - everything a build script runs, directly or through shells, double forks and exec chains,
//!   is a `tool` acting for the build script's crate (the parent is recorded at fork, so
//!   re-parenting changes nothing);
//! - in a rustc process, what rustc itself never does (network, running anything but its linker,
//!   reading outside the sysroot, sources, registry and target directory, writing outside the
//!   target directory) is done by the proc-macros that rustc loaded: the exact one when only one
//!   is loaded, otherwise every candidate, most likely first.
mod context;
pub mod directives;
mod injected;
mod places;
mod proc_macro;
mod process_table;
mod rustc;
mod writes;

use std::collections::{BTreeSet, HashMap};

/// The actor types attribution fills in (defined in the model every stage shares).
pub use crate::model::{Actor, CrateRef, Role};
pub use context::{BuildContext, PackageFact};
pub use directives::{Directed, Directive};
pub use places::CrateDirs;
pub use process_table::{ProcDirs, ProcKind, Process, ProcessTable};
pub use rustc::{Extern, RustcInfo};
pub use writes::{WriteTable, Writer, is_toolchain_program};

use crate::model::{Event, EventKind, Exec, paths};

/// How many exited processes the table keeps (the most recent exits): enough for the leftovers
/// of a build and for every late look-up of a process that just exited; a build runs far more
/// processes than that (every compiler and linker invocation).
pub const KEEP_EXITED: usize = 4096;

/// Labels events with their actor, keeping the process table up to date.
#[derive(Debug, Default)]
pub struct Attributor {
    table: ProcessTable,
    context: BuildContext,
    /// Proc-macro libraries built during this run: library path → (crate, its sources).
    proc_macro_libs: HashMap<String, (CrateRef, Option<String>)>,
    /// The workspace root as inferred from the events (cargo runs rustc for workspace members
    /// from there), when the context does not say.
    inferred_workspace: Option<String>,
    /// CARGO_HOME as seen in an environment, when the context does not say.
    inferred_cargo_home: Option<String>,
    /// Where each crate instance's sources and OUT_DIR are.
    crate_dirs: HashMap<CrateRef, CrateDirs>,
    /// Every build script that ran and proc-macro that was loaded.
    seen: BTreeSet<(CrateRef, Role)>,
    /// rustc's sysroot, HOME, TMPDIR and the target directory, as seen in the run.
    sysroot: Option<String>,
    home: Option<String>,
    tmpdir: Option<String>,
    target_dir: Option<String>,
    /// The last writer of every file the crates' code wrote.
    writes: WriteTable,
    /// Which crate emitted each library search directory rustc received.
    search_owners: directives::SearchOwners,
    /// The user's RUSTFLAGS, as cargo gave them to build scripts.
    rustflags: Option<Vec<String>>,
}

impl Attributor {
    /// An attributor with an empty process table and no workspace facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Supplies workspace facts (from `cargo metadata`); may arrive after events started.
    pub fn set_context(&mut self, context: BuildContext) {
        self.context = context;
    }

    /// The workspace facts in use.
    pub fn context(&self) -> &BuildContext {
        &self.context
    }

    /// The process table.
    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    /// Bounds memory on long runs: forgets the exited processes whose exits came earliest,
    /// keeping the `keep_exited` most recent (see [`ProcessTable::prune_exited`]).
    pub fn prune(&mut self, keep_exited: usize) {
        self.table.prune_exited(keep_exited);
    }

    /// The workspace root: from the context, else inferred.
    pub fn workspace_root(&self) -> Option<&str> {
        self.context
            .workspace_root
            .as_deref()
            .or(self.inferred_workspace.as_deref())
    }

    /// CARGO_HOME: from the context, else seen in an environment.
    pub fn cargo_home(&self) -> Option<&str> {
        self.context
            .cargo_home
            .as_deref()
            .or(self.inferred_cargo_home.as_deref())
    }

    /// Who answers for what process `pid` does now.
    pub fn actor_of_pid(&self, pid: u32) -> Option<Actor> {
        let p = self.table.get(pid)?;
        let probe = Event {
            time_ns: 0,
            pid,
            tid: pid,
            ppid: p.ppid,
            comm: p.comm.clone(),
            actor: None,
            callers: Vec::new(),
            kind: EventKind::Exit(crate::model::Exit {
                code: None,
                signal: None,
                quiet_failed_reads: 0,
            }),
        };
        Some(self.actor_of(p, &probe))
    }

    /// Whether process `pid` acts for a crate's build script or proc-macro (a build script, or
    /// something it or a proc-macro started).
    pub fn acts_for_crate(&self, pid: u32) -> bool {
        matches!(
            self.table.get(pid).map(|p| &p.kind),
            Some(ProcKind::BuildScript(_) | ProcKind::Tool(_))
        )
    }

    /// Every build script that ran and proc-macro that rustc loaded, with its role.
    pub fn seen(&self) -> &BTreeSet<(CrateRef, Role)> {
        &self.seen
    }

    /// Updates the process table with `event`, and fills in its `ppid` and `actor`.
    pub fn process(&mut self, event: &mut Event) {
        let actor = match &event.kind {
            EventKind::Lost(_) => None,
            EventKind::MacroLib(lib) => {
                let is_macro = self.note_proc_macro_load(event.pid, &lib.path, true);
                let krate = self.macro_crate(&lib.path);
                if let Some(ProcKind::Rustc(r)) = self.table.get_mut(event.pid).map(|p| &mut p.kind)
                {
                    r.slots.retain(|(s, _)| *s != lib.slot);
                    // A library that is no proc-macro names no proc-macro when its code is on
                    // the stack.
                    if is_macro {
                        r.slots.push((lib.slot, krate));
                    }
                }
                let p = self.table.entry(event.pid, event.ppid, &event.comm).clone();
                Some(match &p.kind {
                    ProcKind::Rustc(r) => rustc_actor(r),
                    _ => self.actor_of(&p, event),
                })
            }
            EventKind::Fork(fork) => {
                let parent = self.table.entry(event.pid, event.ppid, &event.comm).clone();
                let actor = self.actor_of(&parent, event);
                // Until it execs, the child runs its parent's code; a child a proc-macro asked
                // for acts for that proc-macro.
                let kind = if actor.role == Role::ProcMacro {
                    let mut tool = actor.clone();
                    tool.role = Role::Tool;
                    tool.via = Some(Role::ProcMacro);
                    tool.chain = vec!["rustc".to_owned()];
                    ProcKind::Tool(Box::new(tool))
                } else {
                    parent.kind.clone()
                };
                let child = Process {
                    pid: fork.child_pid,
                    ppid: event.pid,
                    exited: false,
                    kind,
                    ..parent
                };
                self.table.insert(child);
                Some(actor)
            }
            EventKind::Exec(exec) => {
                let before = self.table.entry(event.pid, event.ppid, &event.comm).clone();
                // The exec is an action of the code that asked for it: the process as it was.
                let actor = self.exec_actor(&before, exec, event);
                let kind = self.kind_after_exec(event.pid, &before, exec);
                if let Some(home) = exec.dir_var("CARGO_HOME") {
                    self.inferred_cargo_home.get_or_insert(home);
                }
                if let Some(home) = exec.dir_var("HOME") {
                    self.home.get_or_insert(home);
                }
                if let Some(tmp) = exec.dir_var("TMPDIR") {
                    self.tmpdir.get_or_insert(tmp);
                }
                if let Some(p) = self.table.get_mut(event.pid) {
                    p.image = exec.image().to_owned();
                    p.argv = exec.argv.clone();
                    p.env = exec.env.clone();
                    p.cwd = exec.cwd.clone();
                    p.dirs = ProcDirs::of(exec);
                    p.comm = event.comm.clone();
                    p.kind = kind;
                }
                Some(actor)
            }
            // The common events borrow the process instead of copying it (argv, env, rustc's
            // facts): this is the per-event hot path.
            EventKind::Exit(_) => {
                self.table.mark_exited(event.pid, event.ppid, &event.comm);
                let actor = self.table.get(event.pid).map(|p| self.actor_of(p, event));
                // Pruned in batches, once the exits remembered are twice what is kept: each
                // exit costs amortized constant time.
                if self.table.exits_recorded() >= 2 * KEEP_EXITED {
                    self.prune(KEEP_EXITED);
                }
                actor
            }
            EventKind::Open(open) => {
                let loaded = self.note_proc_macro_load(event.pid, &open.path, open.result >= 0);
                self.table.entry(event.pid, event.ppid, &event.comm);
                self.table.get(event.pid).map(|p| match &p.kind {
                    // rustc loading a proc-macro library is rustc's doing.
                    ProcKind::Rustc(r) if loaded => rustc_actor(r),
                    _ => self.actor_of(p, event),
                })
            }
            EventKind::Connect(_)
            | EventKind::Dns(_)
            | EventKind::Tamper(_)
            | EventKind::IoUring(_)
            | EventKind::CompatSyscall(_)
            | EventKind::Socket(_)
            | EventKind::Killed(_) => {
                self.table.entry(event.pid, event.ppid, &event.comm);
                self.table.get(event.pid).map(|p| self.actor_of(p, event))
            }
        };
        if let Some(p) = self.table.get(event.pid)
            && event.ppid == 0
        {
            event.ppid = p.ppid;
        }
        event.actor = actor;
        if matches!(event.kind, EventKind::Open(_)) {
            let image = self
                .table
                .get(event.pid)
                .map(|p| p.image.as_str())
                .unwrap_or("");
            self.writes.observe(event, image, self.sysroot.as_deref());
        }
    }

    /// rustc's `--crate-name` when process `pid` is rustc or its linker.
    pub fn rustc_crate_name(&self, pid: u32) -> Option<&str> {
        self.rustc_info(pid)?.crate_name.as_deref()
    }

    /// What the rustc is compiling, when process `pid` is rustc or its linker.
    pub fn rustc_info(&self, pid: u32) -> Option<&RustcInfo> {
        match &self.table.get(pid)?.kind {
            ProcKind::Rustc(r) | ProcKind::Linker(r) => Some(r),
            _ => None,
        }
    }

    /// Who wrote each file the crates' code wrote (see [`WriteTable`]).
    pub fn writes(&self) -> &WriteTable {
        &self.writes
    }

    /// Whether `krate` is a member of the workspace: as `cargo metadata` says, else whether its
    /// sources are inside the workspace root.
    pub fn is_member(&self, krate: &CrateRef) -> bool {
        let facts: Vec<&PackageFact> = self
            .context
            .packages
            .iter()
            .filter(|p| p.name == krate.name)
            .filter(|p| krate.version.as_deref().is_none_or(|v| v == p.version))
            .collect();
        if !facts.is_empty() {
            return facts.iter().any(|p| p.workspace_member);
        }
        let places = self.places_for(Some(krate));
        match (places.manifest_dir.as_deref(), places.workspace.as_deref()) {
            (Some(dir), Some(ws)) => paths::is_under(dir, ws),
            _ => true,
        }
    }

    /// Who answers for `event` of process `p`.
    fn actor_of(&self, p: &Process, event: &Event) -> Actor {
        match &p.kind {
            ProcKind::Command => Actor::of(Role::Command),
            ProcKind::Cargo => Actor::of(Role::Cargo),
            ProcKind::BuildScript(krate) => Actor::for_crate(Role::BuildScript, krate),
            ProcKind::Tool(actor) => (**actor).clone(),
            ProcKind::Rustc(r) | ProcKind::Linker(r) => {
                // A proc-macro's code on the stack names it exactly. Within rustc's own places
                // the event stays rustc's even then: a proc-macro calls back into rustc through
                // the proc_macro bridge, and rustc loads crate metadata lazily on such calls.
                // A new process is the exception: rustc only ever starts its linker, so a fork
                // with a proc-macro on the stack is the proc-macro's.
                let forked = matches!(event.kind, EventKind::Fork(_));
                if !forked && r.expects(event, self.cargo_home()) {
                    rustc_actor(r)
                } else if let Some(actor) = self.caller_actor(r, &event.callers) {
                    actor
                } else if forked {
                    rustc_actor(r)
                } else if let Some(actor) =
                    self.preload_actor(r, matches!(p.kind, ProcKind::Linker(_)))
                {
                    // Code a build script's rustc-env made the loader bring in.
                    actor
                } else {
                    self.proc_macro_actor(r, event_path(event))
                }
            }
        }
    }

    /// Who answers for an exec: whoever the process was before it.
    fn exec_actor(&self, before: &Process, exec: &Exec, event: &Event) -> Actor {
        match &before.kind {
            ProcKind::Rustc(r) | ProcKind::Linker(r) => {
                if let Some(actor) = self.injected_program(r, exec, before.image_name()) {
                    actor
                } else if r.is_linker(exec) {
                    rustc_actor(r)
                } else {
                    self.proc_macro_actor(r, None)
                }
            }
            _ => self.actor_of(before, event),
        }
    }

    /// What process `pid` is after executing `exec`, given what it was before.
    fn kind_after_exec(&mut self, pid: u32, before: &Process, exec: &Exec) -> ProcKind {
        let name = paths::file_name(exec.image()).to_owned();
        match &before.kind {
            ProcKind::BuildScript(krate) => {
                let mut actor = Actor::for_crate(Role::Tool, krate);
                actor.via = Some(Role::BuildScript);
                actor.chain = vec![before.image_name().to_owned(), name];
                ProcKind::Tool(Box::new(actor))
            }
            ProcKind::Tool(actor) => {
                let mut actor = actor.clone();
                actor.chain.push(name);
                ProcKind::Tool(actor)
            }
            ProcKind::Rustc(r) | ProcKind::Linker(r) => {
                if let Some(actor) = self.injected_program(r, exec, before.image_name()) {
                    ProcKind::Tool(Box::new(actor))
                } else if r.is_linker(exec) {
                    ProcKind::Linker(r.clone())
                } else {
                    let mut actor = self.proc_macro_actor(r, None);
                    if actor.role == Role::ProcMacro {
                        actor.role = Role::Tool;
                        actor.via = Some(Role::ProcMacro);
                    }
                    actor.chain = vec!["rustc".to_owned(), name];
                    ProcKind::Tool(Box::new(actor))
                }
            }
            ProcKind::Cargo | ProcKind::Command => self.classify(pid, before, exec),
        }
    }

    /// A fresh image run outside any build script or proc-macro.
    fn classify(&mut self, pid: u32, before: &Process, exec: &Exec) -> ProcKind {
        let image = exec.image();
        let name = paths::file_name(image);
        let argv0 = exec.argv.first().map(|a| paths::file_name(a)).unwrap_or("");
        if name == "rustc" || argv0 == "rustc" {
            let info = RustcInfo::from_exec(pid, exec);
            if before.kind == ProcKind::Cargo
                && (info.krate.is_none()
                    || exec.var("CARGO_PKG_NAME").is_none()
                    || info.crate_name.as_deref() == Some("___"))
            {
                // `rustc -vV`, `rustc - --crate-name ___ --print=...`: cargo probing its compiler.
                return ProcKind::Cargo;
            }
            if let Some(lib) = info.proc_macro_output()
                && let Some(krate) = &info.krate
            {
                self.proc_macro_libs
                    .insert(lib, (krate.clone(), info.manifest_dir.clone()));
            }
            // rustc's own --out-dir first: an OUT_DIR in its environment may be one the watched
            // command inherited (cargo sets OUT_DIR only for crates with a build script).
            if self.target_dir.is_none() {
                self.target_dir = info.target_dir.clone();
            }
            let mut info = info;
            if let Some(krate) = info.krate.clone() {
                // cargo's environment, as the forked child inherited it (a wrapper's, if cargo
                // ran one); unknown when cargo's own start was not seen.
                let cargo_env = Some(&before.env)
                    .filter(|env| before.kind == ProcKind::Cargo && env.contains_key("PATH"));
                let has_build_script = match (&info.build_out_dir, &info.target_dir) {
                    (Some(out), Some(target)) => paths::is_under(out, target),
                    _ => false,
                };
                let inv = directives::Invocation {
                    krate: &krate,
                    rustflags: self.rustflags.as_deref(),
                    cargo_env,
                    target_dir: info.target_dir.as_deref(),
                    has_build_script,
                };
                info.directives = directives::directives(exec, &inv, &mut self.search_owners);
            }
            if let Some(krate) = info.krate.clone() {
                self.note_dirs(&krate, exec, false, info.out_dir.as_deref());
            }
            if self.sysroot.is_none() {
                self.sysroot = info.sysroot.clone();
            }
            if self.inferred_workspace.is_none()
                && let (Some(cwd), Some(manifest)) = (&info.cwd, &info.manifest_dir)
                && !paths::is_registry_source(manifest, self.cargo_home())
                && paths::is_under(manifest, cwd)
                && cwd != "/"
            {
                self.inferred_workspace = Some(cwd.clone());
            }
            return ProcKind::Rustc(Box::new(info));
        }
        if let Some(pkg) = paths::build_script_package(image).or_else(|| {
            exec.argv
                .first()
                .and_then(|a| paths::build_script_package(a))
        }) {
            let name = exec.var("CARGO_PKG_NAME").unwrap_or(pkg).to_owned();
            let version = exec
                .var("CARGO_PKG_VERSION")
                .map(str::to_owned)
                .or_else(|| self.context.unique_version(&name).map(str::to_owned));
            let krate = CrateRef { name, version };
            if self.rustflags.is_none()
                && let Some(flags) = exec.var("CARGO_ENCODED_RUSTFLAGS")
            {
                self.rustflags = Some(directives::decode_rustflags(flags));
            }
            self.note_dirs(&krate, exec, true, None);
            if self.sysroot.is_none() {
                // cargo gives every build script the compiler it resolved (RUSTC, the real
                // `<sysroot>/bin/rustc` under rustup). A build script can run before this run
                // sees any rustc compile a crate (the rest fresh from an earlier build), and its
                // probes (`$RUSTC --version`, reading the standard library) are the baseline's.
                let cargo_home = self.cargo_home().map(str::to_owned);
                self.sysroot = exec
                    .var("RUSTC")
                    .and_then(rustc::sysroot_of)
                    .filter(|s| Some(s) != cargo_home.as_ref());
            }
            self.crate_dirs
                .entry(krate.clone())
                .or_default()
                .build_script = Some(image.to_owned());
            self.seen.insert((krate.clone(), Role::BuildScript));
            return ProcKind::BuildScript(krate);
        }
        if paths::is_cargo_name(name) || paths::is_cargo_name(argv0) {
            return ProcKind::Cargo;
        }
        if name == "rustup" {
            // The rustup proxy execs the real program next; until then it is what ran it.
            return before.kind.clone();
        }
        if before.kind == ProcKind::Cargo {
            // git, ssh, credential helpers, compiler wrappers: cargo's own work.
            return ProcKind::Cargo;
        }
        ProcKind::Command
    }
}

fn rustc_actor(r: &RustcInfo) -> Actor {
    match &r.krate {
        Some(k) => Actor::for_crate(Role::Rustc, k),
        None => Actor::of(Role::Rustc),
    }
}

fn event_path(event: &Event) -> Option<&str> {
    match &event.kind {
        EventKind::Open(o) => Some(&o.path),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
