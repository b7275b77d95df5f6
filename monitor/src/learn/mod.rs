//! `buildwatch learn`: record what each crate's build script and proc-macro did into profiles.
//!
//! What an event is comes from the policy's classifier ([`crate::policy::classify`]), so learning
//! writes exactly the entries checking would use. Only what the built-in baseline does not
//! already allow is written, generalized (variables for machine-specific prefixes, globs for
//! directories of many files). Sensitive reads, persistence writes and network are never allowed
//! silently: they are written as a "NOT allowed" comment block for a person to review, and become
//! rules only when accepted explicitly (`--accept`, or the TUI). What no profile can allow
//! (fileless execution, tampering, raw sockets, ...) is only ever listed for review.
mod accept;
pub mod generalize;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

pub use accept::{ProfileChange, accept, diff};
use thiserror::Error;

use crate::{
    attribution::{Attributor, CrateRef, Role},
    model::{Event, paths::BIN_DIRS},
    policy::{
        AgentEnv, Allow, CiChannels, Code, Run, classify, classify::link_injection, dropped_exec,
        vars,
    },
    profile::{self, DocEntry, NotAllowed, ProfileDoc, RoleDoc, RuleList},
};

/// Learning failed to read or write a profile.
#[derive(Debug, Error)]
pub enum LearnError {
    /// An existing profile cannot be read or parsed.
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    /// A file cannot be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The finding cannot become a profile entry.
    #[error("{0}")]
    NotAcceptable(String),
}

/// What may be turned into rules without review.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    /// Accept sensitive reads.
    pub sensitive_read: bool,
    /// Accept network endpoints.
    pub network: bool,
    /// Accept persistence writes.
    pub persistence_write: bool,
}

impl Accept {
    /// Parses `--accept`: comma-separated `sensitive-read`, `network`, `persistence-write`.
    pub fn parse(spec: &str) -> Result<Accept, String> {
        let mut a = Accept::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "sensitive-read" => a.sensitive_read = true,
                "network" => a.network = true,
                "persistence-write" => a.persistence_write = true,
                other => {
                    return Err(format!(
                        "cannot accept `{other}`: one of sensitive-read, network, persistence-write"
                    ));
                }
            }
        }
        Ok(a)
    }
}

/// What one crate did in one role, beyond the baseline: the entries each verdict would take
/// (variables substituted), by list, and what no profile can allow, by finding code.
#[derive(Clone, Debug, Default)]
struct Observed {
    versions: BTreeSet<String>,
    exec: BTreeSet<String>,
    read: BTreeSet<String>,
    write: BTreeSet<String>,
    sensitive: BTreeSet<String>,
    persistence: BTreeSet<String>,
    network: BTreeSet<String>,
    /// `link` entries (see [`generalize::link_entry`]).
    link: BTreeSet<String>,
    /// Verdicts no profile allows ([`Allow::Never`]): listed for review, never written as
    /// rules.
    never: BTreeMap<Code, BTreeSet<String>>,
}

/// Collects observations during a run.
#[derive(Debug, Default)]
pub struct Learner {
    observed: BTreeMap<(String, Role), Observed>,
    /// The agent sockets the environment names, as the policy sees them.
    agents: AgentEnv,
    /// The CI job's channels to later steps, as the policy sees them.
    ci: CiChannels,
}

/// A profile learning wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The crate.
    pub krate: String,
    /// The file.
    pub path: PathBuf,
    /// It did not exist before.
    pub created: bool,
    /// Items left for review (not allowed).
    pub review: usize,
}

impl Learner {
    /// A learner with nothing observed.
    pub fn new() -> Self {
        Self {
            observed: BTreeMap::new(),
            agents: AgentEnv::from_process(),
            ci: CiChannels::from_process(),
        }
    }

