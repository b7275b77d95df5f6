//! Which allow entries a run used, to warn about those that matched nothing.
use std::collections::HashSet;

use super::{
    error::Location,
    rules::{Profile, ProfileSource, RuleList},
};
use crate::attribution::Role;

/// Records the rules of one profile that matched during a run (feed it the indices the
/// [`CompiledRules`](super::CompiledRules) matchers return).
#[derive(Clone, Debug, Default)]
pub struct UsageTracker {
    hits: HashSet<(Role, RuleList, usize)>,
}

/// An allow entry that matched nothing in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnusedRule<'a> {
    /// The role table it is in.
    pub role: Role,
    /// The list it is in.
    pub list: RuleList,
    /// The entry as written.
    pub text: &'a str,
    /// Where it is in the profile.
    pub location: Location,
}

impl UsageTracker {
    /// A tracker with no hits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that rule `index` of `list` in `role`'s table matched.
    pub fn record(&mut self, role: Role, list: RuleList, index: usize) {
        self.hits.insert((role, list, index));
    }

    /// Whether rule `index` of `list` in `role`'s table matched.
    pub fn used(&self, role: Role, list: RuleList, index: usize) -> bool {
        self.hits.contains(&(role, list, index))
    }

    /// The entries of `profile` that matched nothing, in file order per role and list.
    ///
    /// Only the user's own profiles are checked: a shipped profile covers every configuration of
    /// its crate (features, targets, a system library present or bundled), so any one build
    /// leaves some of its entries unused, and the user could do nothing about the warning but
    /// copy the profile to silence it.
    pub fn unused<'p>(&self, profile: &'p Profile) -> Vec<UnusedRule<'p>> {
        let mut unused = Vec::new();
        if matches!(profile.source, ProfileSource::BuiltIn(_)) {
            return unused;
        }
        for role in [Role::BuildScript, Role::ProcMacro] {
            let Some(rules) = profile.rules(role) else {
                continue;
            };
            for list in RuleList::ALL {
                for (index, (text, location)) in rules.entries(list).into_iter().enumerate() {
                    if !self.used(role, list, index) {
                        unused.push(UnusedRule {
                            role,
                            list,
                            text,
                            location,
                        });
                    }
                }
            }
        }
        unused
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::profile::{parse, parse_builtin};

    #[test]
    fn reports_unmatched_entries() {
        let text = "schema = 1\ncrate = \"x\"\n[build-script]\nexec = [\"cc\", \"ar\"]\n\
                    read = [\"/usr/include/**\"]\n[proc-macro]\nread = [\"/etc/hosts\"]\n";
        let profile = parse(text, Path::new("x.toml")).expect("profile");
        let mut usage = UsageTracker::new();
        usage.record(Role::BuildScript, RuleList::Exec, 1);
        usage.record(Role::ProcMacro, RuleList::Read, 0);
        let unused: Vec<_> = usage
            .unused(&profile)
            .into_iter()
            .map(|u| (u.role, u.list, u.text, u.location.line))
            .collect();
        assert_eq!(
            unused,
            [
                (Role::BuildScript, RuleList::Exec, "cc", 4),
                (Role::BuildScript, RuleList::Read, "/usr/include/**", 5),
            ]
        );
    }

    #[test]
    fn shipped_profiles_are_not_checked_for_unused_entries() {
        let text = "schema = 1\ncrate = \"x\"\n[build-script]\nexec = [\"cc\", \"ar\"]\n";
        let profile = parse_builtin(text, "profiles/x.toml").expect("profile");
        assert_eq!(UsageTracker::new().unused(&profile), []);
    }
}
