//! `--enforce`: the cgroup hooks refuse network by crate code that profiles do not allow.
//!
//! The kernel decides which processes run crate code (build scripts, rustc with its
//! proc-macros, and everything they start) and refuses their network by default; this module
//! tells it, as soon as attribution knows, which crate a build script belongs to and what that
//! crate's profile allows. A build script that connects before that is refused: failing
//! closed. cargo's own network (registry, git) is never checked.
//!
//! The kernel stops every new build script at its exec (`SIGSTOP` before its first
//! instruction); [`Enforcer::after`] puts it in its crate's group and continues it. So a build
//! script never runs before its allowances are in place, and one whose exec record was lost is
//! continued by [`Enforcer::release_held`] a moment later with no allowance at all.
//!
//! Only addresses can be enforced in the kernel: profile entries with DNS names, and unix
//! sockets, are not (the cgroup hooks see inet addresses); they are still checked afterwards.
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use monitor_common::{GROUP_PROC_MACRO, GROUP_RUSTC, GROUP_UNKNOWN, kill_class};

use crate::{
    attribution::{Attributor, CrateRef, ProcKind, Role},
    model::{Access, Event, EventKind, KillClass, Open, OpenSyscall, ProtectedFile},
    observer::Observer,
    pipeline::Pipeline,
    policy::profile_allows,
    profile::{HostPattern, NetPattern, PortPattern, ProfileSet, RoleRules},
    sensor::{Sensor, SensorError},
};

/// Keeps the kernel's crate groups and allow lists in step with attribution.
pub struct Enforcer<'a> {
    sensor: &'a mut Sensor,
    groups: CrateGroups,
    next: u32,
    held: Held,
    /// Problems updating the kernel maps (each makes enforcement stricter, never looser).
    pub errors: Vec<String>,
}

/// The kernel's numbered files, for kill allowances.
#[derive(Clone, Default)]
pub struct KnownFiles {
    /// `PROTECTED`'s secrets.
    pub secrets: Arc<[ProtectedFile]>,
    /// `PERSIST`'s targets, each with whether it is a directory.
    pub persist: Arc<[(ProtectedFile, bool)]>,
}

impl KnownFiles {
    /// The secrets given to `PROTECTED` and the persistence targets of `persist` (as `PERSIST`
    /// numbers them), with whether each is a directory.
    pub fn new(secrets: Arc<[ProtectedFile]>, persist: &crate::sensor::PersistSet) -> Self {
        Self {
            secrets,
            persist: persist
                .targets
                .iter()
                .cloned()
                .zip(persist.keys.iter().map(|(_, dir)| *dir))
                .collect(),
        }
    }
}

/// How long a held build script may wait for its exec record before it is continued without
/// allowances.
const HOLD_LIMIT: Duration = Duration::from_secs(1);

/// The first group number for build scripts' crates.
pub const FIRST_CRATE_GROUP: u32 = GROUP_RUSTC + 1;

impl<'a> Enforcer<'a> {
    /// Prepares enforcement: rustc processes, and the programs proc-macros start, may reach
    /// what any proc-macro profile allows.
    pub fn new(
        sensor: &'a mut Sensor,
        profiles: ProfileSet,
        known: KnownFiles,
    ) -> Result<Self, SensorError> {
        let mut groups = CrateGroups::new(profiles, known);
        groups.install_proc_macros(sensor)?;
        Ok(Self {
            sensor,
            groups,
            next: FIRST_CRATE_GROUP,
            held: Held::default(),
            errors: Vec::new(),
        })
    }

    /// After attributing `event`: a new build script gets its crate's group.
    pub fn after(&mut self, event: &Event, pipeline: &Pipeline) {
        self.groups
            .after(self.sensor, &mut self.next, &mut self.held, event, pipeline);
        self.errors.append(&mut self.groups.errors);
    }

    /// See [`Held::release`].
    pub fn release_held(&mut self) {
        self.held.release(self.sensor, &mut self.errors);
    }
}

/// One build's crate groups: which group each build script's crate has, and what its profile
/// lets it do. Everything it writes to the kernel is recorded, so that a service watching
/// many builds (the guard) can take it back when the build ends.
pub struct CrateGroups {
    profiles: ProfileSet,
    groups: HashMap<CrateRef, u32>,
    known: KnownFiles,
    /// Network allowances written: (group, address, prefix, port).
    nets: Vec<(u32, std::net::IpAddr, u8, Option<u16>)>,
    /// Kill allowances written: (group, class, object).
    kills: Vec<(u32, u32, u32)>,
    /// Problems updating the kernel maps (each makes enforcement stricter, never looser).
    pub errors: Vec<String>,
}

