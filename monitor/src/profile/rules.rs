//! The validated profile: what one crate's build script and proc-macro may do.
use std::{fmt, path::PathBuf};

use super::{
    error::Location,
    link::LinkPattern,
    network::NetPattern,
    pattern::{ExecPattern, PathPattern},
};
use crate::attribution::Role;

/// One crate's allow profile (schema 1), validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The crate (package) name, as written in the file.
    pub krate: String,
    /// The versions the profile covers: any requirement may match; empty means every version.
    pub versions: Vec<semver::VersionReq>,
    /// What the crate's build script (and everything it spawns) may do; `None` when the profile
    /// has no `[build-script]` table, which allows nothing.
    pub build_script: Option<RoleRules>,
    /// What the crate's proc-macro may do inside rustc; `None` allows nothing.
    pub proc_macro: Option<RoleRules>,
    /// Where the profile came from.
    pub source: ProfileSource,
}

impl Profile {
    /// Whether the profile applies to `version` of the crate.
    pub fn covers(&self, version: &semver::Version) -> bool {
        self.versions.is_empty() || self.versions.iter().any(|req| req.matches(version))
    }

    /// Whether the profile applies to the crate's `version` as attribution knows it: a version
    /// that is unknown or not semver is covered only by a profile for every version.
    pub fn covers_version(&self, version: Option<&str>) -> bool {
        match version.map(semver::Version::parse) {
            Some(Ok(v)) => self.covers(&v),
            _ => self.versions.is_empty(),
        }
    }

    /// The rules for `role`: [`Role::BuildScript`] and [`Role::ProcMacro`] have a table each;
    /// other roles have none in a crate profile.
    pub fn rules(&self, role: Role) -> Option<&RoleRules> {
        match role {
            Role::BuildScript => self.build_script.as_ref(),
            Role::ProcMacro => self.proc_macro.as_ref(),
            Role::Cargo | Role::Rustc | Role::Tool | Role::Command => None,
        }
    }
}

/// Where a profile came from, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProfileSource {
    /// A file on disk.
    File(PathBuf),
    /// A profile shipped inside buildwatch, by name (e.g. `profiles/libz-sys.toml`).
    BuiltIn(&'static str),
}

impl fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileSource::File(path) => write!(f, "{}", path.display()),
            ProfileSource::BuiltIn(name) => write!(f, "{name} (built in)"),
        }
    }
}

/// The allow lists of one role table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleRules {
    /// Programs that may be executed.
    pub exec: Vec<Rule<ExecPattern>>,
    /// Files that may be read (never covers a sensitive path; see `sensitive_read`).
    pub read: Vec<Rule<PathPattern>>,
    /// Files that may be written or created.
    pub write: Vec<Rule<PathPattern>>,
    /// Sensitive files that may be read, accepted explicitly.
    pub sensitive_read: Vec<Rule<PathPattern>>,
    /// Endpoints that may be connected to.
    pub network: Vec<Rule<NetPattern>>,
    /// Link directives the build script may give cargo (see `link-injection`).
    pub link: Vec<Rule<LinkPattern>>,
}

impl RoleRules {
    /// The entries of `list` as written, with their locations.
    pub fn entries(&self, list: RuleList) -> Vec<(&str, Location)> {
        fn texts<P>(rules: &[Rule<P>]) -> Vec<(&str, Location)> {
            rules
                .iter()
                .map(|rule| (rule.text.as_str(), rule.location))
                .collect()
        }
        match list {
            RuleList::Exec => texts(&self.exec),
            RuleList::Read => texts(&self.read),
            RuleList::Write => texts(&self.write),
            RuleList::SensitiveRead => texts(&self.sensitive_read),
            RuleList::Network => texts(&self.network),
            RuleList::Link => texts(&self.link),
        }
    }
}

/// One allow entry: its pattern, its text as written and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule<P> {
    /// The parsed pattern.
    pub pattern: P,
    /// The entry as written in the profile.
    pub text: String,
    /// Where the entry is in the profile.
    pub location: Location,
}

/// The allow lists of a role table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleList {
    /// `exec`
    Exec,
    /// `read`
    Read,
    /// `write`
    Write,
    /// `sensitive-read`
    SensitiveRead,
    /// `network`
    Network,
    /// `link`
    Link,
}

impl RuleList {
    /// Every list, in file order.
    pub const ALL: [RuleList; 6] = [
        RuleList::Exec,
        RuleList::Read,
        RuleList::Write,
        RuleList::SensitiveRead,
        RuleList::Network,
        RuleList::Link,
    ];

    /// The key as written in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleList::Exec => "exec",
            RuleList::Read => "read",
            RuleList::Write => "write",
            RuleList::SensitiveRead => "sensitive-read",
            RuleList::Network => "network",
            RuleList::Link => "link",
        }
    }

    /// The list called `key` in a role table.
    pub fn from_key(key: &str) -> Option<RuleList> {
        RuleList::ALL.into_iter().find(|list| list.as_str() == key)
    }
}

impl fmt::Display for RuleList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(versions: &[&str]) -> Profile {
        Profile {
            krate: "x".into(),
            versions: versions
                .iter()
                .map(|v| semver::VersionReq::parse(v).expect("req"))
                .collect(),
            build_script: Some(RoleRules::default()),
            proc_macro: None,
            source: ProfileSource::BuiltIn("x.toml"),
        }
    }

    fn version(text: &str) -> semver::Version {
        semver::Version::parse(text).expect("version")
    }

    #[test]
    fn covers_versions() {
        assert!(profile(&[]).covers(&version("0.0.1")));
        let p = profile(&["^1.1", "=0.9.3"]);
        assert!(p.covers(&version("1.2.0")));
        assert!(p.covers(&version("0.9.3")));
        assert!(!p.covers(&version("1.0.9")));
        assert!(!p.covers(&version("2.0.0")));
    }

    #[test]
    fn covers_known_and_unknown_versions() {
        let any = profile(&[]);
        assert!(any.covers_version(Some("1.2.3")));
        assert!(any.covers_version(None));
        assert!(any.covers_version(Some("not-semver")));
        let some = profile(&["^1.1"]);
        assert!(some.covers_version(Some("1.2.0")));
        assert!(!some.covers_version(Some("1.0.0")));
        assert!(!some.covers_version(None));
        assert!(!some.covers_version(Some("not-semver")));
    }

    #[test]
    fn rules_per_role() {
        let p = profile(&[]);
        assert!(p.rules(Role::BuildScript).is_some());
        assert!(p.rules(Role::ProcMacro).is_none());
        assert!(p.rules(Role::Rustc).is_none());
        assert!(p.rules(Role::Tool).is_none());
    }

    #[test]
    fn list_names() {
        for list in RuleList::ALL {
            assert_eq!(RuleList::from_key(list.as_str()), Some(list));
        }
        assert_eq!(RuleList::from_key("sensitive_read"), None);
    }
}
