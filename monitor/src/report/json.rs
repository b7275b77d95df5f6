//! The JSON report (`--report`), schema 1: docs/reports.md.
use std::collections::BTreeMap;

use serde::Serialize;

use super::*;

/// A crate as the JSON report names it: `version` always present (null when unknown).
#[derive(Serialize)]
pub(super) struct JsonCrateRef<'a> {
    name: &'a str,
    version: Option<&'a str>,
}

impl<'a> From<&'a CrateRef> for JsonCrateRef<'a> {
    fn from(k: &'a CrateRef) -> Self {
        Self {
            name: &k.name,
            version: k.version.as_deref(),
        }
    }
}

/// The JSON report (docs/cli.md), fields in the contract's order.
#[derive(Serialize)]
pub(super) struct JsonReport<'a> {
    schema: u32,
    tool: JsonTool,
    command: &'a [String],
    user: Option<&'a str>,
    exit_status: Option<i32>,
    lost_events: u64,
    coverage_gaps: &'a [String],
    counts: BTreeMap<&'a str, u64>,
    crates: Vec<JsonCrate<'a>>,
    unprofiled: Vec<JsonUnprofiled<'a>>,
    /// Every program image executed or loaded, with its SHA-256 (issue 18).
    images: &'a [crate::images::ProgramImage],
    findings: Vec<JsonFinding<'a>>,
}

/// A build script or proc-macro that ran without a profile.
#[derive(Serialize)]
pub(super) struct JsonUnprofiled<'a> {
    name: &'a str,
    version: Option<&'a str>,
    role: &'static str,
}

#[derive(Serialize)]
pub(super) struct JsonTool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
pub(super) struct JsonCrate<'a> {
    name: &'a str,
    version: Option<&'a str>,
    roles: Vec<&'static str>,
    exec: &'a BTreeSet<String>,
    read: &'a BTreeSet<String>,
    write: &'a BTreeSet<String>,
    network: &'a BTreeSet<String>,
    /// Per role.
    counts: BTreeMap<&'static str, JsonCounts>,
}

#[derive(Serialize)]
pub(super) struct JsonCounts {
    exec: u64,
    read: u64,
    write: u64,
    network: u64,
    ambiguous: bool,
}

/// One finding: every key always present (null when unknown), so that consumers see one shape.
#[derive(Serialize)]
pub(super) struct JsonFinding<'a> {
    code: &'static str,
    severity: &'static str,
    #[serde(rename = "crate")]
    krate: Option<JsonCrateRef<'a>>,
    role: Option<&'static str>,
    process: Option<JsonProcess<'a>>,
    detail: &'a str,
    subject: &'a str,
    profile: Option<&'a str>,
    list: Option<&'a str>,
    candidates: Vec<JsonCrateRef<'a>>,
    /// False when `crate` is one of `candidates`, not a certainty.
    exact: bool,
    /// `--enforce` killed the process that did it, before it returned to user space.
    killed: bool,
    count: u64,
    time_ns: u64,
}

#[derive(Serialize)]
pub(super) struct JsonProcess<'a> {
    pid: u32,
    exe: &'a str,
    chain: &'a [String],
}

impl<'a> From<&'a Finding> for JsonFinding<'a> {
    fn from(f: &'a Finding) -> Self {
        Self {
            code: f.code.as_str(),
            severity: severity_name(f.severity),
            krate: f.krate.as_ref().map(Into::into),
            role: f.role.map(Role::as_str),
            process: f.process.as_ref().map(|p| JsonProcess {
                pid: p.pid,
                exe: &p.exe,
                chain: &p.chain,
            }),
            detail: &f.detail,
            subject: &f.subject,
            profile: f.profile.as_deref(),
            list: f.list.as_deref(),
            candidates: f.candidates.iter().map(Into::into).collect(),
            exact: f.exact(),
            killed: f.killed,
            count: f.count,
            time_ns: f.time_ns,
        }
    }
}

/// One finding as the JSON report writes it (`buildwatch guard --log` adds the build's fields).
pub fn finding_json(f: &Finding) -> serde_json::Value {
    serde_json::to_value(JsonFinding::from(f)).unwrap_or(serde_json::Value::Null)
}

/// The JSON report (`--report`), schema 1 of docs/cli.md.
pub fn json(run: &RunReport, meta: &RunMeta) -> String {
    let crates = crates(run);
    // Every event kind is listed, 0 when none was seen.
    let mut counts: BTreeMap<&str, u64> = EventKind::NAMES.iter().map(|k| (*k, 0)).collect();
    counts.extend(run.summary.per_kind.iter().map(|(k, n)| (*k, *n)));
    let report = JsonReport {
        schema: JSON_SCHEMA,
        tool: JsonTool {
            name: "buildwatch",
            version: env!("CARGO_PKG_VERSION"),
        },
        command: &meta.command,
        user: meta.user.as_deref(),
        exit_status: meta.exit_status,
        lost_events: run.lost_events,
        coverage_gaps: &run.coverage_gaps,
        counts,
        crates: crates
            .iter()
            .map(|(k, e)| JsonCrate {
                name: &k.name,
                version: k.version.as_deref(),
                roles: e.roles.iter().map(|r| r.as_str()).collect(),
                exec: &e.exec,
                read: &e.read,
                write: &e.write,
                network: &e.network,
                counts: e
                    .counts
                    .iter()
                    .map(|(r, c)| {
                        (
                            r.as_str(),
                            JsonCounts {
                                exec: c.exec,
                                read: c.read,
                                write: c.write,
                                network: c.network,
                                ambiguous: c.ambiguous,
                            },
                        )
                    })
                    .collect(),
            })
            .collect(),
        unprofiled: run
            .unprofiled
            .iter()
            .map(|(k, r)| JsonUnprofiled {
                name: &k.name,
                version: k.version.as_deref(),
                role: r.as_str(),
            })
            .collect(),
        images: &run.images,
        findings: run.findings.iter().map(Into::into).collect(),
    };
    pretty(&report)
}
