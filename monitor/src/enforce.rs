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
    time::{Duration, Instant},
};

use monitor_common::{GROUP_RUSTC, GROUP_UNKNOWN};

use crate::{
    attribution::{CrateRef, ProcKind, Role},
    model::{Event, EventKind},
    observer::Observer,
    pipeline::Pipeline,
    profile::{HostPattern, NetPattern, PortPattern, ProfileSet, RoleRules},
    sensor::{Sensor, SensorError},
};

/// Keeps the kernel's crate groups and allow lists in step with attribution.
pub struct Enforcer<'a> {
    sensor: &'a mut Sensor,
    profiles: ProfileSet,
    groups: HashMap<CrateRef, u32>,
    next: u32,
    /// Problems updating the kernel maps (each makes enforcement stricter, never looser).
    pub errors: Vec<String>,
    /// Held build scripts not yet attributed, and since when they have been seen so.
    held: HashMap<u32, Instant>,
    last_scan: Instant,
}

/// How long a held build script may wait for its exec record before it is continued without
/// allowances.
const HOLD_LIMIT: Duration = Duration::from_secs(1);

impl<'a> Enforcer<'a> {
    /// Prepares enforcement: rustc processes may reach what any proc-macro profile allows.
    pub fn new(sensor: &'a mut Sensor, profiles: ProfileSet) -> Result<Self, SensorError> {
        let mut e = Self {
            sensor,
            profiles,
            groups: HashMap::new(),
            next: GROUP_RUSTC + 1,
            errors: Vec::new(),
            held: HashMap::new(),
            last_scan: Instant::now(),
        };
        let rules: Vec<RoleRules> = e
            .profiles
            .iter()
            .filter_map(|p| p.proc_macro.clone())
            .collect();
        for r in &rules {
            e.install(GROUP_RUSTC, r)?;
        }
        Ok(e)
    }

    /// After attributing `event`: a new build script gets its crate's group.
    pub fn after(&mut self, event: &Event, pipeline: &Pipeline) {
        let EventKind::Exec(exec) = &event.kind else {
            return;
        };
        // The kernel held it (see the module notes): whatever attribution makes of it, it is
        // continued once its group is set.
        let held = exec.path.ends_with("/build-script-build");
        self.assign(event.pid, pipeline);
        if held {
            self.held.remove(&event.pid);
            continue_process(event.pid);
        }
    }

    fn assign(&mut self, pid: u32, pipeline: &Pipeline) {
        let Some(process) = pipeline.attributor().table().get(pid) else {
            return;
        };
        let ProcKind::BuildScript(krate) = &process.kind else {
            return;
        };
        let group = match self.groups.get(krate) {
            Some(g) => *g,
            None => {
                let g = self.next;
                self.next += 1;
                self.groups.insert(krate.clone(), g);
                if let Some(rules) = self.rules_for(krate)
                    && let Err(e) = self.install(g, &rules)
                {
                    self.errors.push(format!("allow list of {krate}: {e}"));
                }
                g
            }
        };
        if let Err(e) = self.sensor.set_crate_group(pid, group) {
            self.errors
                .push(format!("crate group of process {pid}: {e}"));
        }
    }

    /// Continues build scripts the kernel has held for longer than [`HOLD_LIMIT`] without their
    /// exec record arriving (it was lost): they run with no allowance (refused network). Cheap
    /// enough to call often; it looks at the kernel's map at most twice a second.
    pub fn release_held(&mut self) {
        if self.last_scan.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last_scan = Instant::now();
        let unknown: Vec<u32> = self
            .sensor
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
                self.errors.push(format!(
                    "build script process {pid} was held without its exec record (lost?): \
                     continued with no network allowed"
                ));
                continue_process(pid);
            }
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

    /// Writes a role's network allowances (addresses and CIDR blocks) for `group`.
    fn install(&mut self, group: u32, rules: &RoleRules) -> Result<(), SensorError> {
        for rule in &rules.network {
            let NetPattern::Inet { host, port } = &rule.pattern else {
                continue;
            };
            let port = match port {
                PortPattern::Any => None,
                PortPattern::Port(p) => Some(*p),
            };
            match host {
                HostPattern::Any => {
                    self.sensor
                        .allow(group, std::net::Ipv4Addr::UNSPECIFIED.into(), 0, port)?;
                    self.sensor
                        .allow(group, std::net::Ipv6Addr::UNSPECIFIED.into(), 0, port)?;
                }
                HostPattern::Addr(addr) => {
                    let bits = if addr.is_ipv4() { 32 } else { 128 };
                    self.sensor.allow(group, *addr, bits, port)?;
                }
                HostPattern::Net(net) => {
                    self.sensor
                        .allow(group, net.network(), net.prefix_len(), port)?
                }
                // Names cannot be enforced in the kernel: refused there, checked afterwards.
                HostPattern::Name(_) => {}
            }
        }
        Ok(())
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
