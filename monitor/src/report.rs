//! Reports: the JSON report of CLI.md, SARIF 2.1.0 for code scanning, and a Markdown summary.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::{
    attribution::{CrateRef, Role},
    pipeline::RunReport,
    policy::{Code, Finding, Severity},
};

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

/// Per crate: roles and notable behaviour, merged over roles.
#[derive(Default)]
struct CrateEntry {
    roles: BTreeSet<Role>,
    exec: BTreeSet<String>,
    read: BTreeSet<String>,
    write: BTreeSet<String>,
    network: BTreeSet<String>,
    counts: [u64; 4],
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
        e.counts[0] += a.execs;
        e.counts[1] += a.reads;
        e.counts[2] += a.writes;
        e.counts[3] += a.network;
    }
    out
}

/// The JSON report (`--report`), schema 1 of CLI.md.
pub fn json(run: &RunReport, meta: &RunMeta) -> String {
    let crates: Vec<Value> = crates(run)
        .into_iter()
        .map(|(k, e)| {
            json!({
                "name": k.name,
                "version": k.version,
                "roles": e.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "exec": e.exec,
                "read": e.read,
                "write": e.write,
                "network": e.network,
                "counts": {"exec": e.counts[0], "read": e.counts[1], "write": e.counts[2], "network": e.counts[3]},
            })
        })
        .collect();
    let value = json!({
        "schema": 1,
        "tool": {"name": "buildwatch", "version": env!("CARGO_PKG_VERSION")},
        "command": meta.command,
        "user": meta.user,
        "exit_status": meta.exit_status,
        "lost_events": run.lost_events,
        "counts": run.summary.per_kind,
        "crates": crates,
        "findings": run.findings,
    });
    let mut text =
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

fn sarif_level(code: Code, findings: &[Finding]) -> &'static str {
    match findings.iter().find(|f| f.code == code).map(|f| f.severity) {
        Some(Severity::Error) => "error",
        Some(Severity::Warning) => "warning",
        None => "warning",
    }
}