impl CrateGroups {
    /// The groups of a build checked with `profiles`.
    pub fn new(profiles: ProfileSet, known: KnownFiles) -> Self {
        Self {
            profiles,
            groups: HashMap::new(),
            known,
            nets: Vec::new(),
            kills: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// rustc processes, and the programs proc-macros start, may reach what any proc-macro
    /// profile allows.
    pub fn install_proc_macros(&mut self, sensor: &mut Sensor) -> Result<(), SensorError> {
        let rules: Vec<RoleRules> = self
            .profiles
            .iter()
            .filter_map(|p| p.proc_macro.clone())
            .collect();
        for r in &rules {
            self.install(sensor, GROUP_RUSTC, r)?;
            self.install(sensor, GROUP_PROC_MACRO, r)?;
        }
        Ok(())
    }

    /// After attributing `event`: a new build script gets its crate's group (a new one taken
    /// from `next`) and is continued; a tracer killed at ptrace's entry has its target
    /// continued.
    pub fn after(
        &mut self,
        sensor: &mut Sensor,
        next: &mut u32,
        held: &mut Held,
        event: &Event,
        pipeline: &Pipeline,
    ) {
        // A tracer killed at ptrace's entry: the attach itself completed and stopped its target
        // (PTRACE_ATTACH sends SIGSTOP), which the tracer's death leaves stopped. Continued, so
        // that a process of the build is not left hanging (and holding cargo's pipes).
        if let EventKind::Killed(k) = &event.kind
            && k.class == KillClass::Tamper
            && k.target != 0
        {
            continue_process(k.target);
            return;
        }
        let EventKind::Exec(exec) = &event.kind else {
            return;
        };
        // The kernel held it (see the module notes): whatever attribution makes of it, it is
        // continued once its group is set.
        let is_held = exec.path.ends_with("/build-script-build");
        self.assign(sensor, next, event.pid, pipeline);
        if is_held {
            held.held.remove(&event.pid);
            continue_process(event.pid);
        }
    }

    fn assign(&mut self, sensor: &mut Sensor, next: &mut u32, pid: u32, pipeline: &Pipeline) {
        let Some(process) = pipeline.attributor().table().get(pid) else {
            return;
        };
        let ProcKind::BuildScript(krate) = &process.kind else {
            return;
        };
        let group = match self.groups.get(krate) {
            Some(g) => *g,
            None => {
                let g = *next;
                *next += 1;
                self.groups.insert(krate.clone(), g);
                if let Some(rules) = self.rules_for(krate)
                    && let Err(e) = self.install(sensor, g, &rules)
                {
                    self.errors.push(format!("allow list of {krate}: {e}"));
                }
                if let Err(e) = self.allow_kills(sensor, g, krate, pipeline.attributor()) {
                    self.errors.push(format!("kill allowances of {krate}: {e}"));
                }
                g
            }
        };
        if let Err(e) = sensor.set_crate_group(pid, group) {
            self.errors
                .push(format!("crate group of process {pid}: {e}"));
        }
    }

    /// Takes back what this build's crate groups were allowed (the build ended); the shared
    /// rustc and proc-macro groups keep theirs.
    pub fn withdraw(&mut self, sensor: &mut Sensor) {
        for (group, addr, prefix, port) in self.nets.drain(..) {
            if group != GROUP_RUSTC && group != GROUP_PROC_MACRO {
                sensor.disallow(group, addr, prefix, port);
            }
        }
        for (group, class, object) in self.kills.drain(..) {
            sensor.disallow_kill(group, class, object);
        }
    }

    /// The build-script rules of the profile that covers this version of the crate (the
    /// lookup checking uses). A profile written for other versions allows nothing here: new
    /// behaviour is refused.
    fn rules_for(&self, krate: &CrateRef) -> Option<RoleRules> {
        self.profiles
            .rules_for(krate, Role::BuildScript)?
            .covering_rules()
            .cloned()
    }

    /// Tells the kernel which secrets and persistence targets `krate`'s build-script profile
    /// allows it to touch (judged as `ci` judges an open of each), so that it is not killed for
    /// them. A persistence directory is judged for a file named `x` created in it.
    fn allow_kills(
        &mut self,
        sensor: &mut Sensor,
        group: u32,
        krate: &CrateRef,
        attributor: &Attributor,
    ) -> Result<(), SensorError> {
        let allowed = |events: Vec<Event>| -> Vec<u32> {
            profile_allows(
                &self.profiles,
                krate,
                Role::BuildScript,
                &events,
                attributor,
            )
            .into_iter()
            .enumerate()
            .filter(|(_, yes)| *yes)
            .map(|(i, _)| i as u32 + 1)
            .collect()
        };
        let secrets = allowed(
            self.known
                .secrets
                .iter()
                .map(|f| open_event(&f.path, Access::Read, Some(f)))
                .collect(),
        );
        let persist = allowed(
            self.known
                .persist
                .iter()
                .map(|(f, dir)| {
                    let path = if *dir {
                        format!("{}/x", f.path)
                    } else {
                        f.path.clone()
                    };
                    open_event(&path, Access::Write, None)
                })
                .collect(),
        );
        let kills = secrets
            .into_iter()
            .map(|o| (kill_class::SECRET, o))
            .chain(persist.into_iter().map(|o| (kill_class::PERSISTENCE, o)));
        for (class, object) in kills {
            sensor.allow_kill(group, class, object)?;
            self.kills.push((group, class, object));
        }
        Ok(())
    }

    /// Writes a role's network allowances (addresses and CIDR blocks) for `group`.
    fn install(
        &mut self,
        sensor: &mut Sensor,
        group: u32,
        rules: &RoleRules,
    ) -> Result<(), SensorError> {
        for rule in &rules.network {
            let NetPattern::Inet { host, port } = &rule.pattern else {
                continue;
            };
            let port = match port {
                PortPattern::Any => None,
                PortPattern::Port(p) => Some(*p),
            };
            let blocks: Vec<(std::net::IpAddr, u8)> = match host {
                HostPattern::Any => vec![
                    (std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
                    (std::net::Ipv6Addr::UNSPECIFIED.into(), 0),
                ],
                HostPattern::Addr(addr) => vec![(*addr, if addr.is_ipv4() { 32 } else { 128 })],
                HostPattern::Net(net) => vec![(net.network(), net.prefix_len())],
                // Names cannot be enforced in the kernel: refused there, checked afterwards.
                HostPattern::Name(_) => Vec::new(),
            };
            for (addr, prefix) in blocks {
                sensor.allow(group, addr, prefix, port)?;
                self.nets.push((group, addr, prefix, port));
            }
        }
        Ok(())
    }
}

/// Build scripts the kernel held at exec (see the module notes), waiting for their group.
#[derive(Default)]
pub struct Held {
    /// Held build scripts not yet attributed, and since when they have been seen so.
    held: HashMap<u32, Instant>,
    last_scan: Option<Instant>,
}

impl Held {
    /// Continues every build script the kernel holds now (a guard stopping: nobody will give
    /// them their group any more; they run on unwatched, as the rest of their build).
    pub fn release_all(sensor: &Sensor) {
        for (pid, group) in sensor.crate_groups() {
            if group == GROUP_UNKNOWN && is_stopped(pid) {
                continue_process(pid);
            }
        }
    }

    /// Continues build scripts the kernel has held for longer than [`HOLD_LIMIT`] without
    /// their exec record arriving (it was lost): they run with no allowance (refused network).
    /// Cheap enough to call often; it looks at the kernel's map at most twice a second.
    pub fn release(&mut self, sensor: &Sensor, errors: &mut Vec<String>) {
        if self
            .last_scan
            .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
        {
            return;
        }
        self.last_scan = Some(Instant::now());
        let unknown: Vec<u32> = sensor
            .crate_groups()
            .into_iter()
            .filter(|(pid, group)| *group == GROUP_UNKNOWN && is_stopped(*pid))
            .map(|(pid, _)| pid)
            .collect();
        self.held.retain(|pid, _| unknown.contains(pid));
        for pid in unknown {
            let since = *self.held.entry(pid).or_insert_with(Instant::now);
            if since.elapsed() >= HOLD_LIMIT {
                self.held.remove(&pid);
                errors.push(format!(
                    "build script process {pid} was held without its exec record (lost?): \
                     continued with no network allowed"
                ));
                continue_process(pid);
            }
        }
    }
}

/// A successful open of `path`, as the sensor would report it.
fn open_event(path: &str, access: Access, protected: Option<&ProtectedFile>) -> Event {
    Event {
        time_ns: 0,
        pid: 0,
        tid: 0,
        ppid: 0,
        comm: String::new(),
        actor: None,
        callers: Vec::new(),
        kind: EventKind::Open(Open {
            syscall: OpenSyscall::Openat,
            path: path.to_owned(),
            requested: None,
            flags: match access {
                Access::Read => 0,
                Access::Write => 0o1 | 0o2000,
                Access::ReadWrite => 0o2,
            },
            access,
            create: false,
            result: 3,
            error: None,
            truncated: false,
            compat: false,
            protected: protected.cloned(),
        }),
    }
}

/// Sends SIGCONT to `pid`.
fn continue_process(pid: u32) {
    // SAFETY: kill(2) on a process of the watched tree; a stale pid fails harmlessly.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
}

/// Whether `pid` is stopped (state `T` in /proc/PID/stat).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "T")
    })
}

/// The enforcer follows the run: every attributed exec may give a build script its group, and
/// every turn of the loop continues held scripts whose exec record was lost.
impl Observer for Enforcer<'_> {
    fn event(&mut self, event: &Event, pipeline: &Pipeline) {
        self.after(event, pipeline);
    }

    fn tick(&mut self, _pipeline: &Pipeline) {
        self.release_held();
    }

    fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }
}
