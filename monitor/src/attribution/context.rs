//! Workspace facts from `cargo metadata`: they confirm and enrich what the events say (versions
//! of proc-macros built in an earlier run, the workspace root, the target directory). Attribution
//! works without them, e.g. in replay.
use crate::model::{CrateRef, paths};

/// One package of the build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageFact {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Directory holding its Cargo.toml.
    pub manifest_dir: String,
    /// Name of its library target as rustc sees it (`proc_macro2`), if it has one.
    pub lib_name: Option<String>,
    /// It has a build script.
    pub has_build_script: bool,
    /// Its library is a proc-macro.
    pub is_proc_macro: bool,
    /// It is a member of the workspace.
    pub workspace_member: bool,
}

/// What is known about the workspace being built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildContext {
    /// Workspace root.
    pub workspace_root: Option<String>,
    /// Target directory.
    pub target_dir: Option<String>,
    /// CARGO_HOME (registry sources live below it).
    pub cargo_home: Option<String>,
    /// Every package in the dependency graph.
    pub packages: Vec<PackageFact>,
}

impl BuildContext {
    /// Reads the output of `cargo metadata --format-version 1`.
    pub fn from_metadata(metadata: &cargo_metadata::Metadata, cargo_home: Option<String>) -> Self {
        let members: std::collections::HashSet<_> = metadata.workspace_members.iter().collect();
        let packages = metadata
            .packages
            .iter()
            .map(|p| {
                let lib = p.targets.iter().find(|t| {
                    t.kind.iter().any(|k| {
                        matches!(
                            k,
                            cargo_metadata::TargetKind::Lib
                                | cargo_metadata::TargetKind::RLib
                                | cargo_metadata::TargetKind::ProcMacro
                                | cargo_metadata::TargetKind::DyLib
                        )
                    })
                });
                PackageFact {
                    name: p.name.to_string(),
                    version: p.version.to_string(),
                    manifest_dir: p
                        .manifest_path
                        .parent()
                        .map(|d| paths::clean_dir(d.as_str(), None).unwrap_or_default())
                        .unwrap_or_default(),
                    lib_name: lib.map(|t| t.name.replace('-', "_")),
                    has_build_script: p
                        .targets
                        .iter()
                        .any(|t| t.kind.contains(&cargo_metadata::TargetKind::CustomBuild)),
                    is_proc_macro: lib
                        .is_some_and(|t| t.kind.contains(&cargo_metadata::TargetKind::ProcMacro)),
                    workspace_member: members.contains(&p.id),
                }
            })
            .collect();
        // As the kernel writes paths (a `CARGO_TARGET_DIR=./t` comes back with its `./`).
        let dir = |d: &str| paths::clean_dir(d, None).unwrap_or_else(|| d.to_owned());
        Self {
            workspace_root: Some(dir(metadata.workspace_root.as_str())),
            target_dir: Some(dir(metadata.target_directory.as_str())),
            cargo_home,
            packages,
        }
    }

    /// The version of package `name`, when exactly one version of it is in the build.
    pub fn unique_version(&self, name: &str) -> Option<&str> {
        let mut versions = self
            .packages
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.version.as_str());
        let first = versions.next()?;
        versions.all(|v| v == first).then_some(first)
    }

    /// The package whose library is named `lib_name` (as in `lib<lib_name>-<hash>.so`), with its
    /// version when only one version is in the build; the library name itself otherwise.
    pub fn crate_for_lib(&self, lib_name: &str) -> CrateRef {
        let matches: Vec<&PackageFact> = self
            .packages
            .iter()
            .filter(|p| p.lib_name.as_deref() == Some(lib_name))
            .collect();
        match matches.as_slice() {
            [one] => CrateRef {
                name: one.name.clone(),
                version: Some(one.version.clone()),
            },
            [first, rest @ ..] if rest.iter().all(|p| p.name == first.name) => CrateRef {
                name: first.name.clone(),
                version: None,
            },
            _ => CrateRef {
                name: lib_name.to_owned(),
                version: None,
            },
        }
    }
}
