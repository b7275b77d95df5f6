//! What each crate did, per role: counts and the notable items (programs run, hosts reached,
//! files outside the expected places). Bounded: counters and capped sets, never every event.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{
    attribution::{Attributor, CrateRef, Role},
    model::{Event, EventKind},
};

/// Most items kept in each notable set.
const MAX_ITEMS: usize = 64;

/// A crate in a role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CrateRole {
    /// The crate (None for cargo, the watched command, and rustc probes).
    #[serde(rename = "crate")]
    pub krate: Option<CrateRef>,
    /// The role whose rules apply (a tool counts for the build script or proc-macro it serves).
    pub role: Role,
}

/// What one crate did in one role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Programs executed.
    pub execs: u64,
    /// Files opened for reading.
    pub reads: u64,
    /// Files opened for writing.
    pub writes: u64,
    /// connect() attempts.
    pub network: u64,
    /// Opens that failed.
    pub failed_opens: u64,
    /// Programs run (image paths).
    pub programs: BTreeSet<String>,
    /// Endpoints reached (`addr:port`, unix socket paths).
    pub hosts: BTreeSet<String>,
    /// Files read outside the places a build ordinarily reads.
    pub unusual_reads: BTreeSet<String>,
    /// Files written outside the places a build ordinarily writes.
    pub unusual_writes: BTreeSet<String>,
    /// Items left out of the sets above because they were full.
    pub omitted: u64,
    /// Some events were attributed among several candidate proc-macros.
    pub ambiguous: bool,
}

impl Activity {
    fn insert(set: &mut BTreeSet<String>, item: &str, omitted: &mut u64) {
        if set.contains(item) {
            return;
        }
        if set.len() < MAX_ITEMS {
            set.insert(item.to_owned());
        } else {
            *omitted += 1;
        }
    }
}

/// Per crate and role activity of a run.
#[derive(Clone, Debug, Default)]
pub struct ActivityLog {
    entries: BTreeMap<CrateRole, Activity>,
    /// The key of the last event's entry: consecutive events nearly always share it, and
    /// reusing it spares building (allocating) a key per event.
    last: Option<CrateRole>,
}

/// A log with these entries (for reports of runs made elsewhere, and tests).
impl FromIterator<(CrateRole, Activity)> for ActivityLog {
    fn from_iter<I: IntoIterator<Item = (CrateRole, Activity)>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
            last: None,
        }
    }
}

impl ActivityLog {
    /// Counts one attributed event.
    pub fn record(&mut self, event: &Event, attributor: &Attributor) {
        let Some(actor) = &event.actor else { return };
        let role = actor.policy_role();
        let same = self.last.as_ref().is_some_and(|k| {
            k.role == role
                && match (&k.krate, &actor.krate) {
                    (Some(c), Some(name)) => {
                        c.name == *name && c.version.as_deref() == actor.version.as_deref()
                    }
                    (None, None) => true,
                    _ => false,
                }
        });
        if !same {
            self.last = Some(CrateRole {
                krate: actor.crate_ref(),
                role,
            });
        }
        let key = self.last.as_ref().expect("set above");
        if !self.entries.contains_key(key) {
            self.entries.insert(key.clone(), Activity::default());
        }
        let a = self.entries.get_mut(key).expect("inserted above");
        a.ambiguous |= !actor.exact;
        let scrutinised = matches!(role, Role::BuildScript | Role::ProcMacro);
        match &event.kind {
            EventKind::Exec(exec) => {
                a.execs += 1;
                if scrutinised {
                    Activity::insert(&mut a.programs, exec.image(), &mut a.omitted);
                }
            }
            EventKind::Open(open) if open.result < 0 => a.failed_opens += 1,
            EventKind::Open(open) => {
                let places = if scrutinised {
                    Some(attributor.places_for_process(event.pid, actor.crate_ref().as_ref()))
                } else {
                    None
                };
                if open.writes() {
                    a.writes += 1;
                    if let Some(p) = places
                        && !p.expected_write(&open.path)
                    {
                        Activity::insert(&mut a.unusual_writes, &open.path, &mut a.omitted);
                    }
                } else {
                    a.reads += 1;
                    if let Some(p) = places
                        && !p.expected_read(&open.path)
                    {
                        Activity::insert(&mut a.unusual_reads, &open.path, &mut a.omitted);
                    }
                }
            }
            EventKind::Connect(c) => {
                a.network += 1;
                Activity::insert(&mut a.hosts, &c.endpoint(), &mut a.omitted);
            }
            EventKind::Dns(d) => {
                a.network += 1;
                Activity::insert(&mut a.hosts, &format!("dns:{}", d.name), &mut a.omitted);
            }
            // Failed reads the kernel counted instead of sending (model::Exit).
            EventKind::Exit(exit) => a.failed_opens += u64::from(exit.quiet_failed_reads),
            EventKind::Fork(_)
            | EventKind::Lost(_)
            | EventKind::MacroLib(_)
            | EventKind::Tamper(_)
            | EventKind::IoUring(_)
            | EventKind::CompatSyscall(_)
            | EventKind::Socket(_)
            | EventKind::Killed(_) => {}
        }
    }

