//! `buildwatch profiles`: before anything is built, which crates of a workspace will run code
//! during the build (a build script, a proc-macro) and which profile, if any, covers each one's
//! version, decided by the same lookup a watched run makes ([`ProfileSet`]).
//!
//! Pure: [`survey`] reads `cargo metadata` output; running cargo is in [`cargo`], printing in
//! [`output`].
pub mod cargo;
mod graph;
pub mod output;

pub use graph::Target;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cargo_metadata::{Metadata, PackageId, TargetKind};
use serde::Serialize;

use crate::{
    attribution::Role,
    profile::{Profile, ProfileSet, ProfileSource},
};

/// One crate (package at one version) that runs code at build time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// What of it runs during the build: `build-script`, `proc-macro` or both.
    pub roles: Vec<Role>,
    /// Where it comes from.
    pub source: Source,
    /// Reached only through dev-dependencies: built by `cargo test`, not by `cargo build`.
    pub test_only: bool,
    /// Which profile covers it.
    pub coverage: Coverage,
}

/// Where a package comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A member of the workspace (your own code).
    Workspace,
    /// A registry (crates.io or another).
    Registry,
    /// A git repository.
    Git,
    /// A path dependency outside the workspace.
    Path,
}

/// Where a profile comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The user's profiles directory.
    User,
    /// Shipped with buildwatch.
    Shipped,
}

/// What covers one crate's version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Coverage {
    /// A profile covers this version: what it allows is checked, the rest is a finding.
    Covered {
        /// User or shipped.
        origin: Origin,
        /// The profile (a file, or the shipped profile's name).
        profile: String,
    },
    /// The crate's profile was written for other versions: what this version does beyond it is
    /// reported as `new-behaviour`. (A user profile replaces the shipped one even then.)
    OtherVersions {
        /// User or shipped.
        origin: Origin,
        /// The profile.
        profile: String,
        /// The versions it covers.
        versions: Vec<String>,
    },
    /// No profile: the run checks the crate against the built-in baseline alone (and lists it
    /// as running without a profile).
    None,
}

impl Coverage {
    fn of(profile: Option<&Profile>, version: &str) -> Coverage {
        let Some(profile) = profile else {
            return Coverage::None;
        };
        let (origin, name) = match &profile.source {
            ProfileSource::File(path) => (Origin::User, path.display().to_string()),
            ProfileSource::BuiltIn(name) => (Origin::Shipped, (*name).to_owned()),
        };
        // As a run decides: an unparsable version is covered only by a profile for every version.
        let covers = profile.covers_version(Some(version));
        if covers {
            Coverage::Covered {
                origin,
                profile: name,
            }
        } else {
            Coverage::OtherVersions {
                origin,
                profile: name,
                versions: profile.versions.iter().map(ToString::to_string).collect(),
            }
        }
    }
}

/// Every crate of the resolved dependency graph (as `cargo metadata` gives it, for `target`)
/// that has a build script or is a proc-macro, sorted by name and version, with the profile
/// covering it.
///
/// Only packages the build reaches count (optional dependencies nobody enabled are not built,
/// even where `cargo metadata` lists them); a package reached only through the workspace
/// members' dev-dependencies is marked test-only.
pub fn survey(metadata: &Metadata, target: &Target, profiles: &ProfileSet) -> Vec<Entry> {
    let members: BTreeSet<&PackageId> = metadata.workspace_members.iter().collect();
    let Some(resolve) = &metadata.resolve else {
        return Vec::new();
    };
    let built = graph::reachable(metadata, target, &members, false);
    let tested = graph::reachable(metadata, target, &members, true);
    let mut entries: BTreeMap<(String, semver::Version), Entry> = BTreeMap::new();
    let packages: HashMap<&PackageId, &cargo_metadata::Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    for node in &resolve.nodes {
        let Some(package) = packages.get(&node.id) else {
            continue;
        };
        if !tested.contains(&node.id) {
            continue;
        }
        let kinds = || package.targets.iter().flat_map(|t| t.kind.iter());
        let mut roles = Vec::new();
        if kinds().any(|k| *k == TargetKind::CustomBuild) {
            roles.push(Role::BuildScript);
        }
        if kinds().any(|k| *k == TargetKind::ProcMacro) {
            roles.push(Role::ProcMacro);
        }
        if roles.is_empty() {
            continue;
        }
        let source = if members.contains(&package.id) {
            Source::Workspace
        } else {
            match package.source.as_ref().map(|s| s.repr.as_str()) {
                Some(s) if s.starts_with("git+") => Source::Git,
                Some(_) => Source::Registry,
                None => Source::Path,
            }
        };
        let version = package.version.to_string();
        entries.insert(
            (package.name.to_string(), package.version.clone()),
            Entry {
                name: package.name.to_string(),
                coverage: Coverage::of(profiles.get(&package.name), &version),
                version,
                roles,
                source,
                test_only: !built.contains(&package.id),
            },
        );
    }
    entries.into_values().collect()
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Crates listed.
    pub crates: usize,
    /// Covered by a user profile.
    pub user: usize,
    /// Covered by a shipped profile.
    pub shipped: usize,
    /// With a profile for other versions only.
    pub other_versions: usize,
    /// Without a profile.
    pub none: usize,
}

impl Totals {
    /// Adds up `entries`.
    pub fn of(entries: &[Entry]) -> Totals {
        let mut t = Totals {
            crates: entries.len(),
            ..Totals::default()
        };
        for e in entries {
            match &e.coverage {
                Coverage::Covered {
                    origin: Origin::User,
                    ..
                } => t.user += 1,
                Coverage::Covered {
                    origin: Origin::Shipped,
                    ..
                } => t.shipped += 1,
                Coverage::OtherVersions { .. } => t.other_versions += 1,
                Coverage::None => t.none += 1,
            }
        }
        t
    }
}