fn camel(code: Code) -> String {
    code.as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A stable identity for a finding across runs (code, crate, role, subject), for code scanning
/// to recognise the same alert.
fn fingerprint(f: &Finding) -> String {
    // FNV-1a: small, stable across platforms and versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let name = f.krate.as_ref().map(|k| k.name.as_str()).unwrap_or("");
    let role = f.role.map(|r| r.as_str()).unwrap_or("");
    for part in [f.code.as_str(), name, role, f.subject.as_str()] {
        for b in part.bytes().chain(std::iter::once(0u8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The findings as SARIF 2.1.0 (`--sarif`), as GitHub code scanning accepts it: one rule per
/// finding code, the crate and version in each message, the profile file as the location where
/// one applies (else Cargo.lock, where the dependency is pinned).
pub fn sarif(run: &RunReport, meta: &RunMeta) -> String {
    let findings: Vec<&Finding> = run.findings.iter().collect();
    let codes: Vec<Code> = Code::ALL.to_vec();
    let rules: Vec<Value> = codes
        .iter()
        .map(|&c| {
            json!({
                "id": c.as_str(),
                "name": camel(c),
                "shortDescription": {"text": c.description()},
                "fullDescription": {"text": format!("{}. Reported by buildwatch, which watches what build scripts and proc-macros do while cargo builds.", c.description())},
                "defaultConfiguration": {"level": sarif_level(c, &run.findings)},
                "help": {"text": help(c)},
                "properties": {"tags": ["security", "supply-chain"]},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let index = codes.iter().position(|c| *c == f.code).unwrap_or(0);
            let who = match (&f.krate, f.role) {
                (Some(k), Some(r)) => format!("{k} ({r})"),
                (Some(k), None) => k.to_string(),
                (None, _) => "the build".to_owned(),
            };
            let uri = match &f.profile {
                Some(p) if !p.starts_with("built-in") => p.clone(),
                _ => "Cargo.lock".to_owned(),
            };
            let mut properties = json!({"count": f.count});
            if let Some(k) = &f.krate {
                properties["crate"] = json!(k.name);
                properties["version"] = json!(k.version);
            }
            if let Some(r) = f.role {
                properties["role"] = json!(r.as_str());
            }
            if let Some(p) = &f.process {
                properties["process"] = json!(p);
            }
            json!({
                "ruleId": f.code.as_str(),
                "ruleIndex": index,
                "level": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": format!("{who}: {}", f.detail)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": {"startLine": 1}
                    }
                }],
                "partialFingerprints": {"buildwatch/v1": fingerprint(f)},
                "properties": properties,
            })
        })
        .collect();
    let mut invocation = json!({"executionSuccessful": run.lost_events == 0});
    if !meta.command.is_empty() {
        invocation["commandLine"] = json!(meta.command.join(" "));
    }
    if let Some(code) = meta.exit_status {
        invocation["exitCode"] = json!(code);
    }
    let value = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "buildwatch",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/buildwatch/buildwatch",
                "rules": rules,
            }},
            "invocations": [invocation],
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn help(code: Code) -> &'static str {
    match code {
        Code::UnexpectedNetwork
        | Code::SensitiveRead
        | Code::PersistenceWrite
        | Code::FilelessExec
        | Code::ProcessTamper => {
            "Treat as a possible supply-chain attack: inspect the crate version named in the message before running its code again. If the behaviour is legitimate, allow it explicitly in the crate's profile."
        }
        Code::UnexpectedExec
        | Code::UnexpectedRead
        | Code::UnexpectedWrite
        | Code::NewBehaviour
        | Code::IoUringUse => {
            "Check whether the crate is expected to do this; if so, add the item to its profile (buildwatch learn, or accept it in the TUI)."
        }
        Code::NoProfile => {
            "Record a profile for the crate with `buildwatch learn -- cargo build` and review it."
        }
        Code::EventsLost => "Monitoring was incomplete: rerun, or raise --ring-buffer-size.",
        Code::ProcessOutlivedBuild => {
            "A build should not leave processes behind; find out what the crate started."
        }
        Code::UnusedAllow => "Remove the allow entry if the crate no longer needs it.",
    }
}

/// A Markdown summary (for `$GITHUB_STEP_SUMMARY`).
pub fn markdown(run: &RunReport, meta: &RunMeta) -> String {
    let mut out = String::from("## buildwatch\n\n");
    if !meta.command.is_empty() {
        out.push_str(&format!("Watched `{}`", meta.command.join(" ")));
        if let Some(code) = meta.exit_status {
            out.push_str(&format!(" (exit status {code})"));
        }
        out.push_str(".\n\n");
    }
    if run.lost_events > 0 {
        out.push_str(&format!(
            "**Monitoring was incomplete: {} events lost.**\n\n",
            run.lost_events
        ));
    }
    let shown: Vec<&Finding> = run
        .findings
        .iter()
        .filter(|f| f.code != Code::UnusedAllow)
        .collect();
    let errors = shown
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    out.push_str(&format!(
        "**{} findings** ({errors} errors, {} warnings)\n\n",
        shown.len(),
        shown.len() - errors
    ));
    if !shown.is_empty() {
        out.push_str("| | code | crate | role | what |\n|---|---|---|---|---|\n");
        for f in shown.iter().take(100) {
            let icon = if f.severity == Severity::Error {
                "❌"
            } else {
                "⚠️"
            };
            let krate = f
                .krate
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let role = f.role.map(|r| r.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "| {icon} | `{}` | {} | {} | {} |\n",
                f.code,
                md(&krate),
                role,
                md(&f.detail)
            ));
        }
        out.push('\n');
    }
    let crates = crates(run);
    let interesting: Vec<_> = crates
        .iter()
        .filter(|(_, e)| {
            e.roles
                .iter()
                .any(|r| matches!(r, Role::BuildScript | Role::ProcMacro))
        })
        .collect();
    if !interesting.is_empty() {
        out.push_str("<details><summary>Build scripts and proc-macros</summary>\n\n| crate | roles | execs | reads | writes | network |\n|---|---|---|---|---|---|\n");
        for (k, e) in interesting {
            let roles: Vec<&str> = e.roles.iter().map(|r| r.as_str()).collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                md(&k.to_string()),
                roles.join(", "),
                e.counts[0],
                e.counts[1],
                e.counts[2],
                e.counts[3]
            ));
        }
        out.push_str("\n</details>\n");
    }
    out
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