    /// Records one attributed event: what the policy's classifier says it is, as the entry of
    /// the list that would allow it.
    pub fn observe(&mut self, event: &Event, attributor: &Attributor) {
        let run = Run {
            agents: &self.agents,
            ci: &self.ci,
            attribution: Some(attributor),
            // Learning judges what crates do, not reaches for this process.
            monitor_pid: None,
        };
        // Link directives are the emitting build script's to allow.
        for verdict in link_injection(event, &run) {
            if let Some(owner) = verdict.blame.as_ref().and_then(|b| b.crate_ref()) {
                let v = vars(&attributor.places_for(Some(&owner)));
                self.observed
                    .entry((owner.name.clone(), Role::BuildScript))
                    .or_default()
                    .link
                    .insert(generalize::link_entry(&verdict.subject, &v));
            }
        }
        // A program the run wrote is the writer's to allow, whoever runs it (as the policy
        // judges it).
        if let Some(verdict) = dropped_exec(event, &run) {
            if let Some(writer) = &verdict.blame
                && let Some(krate) = writer.crate_ref()
                && matches!(writer.policy_role(), Role::BuildScript | Role::ProcMacro)
            {
                let v = vars(&attributor.places_for(Some(&krate)));
                let o = self
                    .observed
                    .entry((krate.name.clone(), writer.policy_role()))
                    .or_default();
                o.exec.insert(exec_entry(&verdict.subject, &v));
            }
            return;
        }
        let Some(actor) = &event.actor else { return };
        let role = actor.policy_role();
        if !matches!(role, Role::BuildScript | Role::ProcMacro) {
            return;
        }
        let Some(krate) = actor.crate_ref() else {
            return;
        };
        let places = attributor.places_for_process(event.pid, Some(&krate));
        let verdict = classify(event, role, &places, &run);
        let o = self.observed.entry((krate.name.clone(), role)).or_default();
        if let Some(version) = &krate.version {
            o.versions.insert(version.clone());
        }
        let Some(verdict) = verdict else { return };
        let v = vars(&places);
        let subject = verdict.subject.as_str();
        match verdict.allow {
            Allow::Never => {
                o.never
                    .entry(verdict.code)
                    .or_default()
                    .insert(subject.to_owned());
            }
            Allow::List(RuleList::Exec) => {
                o.exec.insert(exec_entry(subject, &v));
            }
            Allow::List(RuleList::Read) => {
                o.read.insert(generalize::substitute(subject, &v));
            }
            Allow::List(RuleList::Write) if verdict.code == Code::PersistenceWrite => {
                o.persistence.insert(generalize::substitute(subject, &v));
            }
            Allow::List(RuleList::Write) => {
                o.write.insert(generalize::substitute(subject, &v));
            }
            Allow::List(RuleList::SensitiveRead) => {
                o.sensitive.insert(generalize::substitute(subject, &v));
            }
            Allow::List(RuleList::Network) => {
                o.network.insert(network_entry(subject));
            }
            Allow::List(RuleList::Link) => {
                o.link.insert(generalize::link_entry(subject, &v));
            }
        }
    }

    /// Notes a build script that ran or a proc-macro that was loaded, so that it gets a
    /// profile even if it did nothing beyond the baseline.
    pub fn saw(&mut self, krate: &CrateRef, role: Role) {
        let o = self.observed.entry((krate.name.clone(), role)).or_default();
        if let Some(version) = &krate.version {
            o.versions.insert(version.clone());
        }
    }

    /// Crates observed (with a build script or proc-macro that ran).
    pub fn crates(&self) -> BTreeSet<&str> {
        self.observed.keys().map(|(k, _)| k.as_str()).collect()
    }

