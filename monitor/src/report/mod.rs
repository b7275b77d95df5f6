//! Reports: the JSON report of docs/cli.md, SARIF 2.1.0 for code scanning, a Markdown summary,
//! and the plain-text summary of the end of a run (text.rs).
//! docs/reports.md describes all three.
//!
//! Rendering is pure: a finished run in, text out. The only I/O is [`Sources::discover`], which
//! reads the files SARIF locations point into (Cargo.lock, profiles) at the binary's edge.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    attribution::{CrateRef, Role},
    model::EventKind,
    pipeline::RunReport,
    policy::{Code, DEFAULT_FAIL_ON, Finding, Severity},
};

/// The JSON report's schema version (docs/cli.md).
pub const JSON_SCHEMA: u32 = 1;

/// The schema the SARIF output declares, and is tested against (tests/sarif/).
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Where to read about the tool (the workspace's `repository`).
const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");

/// Most results in the SARIF output. GitHub code scanning rejects a run of more than 25,000 and
/// shows at most 5,000 (by severity); the rest are in the JSON report.
pub const MAX_SARIF_RESULTS: usize = 5000;

/// Most findings listed in the Markdown summary (a step summary may not exceed 1 MiB).
pub const MAX_MARKDOWN_FINDINGS: usize = 100;

/// Facts about the run besides what the pipeline gathered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunMeta {
    /// The watched command.
    pub command: Vec<String>,
    /// Its exit status (None in replay).
    pub exit_status: Option<i32>,
    /// The user it ran as.
    pub user: Option<String>,
}

/// Per crate: roles and notable behaviour, merged over roles, and counts per role.
#[derive(Default)]
struct CrateEntry {
    roles: BTreeSet<Role>,
    exec: BTreeSet<String>,
    read: BTreeSet<String>,
    write: BTreeSet<String>,
    network: BTreeSet<String>,
    counts: BTreeMap<Role, Counts>,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    exec: u64,
    read: u64,
    write: u64,
    network: u64,
    /// Some events were attributed to the proc-macro as one of several candidates.
    ambiguous: bool,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.exec += other.exec;
        self.read += other.read;
        self.write += other.write;
        self.network += other.network;
        self.ambiguous |= other.ambiguous;
    }
}

impl CrateEntry {
    /// What the crate's build script and proc-macro did (not rustc compiling it).
    fn scrutinised(&self) -> Counts {
        let mut total = Counts::default();
        for (role, c) in &self.counts {
            if matches!(role, Role::BuildScript | Role::ProcMacro) {
                total.add(*c);
            }
        }
        total
    }
}

fn crates(run: &RunReport) -> BTreeMap<CrateRef, CrateEntry> {
    let mut out: BTreeMap<CrateRef, CrateEntry> = BTreeMap::new();
    // Build scripts and proc-macros that ran, even those that did nothing observable.
    for (krate, role) in &run.seen {
        out.entry(krate.clone()).or_default().roles.insert(*role);
    }
    for (key, a) in run.activity.entries() {
        let Some(krate) = &key.krate else { continue };
        if !matches!(key.role, Role::BuildScript | Role::ProcMacro | Role::Rustc) {
            continue;
        }
        let e = out.entry(krate.clone()).or_default();
        e.roles.insert(key.role);
        e.exec.extend(a.programs.iter().cloned());
        e.read.extend(a.unusual_reads.iter().cloned());
        e.write.extend(a.unusual_writes.iter().cloned());
        e.network.extend(a.hosts.iter().cloned());
        e.counts.entry(key.role).or_default().add(Counts {
            exec: a.execs,
            read: a.reads,
            write: a.writes,
            network: a.network,
            ambiguous: a.ambiguous,
        });
    }
    out
}

fn crate_json(k: &CrateRef) -> Value {
    json!({"name": k.name, "version": k.version})
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn pretty(value: &impl Serialize) -> String {
    // Nothing here has non-string map keys, the one way serializing could fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

pub mod attestation;
mod json;
mod markdown;
mod sarif;
mod sarif_rules;
mod text;

pub use json::{finding_json, json};
pub use markdown::markdown;
pub use sarif::{SourceFile, Sources, sarif};

#[cfg(test)]
mod tests;
