//! `--enforce`: the cgroup hooks refuse network by crate code that profiles do not allow.
//!
//! The kernel decides which processes run crate code (build scripts, rustc with its
//! proc-macros, and everything they start) and refuses their network by default; this module
//! tells it, as soon as attribution knows, which crate a build script belongs to and what that
//! crate's profile allows. A build script that connects before that is refused: failing
//! closed. cargo's own network (registry, git) is never checked.
//!
//! Only addresses can be enforced in the kernel: profile entries with DNS names, and unix
//! sockets, are not (the cgroup hooks see inet addresses); they are still checked afterwards.
use std::collections::HashMap;

use monitor_common::GROUP_RUSTC;

use crate::{
    attribution::{CrateRef, ProcKind, Role},
    event::{Event, EventKind},
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
}

impl<'a> Enforcer<'a> {
    /// Prepares enforcement: rustc processes may reach what any proc-macro profile allows.
    pub fn new(sensor: &'a mut Sensor, profiles: ProfileSet) -> Result<Self, SensorError> {
        let mut e = Self {
            sensor,
            profiles,
            groups: HashMap::new(),
            next: GROUP_RUSTC + 1,
            errors: Vec::new(),
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
        if !matches!(event.kind, EventKind::Exec(_)) {
            return;
        }
        let Some(process) = pipeline.attributor().table().get(event.pid) else {
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
        if let Err(e) = self.sensor.set_crate_group(event.pid, group) {
            self.errors
                .push(format!("crate group of process {}: {e}", event.pid));
        }
    }

    /// The build-script rules of the profile that covers this version of the crate.
    fn rules_for(&self, krate: &CrateRef) -> Option<RoleRules> {
        let profile = self.profiles.get(&krate.name)?;
        let covered = match krate.version.as_deref().map(semver::Version::parse) {
            Some(Ok(v)) => profile.covers(&v),
            _ => profile.versions.is_empty(),
        };
        // A profile written for other versions allows nothing here: new behaviour is refused.
        covered
            .then(|| profile.rules(Role::BuildScript).cloned())
            .flatten()
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
