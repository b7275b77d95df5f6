//! The end of a run: crates without a profile, and allow entries that matched nothing.
use std::collections::BTreeSet;

use super::{Code, Finding, Policy, ProcessRef, Verdict, process_ref};
use crate::{
    attribution::{Actor, CrateRef, Role},
    model::Event,
};

/// Observations about a crate that has no profile.
#[derive(Default)]
pub(super) struct Unprofiled {
    programs: BTreeSet<String>,
    unusual: BTreeSet<String>,
    network: BTreeSet<String>,
    first_ns: u64,
    process: Option<ProcessRef>,
}

/// Most items listed in a no-profile finding.
const MAX_LISTED: usize = 12;

impl Policy {
    /// Notes what a crate without a profile did beyond the baseline, for its no-profile finding.
    pub(super) fn note_unprofiled(
        &mut self,
        krate: &CrateRef,
        role: Role,
        verdict: &Verdict,
        event: &Event,
        actor: &Actor,
    ) {
        let u = self.unprofiled.entry((krate.clone(), role)).or_default();
        if u.first_ns == 0 {
            u.first_ns = event.time_ns;
            u.process = Some(process_ref(event, actor));
        }
        let set = match verdict.code {
            Code::UnexpectedExec => &mut u.programs,
            Code::UnexpectedNetwork | Code::AgentSocket | Code::RawSocket => &mut u.network,
            _ => &mut u.unusual,
        };
        if set.len() < MAX_LISTED {
            set.insert(verdict.subject.clone());
        }
    }

    /// Notes that a crate with a build script or proc-macro ran (so a crate without a profile
    /// is reported even when it did nothing unusual).
    pub(super) fn saw_crate(&mut self, krate: &CrateRef, role: Role, event: &Event, actor: &Actor) {
        if !matches!(role, Role::BuildScript | Role::ProcMacro)
            || self.profiles.get(&krate.name).is_some()
        {
            return;
        }
        let u = self.unprofiled.entry((krate.clone(), role)).or_default();
        if u.first_ns == 0 {
            u.first_ns = event.time_ns;
            u.process = Some(process_ref(event, actor));
        }
    }

    /// Ends the run: adds the no-profile and unused-allow findings; returns every finding,
    /// errors first. `seen` lists every build script that ran and proc-macro that was loaded,
    /// so that a crate without a profile is reported even if it did nothing unusual.
    pub fn finish(&mut self, seen: &BTreeSet<(CrateRef, Role)>) -> Vec<Finding> {
        for (krate, role) in seen {
            if self.profiles.get(&krate.name).is_none() {
                self.unprofiled.entry((krate.clone(), *role)).or_default();
            }
        }
        for ((krate, role), u) in std::mem::take(&mut self.unprofiled) {
            self.no_profile(krate, role, u);
        }
        self.unused_allows();
        self.findings().into_iter().cloned().collect()
    }

    fn no_profile(&mut self, krate: CrateRef, role: Role, u: Unprofiled) {
        let mut parts = Vec::new();
        if !u.programs.is_empty() {
            parts.push(format!("ran {}", list(&u.programs)));
        }
        if !u.unusual.is_empty() {
            parts.push(format!("touched {}", list(&u.unusual)));
        }
        if !u.network.is_empty() {
            parts.push(format!("reached {}", list(&u.network)));
        }
        let detail = if parts.is_empty() {
            "has no profile (nothing outside the built-in baseline seen)".to_owned()
        } else {
            format!(
                "has no profile; beyond the built-in baseline it {}",
                parts.join("; ")
            )
        };
        let key = (
            Code::NoProfile,
            Some(krate.clone()),
            Some(role),
            krate.name.clone(),
        );
        let finding = Finding {
            code: Code::NoProfile,
            severity: self.severity(Code::NoProfile),
            krate: Some(krate.clone()),
            role: Some(role),
            process: u.process,
            detail,
            subject: krate.name,
            profile: None,
            list: None,
            candidates: Vec::new(),
            count: 1,
            time_ns: u.first_ns,
        };
        self.findings.insert(key, finding);
    }

    /// An unused-allow finding for every entry of a profile in use that matched nothing.
    fn unused_allows(&mut self) {
        let used: BTreeSet<&String> = self
            .applied
            .values()
            .filter_map(|a| a.profile.as_ref())
            .collect();
        let mut found = Vec::new();
        for key in used {
            let Some(profile) = self.profiles.get(key) else {
                continue;
            };
            let tracker = self.usage.get(key).cloned().unwrap_or_default();
            for unused in tracker.unused(profile) {
                let subject = format!(
                    "{} {}.{} {}",
                    profile.source, unused.role, unused.list, unused.text
                );
                let detail = format!(
                    "allow entry `{}` in [{}].{} ({}:{}:{}) matched nothing in this run",
                    unused.text,
                    unused.role,
                    unused.list,
                    profile.source,
                    unused.location.line,
                    unused.location.col
                );
                let krate = CrateRef {
                    name: profile.krate.clone(),
                    version: None,
                };
                found.push((
                    (
                        Code::UnusedAllow,
                        Some(krate.clone()),
                        Some(unused.role),
                        subject.clone(),
                    ),
                    Finding {
                        code: Code::UnusedAllow,
                        severity: self.severity(Code::UnusedAllow),
                        krate: Some(krate),
                        role: Some(unused.role),
                        process: None,
                        detail,
                        subject,
                        profile: Some(profile.source.to_string()),
                        list: Some(unused.list.as_str().to_owned()),
                        candidates: Vec::new(),
                        count: 1,
                        time_ns: 0,
                    },
                ));
            }
        }
        self.findings.extend(found);
    }
}

fn list(items: &BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(", ")
}