    /// Writes or extends one profile per observed crate in `dir`.
    pub fn write(
        &self,
        dir: &Path,
        accept: Accept,
        header: &[String],
    ) -> Result<Vec<Written>, LearnError> {
        std::fs::create_dir_all(dir).map_err(|error| LearnError::Write {
            path: dir.to_owned(),
            error,
        })?;
        let mut by_crate: BTreeMap<&str, Vec<(Role, &Observed)>> = BTreeMap::new();
        for ((krate, role), o) in &self.observed {
            by_crate.entry(krate).or_default().push((*role, o));
        }
        let mut written = Vec::new();
        for (krate, roles) in by_crate {
            // The file the loader matched for this crate (`foo_bar.toml` for `foo-bar`), so
            // that learning never adds a second profile for one crate.
            let path = profile::file_for(dir, krate).map_err(first_error)?;
            let existing = if path.exists() {
                let text = std::fs::read_to_string(&path).map_err(|error| LearnError::Write {
                    path: path.clone(),
                    error,
                })?;
                Some(profile::parse(&text, &path)?)
            } else {
                None
            };
            let mut doc = existing
                .as_ref()
                .map(ProfileDoc::from_profile)
                .unwrap_or_else(|| ProfileDoc {
                    krate: krate.to_owned(),
                    ..ProfileDoc::default()
                });
            doc.header = header.to_vec();
            for (role, o) in roles {
                for version in &o.versions {
                    let covered = existing
                        .as_ref()
                        .is_some_and(|p| p.covers_version(Some(version)));
                    let req = format!("={version}");
                    if !covered && !doc.versions.contains(&req) {
                        doc.versions.push(req);
                    }
                }
                let table = match role {
                    Role::ProcMacro => doc.proc_macro.get_or_insert_with(RoleDoc::default),
                    _ => doc.build_script.get_or_insert_with(RoleDoc::default),
                };
                add(
                    table,
                    RuleList::Exec,
                    o.exec.iter().map(|e| generalize::escape_program(e)),
                    None,
                );
                add(
                    table,
                    RuleList::Read,
                    generalize::collapse(&o.read).into_iter(),
                    None,
                );
                add(
                    table,
                    RuleList::Write,
                    generalize::collapse(&o.write).into_iter(),
                    None,
                );
                add(
                    table,
                    RuleList::Link,
                    o.link.iter().cloned(),
                    Some("link directive seen while learning"),
                );
                let review = |kind: &str, items: &BTreeSet<String>, doc: &mut ProfileDoc| {
                    for item in items {
                        doc.not_allowed.push(NotAllowed {
                            kind: format!("{role} {kind}"),
                            text: item.clone(),
                        });
                    }
                };
                let table_add =
                    |doc: &mut ProfileDoc, list: RuleList, items: &BTreeSet<String>, note: &str| {
                        let table = match role {
                            Role::ProcMacro => doc.proc_macro.get_or_insert_with(RoleDoc::default),
                            _ => doc.build_script.get_or_insert_with(RoleDoc::default),
                        };
                        add(
                            table,
                            list,
                            items.iter().map(|s| generalize::escape_glob_keep_vars(s)),
                            Some(note),
                        );
                    };
                if accept.sensitive_read {
                    table_add(
                        &mut doc,
                        RuleList::SensitiveRead,
                        &o.sensitive,
                        "accepted with --accept sensitive-read",
                    );
                } else {
                    review("sensitive-read", &o.sensitive, &mut doc);
                }
                if accept.persistence_write {
                    table_add(
                        &mut doc,
                        RuleList::Write,
                        &o.persistence,
                        "persistence write accepted with --accept persistence-write",
                    );
                } else {
                    review("persistence-write", &o.persistence, &mut doc);
                }
                if accept.network {
                    let table = match role {
                        Role::ProcMacro => doc.proc_macro.get_or_insert_with(RoleDoc::default),
                        _ => doc.build_script.get_or_insert_with(RoleDoc::default),
                    };
                    add(
                        table,
                        RuleList::Network,
                        o.network.iter().cloned(),
                        Some("accepted with --accept network"),
                    );
                } else {
                    review("network", &o.network, &mut doc);
                }
                for (code, items) in &o.never {
                    review(review_kind(*code), items, &mut doc);
                }
            }
            let review = doc.not_allowed.len();
            let text = profile::render(&doc);
            // Whatever we write must read back.
            profile::parse(&text, &path)?;
            std::fs::write(&path, &text).map_err(|error| LearnError::Write {
                path: path.clone(),
                error,
            })?;
            written.push(Written {
                krate: krate.to_owned(),
                path,
                created: existing.is_none(),
                review,
            });
        }
        Ok(written)
    }
}

fn add(
    table: &mut RoleDoc,
    list: RuleList,
    items: impl Iterator<Item = String>,
    note: Option<&str>,
) {
    let entries = table.list_mut(list);
    for item in items {
        if !entries.iter().any(|e| e.text == item) {
            entries.push(DocEntry {
                text: item,
                comment: note.map(str::to_owned),
            });
        }
    }
}

/// A program as a profile entry: its name when it lives in a standard bin directory, else its
/// path with variables.
fn exec_entry(image: &str, vars: &profile::Vars) -> String {
    match image.rsplit_once('/') {
        Some((dir, name)) if BIN_DIRS.contains(&dir) => name.to_owned(),
        _ => generalize::substitute(image, vars),
    }
}

/// A network verdict's subject as a `network` entry: unix socket paths get `unix:`, a DNS
/// lookup (`dns:NAME`) becomes the name (which allows looking it up).
fn network_entry(subject: &str) -> String {
    if let Some(name) = subject.strip_prefix("dns:") {
        name.to_owned()
    } else if subject.starts_with('/') || subject.starts_with('@') {
        format!("unix:{subject}")
    } else {
        subject.to_owned()
    }
}

/// How a verdict no profile allows is listed for review: by its code, refused connections with
/// the rest of the network.
fn review_kind(code: Code) -> &'static str {
    match code {
        Code::UnexpectedNetwork | Code::AgentSocket => "network",
        other => other.as_str(),
    }
}

/// The first of a directory's profile errors (learning stops at it).
fn first_error(errors: Vec<profile::ProfileError>) -> LearnError {
    errors.into_iter().next().map_or_else(
        || LearnError::NotAcceptable("cannot read the profiles directory".to_owned()),
        LearnError::Profile,
    )
}

/// The profile variables of a crate instance, for callers outside a run (the TUI).
pub fn crate_vars(attributor: &Attributor, krate: &CrateRef) -> profile::Vars {
    vars(&attributor.places_for(Some(krate)))
}

#[cfg(test)]
mod tests;