    /// All entries, crates with build scripts and proc-macros first.
    pub fn entries(&self) -> impl Iterator<Item = (&CrateRole, &Activity)> {
        self.entries.iter()
    }

    /// The activity of one crate in one role.
    pub fn get(&self, krate: &str, role: Role) -> Option<&Activity> {
        self.entries
            .iter()
            .find(|(k, _)| k.role == role && k.krate.as_ref().is_some_and(|c| c.name == krate))
            .map(|(_, a)| a)
    }

    /// The per-crate table of the summary: build scripts and proc-macros in full, other roles
    /// as one line each.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut rows: Vec<(&CrateRole, &Activity)> = self
            .entries
            .iter()
            .filter(|(k, _)| matches!(k.role, Role::BuildScript | Role::ProcMacro))
            .collect();
        rows.sort_by_key(|(k, a)| {
            (
                std::cmp::Reverse(
                    a.network + a.unusual_reads.len() as u64 + a.unusual_writes.len() as u64,
                ),
                (*k).clone(),
            )
        });
        if rows.is_empty() {
            let _ = writeln!(out, "no build script or proc-macro ran");
        } else {
            let _ = writeln!(
                out,
                "{:<36} {:<12} {:>6} {:>7} {:>7} {:>7}",
                "crate", "role", "execs", "reads", "writes", "network"
            );
        }
        for (k, a) in &rows {
            let name = k
                .krate
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "?".into());
            let role = if a.ambiguous {
                format!("{}?", k.role)
            } else {
                k.role.to_string()
            };
            let _ = writeln!(
                out,
                "{:<36} {:<12} {:>6} {:>7} {:>7} {:>7}",
                crate::model::Shown(&name),
                role,
                a.execs,
                a.reads,
                a.writes,
                a.network
            );
            let list = |items: &BTreeSet<String>| {
                items
                    .iter()
                    .take(8)
                    .map(|s| crate::model::shown(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !a.programs.is_empty() {
                let names: BTreeSet<std::borrow::Cow<'_, str>> = a
                    .programs
                    .iter()
                    .map(|p| crate::model::shown(p.rsplit('/').next().unwrap_or(p)))
                    .collect();
                let _ = writeln!(
                    out,
                    "    ran: {}",
                    names.into_iter().take(12).collect::<Vec<_>>().join(", ")
                );
            }
            if !a.hosts.is_empty() {
                let _ = writeln!(out, "    NETWORK: {}", list(&a.hosts));
            }
            if !a.unusual_reads.is_empty() {
                let _ = writeln!(
                    out,
                    "    read outside the usual places: {}",
                    list(&a.unusual_reads)
                );
            }
            if !a.unusual_writes.is_empty() {
                let _ = writeln!(
                    out,
                    "    wrote outside the usual places: {}",
                    list(&a.unusual_writes)
                );
            }
        }
        for role in [Role::Cargo, Role::Rustc, Role::Command] {
            let (mut n, mut total) = (0, Activity::default());
            for (_, a) in self.entries.iter().filter(|(k, _)| k.role == role) {
                n += 1;
                total.execs += a.execs;
                total.reads += a.reads;
                total.writes += a.writes;
                total.network += a.network;
            }
            if n > 0 {
                let label = match role {
                    Role::Rustc => format!("rustc ({n} crates)"),
                    _ => role.to_string(),
                };
                let _ = writeln!(
                    out,
                    "{:<36} {:<12} {:>6} {:>7} {:>7} {:>7}",
                    label, "", total.execs, total.reads, total.writes, total.network
                );
            }
        }
        out
    }
}
