//! The end of a run: the crates that ran without a profile, and allow entries that matched
//! nothing.
use std::collections::BTreeSet;

use super::{Code, Finding, Policy};
use crate::attribution::{CrateRef, Role};

impl Policy {
    /// The crates among `seen` (every build script that ran and proc-macro that was loaded)
    /// that ran without a profile, with their role.
    pub fn unprofiled(&self, seen: &BTreeSet<(CrateRef, Role)>) -> Vec<(CrateRef, Role)> {
        seen.iter()
            .filter(|(krate, _)| self.profiles.get(&krate.name).is_none())
            .cloned()
            .collect()
    }

    /// Ends the run: adds the unused-allow findings; returns every finding, errors first. A
    /// crate without a profile gets no finding of its own: what it did beyond the baseline was
    /// reported as it happened, with "(no profile)" in the detail; see [`Self::unprofiled`].
    pub fn finish(&mut self) -> Vec<Finding> {
        self.unused_allows();
        self.findings().into_iter().cloned().collect()
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
                        killed: false,
                        time_ns: 0,
                    },
                ));
            }
        }
        self.findings.extend(found);
    }
}
