//! Accepting one finding into the crate's profile (`learn --accept`'s per-item twin, used by
//! the TUI): the finding's subject becomes an entry of the list that would have allowed it.
use std::path::{Path, PathBuf};

use super::{LearnError, generalize};
use crate::{
    attribution::Role,
    policy::{Code, Finding},
    profile::{self, DocEntry, ProfileDoc, RoleDoc, RuleList, Vars},
};

/// A change to one profile file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileChange {
    /// The file.
    pub path: PathBuf,
    /// Its content before (None: a new file).
    pub before: Option<String>,
    /// Its content after.
    pub after: String,
}

impl ProfileChange {
    /// Writes the change.
    pub fn apply(&self) -> Result<(), LearnError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| LearnError::Write {
                path: dir.to_owned(),
                error,
            })?;
        }
        std::fs::write(&self.path, &self.after).map_err(|error| LearnError::Write {
            path: self.path.clone(),
            error,
        })
    }
}

/// The change that accepting `finding` makes to its crate's profile in `dir`; nothing is
/// written until [`ProfileChange::apply`]. `vars` are the crate's profile variables.
pub fn accept(finding: &Finding, dir: &Path, vars: &Vars) -> Result<ProfileChange, LearnError> {
    let krate = finding.krate.as_ref().ok_or_else(|| {
        LearnError::NotAcceptable(format!("{}: no crate to write a profile for", finding.code))
    })?;
    let role = match finding.role {
        Some(r @ (Role::BuildScript | Role::ProcMacro)) => r,
        other => {
            return Err(LearnError::NotAcceptable(format!(
                "{}: profiles are for build scripts and proc-macros, not {}",
                finding.code,
                other
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "this".to_owned())
            )));
        }
    };
    // The file the loader matched for this crate, whatever it is called: never a second one.
    let path = profile::file_for(dir, &krate.name).map_err(super::first_error)?;
    let before = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(LearnError::Write { path, error }),
    };
    let existing = before
        .as_deref()
        .map(|t| profile::parse(t, &path))
        .transpose()?;
    let mut doc = existing
        .as_ref()
        .map(ProfileDoc::from_profile)
        .unwrap_or_else(|| ProfileDoc {
            krate: krate.name.clone(),
            header: vec![
                "Profile started by accepting a buildwatch finding; review it.".to_owned(),
            ],
            ..ProfileDoc::default()
        });
    if let Some(version) = &krate.version {
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
    let list = finding
        .list
        .as_deref()
        .and_then(RuleList::from_key)
        .ok_or_else(|| {
            LearnError::NotAcceptable(format!(
                "{} findings cannot be accepted into a profile",
                finding.code
            ))
        })?;
    let entry = match list {
        RuleList::Exec => super::exec_entry(&finding.subject, vars),
        RuleList::Network => super::network_entry(&finding.subject),
        _ => generalize::escape_glob_keep_vars(&generalize::substitute(&finding.subject, vars)),
    };
    let entry = if list == RuleList::Exec {
        generalize::escape_program(&entry)
    } else {
        entry
    };
    let note = match finding.code {
        Code::SensitiveRead
        | Code::UnexpectedNetwork
        | Code::PersistenceWrite
        | Code::AgentSocket
        | Code::DroppedExec
        | Code::SourceTamper
        | Code::ArtifactTamper
        | Code::LinkInjection
        | Code::ProjectRead => Some(format!("accepted {} finding", finding.code)),
        _ => None,
    };
    let entries = table.list_mut(list);
    if !entries.iter().any(|e| e.text == entry) {
        entries.push(DocEntry {
            text: entry,
            comment: note,
        });
    }
    let after = profile::render(&doc);
    profile::parse(&after, &path)?;
    Ok(ProfileChange {
        path,
        before,
        after,
    })
}

/// A line diff of a change (`-`/`+` lines, unchanged lines with a space), for showing before
/// writing.
pub fn diff(change: &ProfileChange) -> String {
    let before: Vec<&str> = change.before.as_deref().unwrap_or("").lines().collect();
    let after: Vec<&str> = change.after.lines().collect();
    // Longest common subsequence, small files.
    let (n, m) = (before.len(), after.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if before[i] == after[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && before[i] == after[j] {
            out.push_str(&format!("  {}\n", before[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", after[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", before[i]));
            i += 1;
        }
    }
    out
}
