//! Reports: the JSON report of CLI.md, SARIF 2.1.0 for code scanning, and a Markdown summary.
//! docs/reports.md describes all three.
//!
//! Rendering is pure: a finished run in, text out. The only I/O is [`Sources::discover`], which
//! reads the files SARIF locations point into (Cargo.lock, profiles) at the binary's edge.
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    attribution::{CrateRef, Role},
    model::EventKind,
    pipeline::RunReport,
    policy::{Code, DEFAULT_FAIL_ON, Finding, Severity},
};

/// The JSON report's schema version (CLI.md).
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

/// A crate as the JSON report names it: `version` always present (null when unknown).
#[derive(Serialize)]
struct JsonCrateRef<'a> {
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

/// The JSON report (CLI.md), fields in the contract's order.
#[derive(Serialize)]
struct JsonReport<'a> {
    schema: u32,
    tool: JsonTool,
    command: &'a [String],
    user: Option<&'a str>,
    exit_status: Option<i32>,
    lost_events: u64,
    coverage_gaps: &'a [String],
    counts: BTreeMap<&'a str, u64>,
    crates: Vec<JsonCrate<'a>>,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonTool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct JsonCrate<'a> {
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
struct JsonCounts {
    exec: u64,
    read: u64,
    write: u64,
    network: u64,
    ambiguous: bool,
}

/// One finding: every key always present (null when unknown), so that consumers see one shape.
#[derive(Serialize)]
struct JsonFinding<'a> {
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
    count: u64,
    time_ns: u64,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
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
            count: f.count,
            time_ns: f.time_ns,
        }
    }
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

/// The JSON report (`--report`), schema 1 of CLI.md.
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
        findings: run.findings.iter().map(Into::into).collect(),
    };
    pretty(&report)
}

// ---------------------------------------------------------------------------------------------
// SARIF

/// A file a SARIF location points into.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceFile {
    /// Where it is (absolute when the working directory is known).
    pub path: PathBuf,
    /// Its text, when it could be read (to point at a line).
    pub text: Option<String>,
}

/// The files SARIF locations point into, gathered at the binary's edge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// The directory buildwatch ran in (relative paths are resolved against it).
    pub working_dir: Option<PathBuf>,
    /// The Cargo.lock of the workspace built.
    pub lockfile: Option<SourceFile>,
    /// Profile files, by the `profile` string of the findings that name them.
    pub profiles: BTreeMap<String, SourceFile>,
}

impl Sources {
    /// Reads what the SARIF output of `run` points into: the working directory, the Cargo.lock
    /// of the workspace (the nearest one up from the `--manifest-path` of a cargo command, else
    /// from the working directory) and the profile files findings name.
    pub fn discover(run: &RunReport, meta: &RunMeta) -> Sources {
        Self::discover_in(run, meta, std::env::current_dir().ok())
    }

    /// [`Sources::discover`] with `working_dir` as the working directory.
    pub fn discover_in(run: &RunReport, meta: &RunMeta, working_dir: Option<PathBuf>) -> Sources {
        let resolve = |p: &Path| match &working_dir {
            Some(wd) if p.is_relative() => wd.join(p),
            _ => p.to_owned(),
        };
        // Code scanning cannot show a result in a file reached through a symlink: resolve them.
        let read = |p: PathBuf| {
            let path = std::fs::canonicalize(&p).unwrap_or(p);
            let text = std::fs::read_to_string(&path).ok();
            SourceFile { path, text }
        };
        let start = manifest_dir(&meta.command)
            .map(|d| resolve(&d))
            .or_else(|| working_dir.clone());
        let lockfile = start
            .as_deref()
            .and_then(|dir| {
                dir.ancestors()
                    .map(|d| d.join("Cargo.lock"))
                    .find(|p| p.is_file())
            })
            .map(read);
        let profiles = run
            .findings
            .iter()
            .filter_map(|f| f.profile.as_deref())
            .filter(|p| !is_built_in(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|p| (p.to_owned(), read(resolve(Path::new(p)))))
            .collect();
        Sources {
            working_dir,
            lockfile,
            profiles,
        }
    }
}

/// The directory of the `--manifest-path` of a cargo command line.
fn manifest_dir(command: &[String]) -> Option<PathBuf> {
    let mut it = command.iter().skip(1);
    while let Some(a) = it.next() {
        let path = if a == "--manifest-path" {
            it.next().map(String::as_str)
        } else {
            a.strip_prefix("--manifest-path=")
        };
        if let Some(p) = path {
            return Path::new(p).parent().map(Path::to_owned);
        }
    }
    None
}

/// A profile shipped inside buildwatch: no file to point at (see `ProfileSource`'s Display).
fn is_built_in(profile: &str) -> bool {
    profile.ends_with(" (built in)")
}

/// The rule's default level: what the default `--fail-on` makes it (results carry the level of
/// this run's policy). Unused allow entries are housekeeping: notes.
fn default_level(code: Code) -> &'static str {
    if DEFAULT_FAIL_ON.contains(&code) {
        "error"
    } else if code == Code::UnusedAllow {
        "note"
    } else {
        "warning"
    }
}

fn level(f: &Finding) -> &'static str {
    match (f.severity, f.code) {
        (Severity::Error, _) => "error",
        (Severity::Warning, Code::UnusedAllow) => "note",
        (Severity::Warning, _) => "warning",
    }
}

/// GitHub's `security-severity` (7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low): set on the codes
/// that are security findings; the rest (profile housekeeping, monitoring health) have none.
fn security_severity(code: Code) -> Option<&'static str> {
    match code {
        Code::SensitiveRead
        | Code::PersistenceWrite
        | Code::FilelessExec
        | Code::ProcessTamper
        | Code::CompatSyscall
        | Code::NamespaceUse => Some("8.8"),
        Code::UnexpectedNetwork => Some("8.0"),
        Code::UnexpectedExec
        | Code::UnexpectedWrite
        | Code::NewBehaviour
        | Code::IoUringUse
        | Code::ProcessOutlivedBuild => Some("5.0"),
        Code::UnexpectedRead => Some("4.0"),
        Code::NoProfile | Code::EventsLost | Code::UnusedAllow => None,
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

/// A stable identity for a finding across runs (code, crate, role, subject; not the version, so
/// that an alert follows a crate through upgrades), for code scanning to recognise the same
/// alert.
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

fn rule(code: Code) -> Value {
    let mut properties = json!({
        "tags": if security_severity(code).is_some() { json!(["security", "supply-chain"]) } else { json!(["supply-chain"]) },
        "precision": "high",
        "problem.severity": match default_level(code) {
            "error" => "error",
            "note" => "recommendation",
            _ => "warning",
        },
    });
    if let Some(s) = security_severity(code) {
        properties["security-severity"] = json!(s);
    }
    let description = sentence(code.description());
    json!({
        "id": code.as_str(),
        "name": camel(code),
        "shortDescription": {"text": description},
        "fullDescription": {"text": format!("{description} Reported by buildwatch, which watches what build scripts and proc-macros do while cargo builds.")},
        "defaultConfiguration": {"level": default_level(code)},
        "help": {"text": help(code), "markdown": format!("**{}**: {description}\n\n{}", code.as_str(), help(code))},
        "properties": properties,
    })
}

/// `text` with a capital first letter and a final full stop.
fn sentence(text: &str) -> String {
    let mut c = text.chars();
    let mut s = c
        .next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// The message of a result. Code scanning shows the first sentence as the alert's title: who
/// and what; the rest adds the candidates, the count, the process and the profile.
fn message(f: &Finding) -> String {
    let mut s = match (&f.krate, f.role) {
        (Some(k), Some(r)) => format!("{k} ({r}): {}.", f.detail),
        (Some(k), None) => format!("{k}: {}.", f.detail),
        (None, Some(r)) => format!("{r}: {}.", f.detail),
        (None, None) => format!("{}.", sentence(&f.detail)),
    };
    if f.candidates.len() > 1 {
        let names: Vec<String> = f.candidates.iter().map(ToString::to_string).collect();
        let _ = write!(
            s,
            " The proc-macros could not be told apart: it may be any of {}.",
            names.join(", ")
        );
    }
    if f.count > 1 {
        let _ = write!(s, " Seen {} times.", f.count);
    }
    if let Some(p) = &f.process {
        let _ = write!(s, " First seen in process {} ({})", p.pid, p.exe);
        if p.chain.len() > 1 {
            let _ = write!(s, ", started through {}", p.chain.join(" > "));
        }
        s.push('.');
    }
    match (&f.profile, &f.list, f.role) {
        (Some(profile), Some(list), Some(role)) if f.code != Code::UnusedAllow => {
            let _ = write!(
                s,
                " Profile: {profile}; allowing it would take an entry in [{role}].{list}."
            );
        }
        _ => {}
    }
    s
}

/// A region (1-based lines and columns): one whole line of `text`.
fn line_region(text: &str, line: usize) -> Value {
    let width = text
        .lines()
        .nth(line.saturating_sub(1))
        .map(|l| l.chars().count())
        .unwrap_or(0);
    if width == 0 {
        return json!({"startLine": line});
    }
    json!({"startLine": line, "startColumn": 1, "endLine": line, "endColumn": width + 1})
}

/// The line of Cargo.lock's entry for `krate`: its `version = ` line (a version bump changes
/// that line, so code scanning can show the alert on the pull request that makes it), or its
/// `name = ` line when the version is unknown.
fn lockfile_line(text: &str, krate: &CrateRef) -> Option<usize> {
    let key = crate::profile::crate_key(&krate.name);
    let quoted = |line: &str, field: &str| -> Option<String> {
        let rest = line.trim().strip_prefix(field)?.trim_start();
        let rest = rest.strip_prefix('=')?.trim();
        Some(rest.strip_prefix('"')?.strip_suffix('"')?.to_owned())
    };
    let mut name_line: Option<(usize, bool)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim() == "[[package]]" {
            name_line = None;
        } else if let Some(name) = quoted(line, "name") {
            name_line = Some((i + 1, crate::profile::crate_key(&name) == key));
        } else if let Some(version) = quoted(line, "version")
            && let Some((at, true)) = name_line
        {
            match &krate.version {
                Some(v) if *v == version => return Some(i + 1),
                None => return Some(at),
                Some(_) => name_line = None,
            }
        }
    }
    None
}

/// The line of a profile a finding is best shown at: the allow entry of an unused-allow finding
/// (its detail names `file:line:col`), else the table of the role (`[build-script]`).
fn profile_line(text: &str, f: &Finding, profile: &str) -> Option<usize> {
    if f.code == Code::UnusedAllow {
        let at = f.detail.find(&format!("({profile}:"))? + profile.len() + 2;
        let line: usize = f.detail[at..].split(':').next()?.parse().ok()?;
        return (line > 0).then_some(line);
    }
    let table = format!("[{}]", f.role?.as_str());
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(&table)
                .is_some_and(|rest| rest.trim().is_empty() || rest.trim().starts_with('#'))
        })
        .map(|i| i + 1)
}

/// RFC 3986 percent-encoding of a path (unreserved characters, sub-delims, `:`, `@` and `/`
/// stay as they are).
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {
                out.push(b as char)
            }
            b':' | b'@' | b'/' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// An artifact's URI: `file://` for an absolute path (code scanning makes it relative to the
/// checkout), a relative reference otherwise.
fn uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    if path.is_absolute() {
        format!("file://{}", percent_encode(&text))
    } else {
        // A relative path whose first segment has a `:` would read as a scheme.
        let encoded = percent_encode(&text);
        match encoded.split('/').next() {
            Some(first) if first.contains(':') => format!("./{encoded}"),
            _ => encoded,
        }
    }
}

/// Where a finding is shown: the profile that applied, when it is a file; else the crate's entry
/// in Cargo.lock, where the dependency is pinned.
fn location(f: &Finding, sources: &Sources) -> Value {
    let profile = f
        .profile
        .as_deref()
        .filter(|p| !is_built_in(p))
        .map(|p| (p, sources.profiles.get(p)));
    let (path, region) = match profile {
        Some((name, file)) => {
            let path = file.map(|s| s.path.clone()).unwrap_or_else(|| {
                let p = PathBuf::from(name);
                match &sources.working_dir {
                    Some(wd) if p.is_relative() => wd.join(p),
                    _ => p,
                }
            });
            let text = file.and_then(|s| s.text.as_deref());
            let line = text.and_then(|t| profile_line(t, f, name)).unwrap_or(1);
            let region = match text {
                Some(t) => line_region(t, line),
                None => json!({"startLine": line}),
            };
            (path, region)
        }
        None => {
            let lock = sources.lockfile.as_ref();
            let path = lock.map(|s| s.path.clone()).unwrap_or_else(|| {
                sources
                    .working_dir
                    .as_ref()
                    .map(|wd| wd.join("Cargo.lock"))
                    .unwrap_or_else(|| PathBuf::from("Cargo.lock"))
            });
            let text = lock.and_then(|s| s.text.as_deref());
            let line = text
                .zip(f.krate.as_ref())
                .and_then(|(t, k)| lockfile_line(t, k));
            let region = match (text, line) {
                (Some(t), Some(line)) => line_region(t, line),
                _ => json!({"startLine": 1}),
            };
            (path, region)
        }
    };
    json!({
        "physicalLocation": {
            "artifactLocation": {"uri": uri(&path)},
            "region": region,
        }
    })
}

fn result(f: &Finding, sources: &Sources) -> Value {
    let index = Code::ALL.iter().position(|c| *c == f.code).unwrap_or(0);
    let mut properties = json!({"count": f.count, "subject": f.subject});
    if let Some(k) = &f.krate {
        properties["crate"] = json!(k.name);
        if let Some(v) = &k.version {
            properties["version"] = json!(v);
        }
    }
    if let Some(r) = f.role {
        properties["role"] = json!(r.as_str());
    }
    if let Some(p) = &f.process {
        properties["process"] = json!({"pid": p.pid, "exe": p.exe, "chain": p.chain});
    }
    if let Some(p) = &f.profile {
        properties["profile"] = json!(p);
    }
    if let Some(l) = &f.list {
        properties["list"] = json!(l);
    }
    if !f.candidates.is_empty() {
        properties["candidates"] = json!(f.candidates.iter().map(crate_json).collect::<Vec<_>>());
    }
    let id = fingerprint(f);
    json!({
        "ruleId": f.code.as_str(),
        "ruleIndex": index,
        "level": level(f),
        "message": {"text": message(f)},
        "locations": [location(f, sources)],
        // Code scanning only uses `primaryLocationLineHash`. Without it, upload-sarif hashes
        // the located line, which is the same for every finding of a crate: their alerts would
        // merge. The action warns that its hash differs from this one; that is expected.
        "partialFingerprints": {
            "primaryLocationLineHash": format!("{id}:1"),
            "buildwatch/v1": id,
        },
        "properties": properties,
    })
}

/// The findings as SARIF 2.1.0 (`--sarif`), as GitHub code scanning accepts it: one rule per
/// finding code (every code, in a fixed order, whether it fired or not), one result per finding
/// (errors first, at most [`MAX_SARIF_RESULTS`]) with the crate and version in its message, and
/// as its location the profile file that applied, else the crate's entry in Cargo.lock.
pub fn sarif(run: &RunReport, meta: &RunMeta, sources: &Sources) -> String {
    let mut findings: Vec<&Finding> = run.findings.iter().collect();
    findings.sort_by_key(|f| f.severity);
    let results: Vec<Value> = findings
        .iter()
        .take(MAX_SARIF_RESULTS)
        .map(|f| result(f, sources))
        .collect();
    let mut notifications = Vec::new();
    if run.lost_events > 0 {
        notifications.push(json!({
            "level": "error",
            "message": {"text": format!("Monitoring was incomplete: the sensor lost {} events, so these results may miss behaviour.", run.lost_events)},
        }));
    }
    for gap in &run.coverage_gaps {
        notifications.push(json!({
            "level": "warning",
            "message": {"text": format!("Not watched on this kernel: {gap}.")},
        }));
    }
    if findings.len() > MAX_SARIF_RESULTS {
        notifications.push(json!({
            "level": "warning",
            "message": {"text": format!("{} findings, of which the first {MAX_SARIF_RESULTS} (errors first) are results here; the JSON report (--report) has them all.", findings.len())},
        }));
    }
    let mut invocation = json!({"executionSuccessful": run.lost_events == 0});
    if let Some(wd) = &sources.working_dir {
        let mut dir = uri(wd);
        if !dir.ends_with('/') {
            dir.push('/');
        }
        invocation["workingDirectory"] = json!({"uri": dir});
    }
    if !notifications.is_empty() {
        invocation["toolExecutionNotifications"] = json!(notifications);
    }
    // The watched command and its status: the invocation's own commandLine and exitCode are
    // buildwatch's, which are not known while the report is written.
    let mut properties = json!({"lostEvents": run.lost_events});
    if !meta.command.is_empty() {
        properties["command"] = json!(meta.command);
    }
    if let Some(code) = meta.exit_status {
        properties["exitStatus"] = json!(code);
    }
    if let Some(user) = &meta.user {
        properties["user"] = json!(user);
    }
    invocation["properties"] = properties;
    let value = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "buildwatch",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": INFORMATION_URI,
                "rules": Code::ALL.iter().map(|&c| rule(c)).collect::<Vec<_>>(),
            }},
            "invocations": [invocation],
            "results": results,
        }],
    });
    pretty(&value)
}

fn help(code: Code) -> &'static str {
    match code {
        Code::UnexpectedNetwork
        | Code::SensitiveRead
        | Code::PersistenceWrite
        | Code::FilelessExec
        | Code::ProcessTamper
        | Code::CompatSyscall
        | Code::NamespaceUse => {
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

// ---------------------------------------------------------------------------------------------
// Markdown

/// A Markdown summary (for `$GITHUB_STEP_SUMMARY`): the findings table first, errors first,
/// then the build scripts and proc-macros in a collapsed table. Everything the build controls
/// (paths, command lines, crate names) is written as code spans, so that none of it renders as
/// links, images or HTML.
pub fn markdown(run: &RunReport, meta: &RunMeta) -> String {
    let mut shown: Vec<&Finding> = run
        .findings
        .iter()
        .filter(|f| f.code != Code::UnusedAllow)
        .collect();
    shown.sort_by_key(|f| f.severity);
    let unused = run.findings.len() - shown.len();
    let errors = shown
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = shown.len() - errors;
    let mut out = String::from("## buildwatch: ");
    out.push_str(&match (errors, warnings) {
        (0, 0) => "✅ no findings".to_owned(),
        (0, w) => format!("⚠️ {}", plural(w, "warning")),
        (e, 0) => format!("❌ {}", plural(e, "error")),
        (e, w) => format!("❌ {}, {}", plural(e, "error"), plural(w, "warning")),
    });
    out.push_str("\n\n");
    if !meta.command.is_empty() {
        let _ = write!(out, "Watched {}", code(&meta.command.join(" ")));
        if let Some(user) = &meta.user {
            let _ = write!(out, " as {}", code(user));
        }
        if let Some(status) = meta.exit_status {
            let _ = write!(out, ": exit status {status}");
        }
        out.push_str(".\n\n");
    }
    if run.lost_events > 0 {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> Monitoring was incomplete: the sensor lost {} events.\n",
            run.lost_events
        );
    }
    for gap in &run.coverage_gaps {
        let _ = writeln!(out, "> [!NOTE]\n> Not watched on this kernel: {gap}.\n");
    }
    if !shown.is_empty() {
        out.push_str("| | finding | crate | role | what | times |\n|---|---|---|---|---|---|\n");
        for f in shown.iter().take(MAX_MARKDOWN_FINDINGS) {
            let icon = match f.severity {
                Severity::Error => "❌ error",
                Severity::Warning => "⚠️ warning",
            };
            let mut krate = f
                .krate
                .as_ref()
                .map(|k| code(&k.to_string()))
                .unwrap_or_default();
            if f.candidates.len() > 1 {
                let all: Vec<String> = f.candidates.iter().map(|c| code(&c.to_string())).collect();
                let _ = write!(krate, " (could be any of {})", all.join(", "));
            }
            let role = f.role.map(|r| r.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {icon} | {} | {} | {role} | {} | {} |",
                cell(&code(f.code.as_str())),
                cell(&krate),
                cell(&code(&truncate(&f.detail, 300))),
                f.count
            );
        }
        out.push('\n');
        if shown.len() > MAX_MARKDOWN_FINDINGS {
            let _ = writeln!(
                out,
                "… and {} more findings: see the JSON report (`--report`).\n",
                shown.len() - MAX_MARKDOWN_FINDINGS
            );
        }
    }
    if unused > 0 {
        let _ = writeln!(
            out,
            "{} in profiles matched nothing in this run (`unused-allow`; see the JSON report).\n",
            plural(unused, "allow entry")
        );
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
        let _ = writeln!(
            out,
            "<details><summary>Build scripts and proc-macros ({})</summary>\n",
            plural(interesting.len(), "crate")
        );
        out.push_str(
            "| crate | roles | execs | reads | writes | connects | reached |\n|---|---|---|---|---|---|---|\n",
        );
        for (k, e) in interesting {
            let counts = e.scrutinised();
            // `proc-macro?`: attributed as one of several candidates, as in the text summary.
            let roles: Vec<String> = e
                .roles
                .iter()
                .filter(|r| matches!(r, Role::BuildScript | Role::ProcMacro))
                .map(|r| {
                    let ambiguous = e.counts.get(r).is_some_and(|c| c.ambiguous);
                    format!("{r}{}", if ambiguous { "?" } else { "" })
                })
                .collect();
            let mut reached: Vec<String> = e.network.iter().take(5).map(|h| code(h)).collect();
            if e.network.len() > 5 {
                reached.push(format!("… {} more", e.network.len() - 5));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(&code(&k.to_string())),
                roles.join(", "),
                counts.exec,
                counts.read,
                counts.write,
                counts.network,
                cell(&reached.join(", "))
            );
        }
        out.push_str("\n</details>\n");
    }
    out.push('\n');
    out
}

fn plural(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (n, w) if w.ends_with('y') => format!("{n} {}ies", &w[..w.len() - 1]),
        (n, w) => format!("{n} {w}s"),
    }
}

/// A code span of `s`: nothing inside is Markdown or HTML. The fence is longer than any run of
/// backticks inside; line breaks and other control characters become spaces.
fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.trim().is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A space on each side keeps a backtick at either end from joining the fence (one space
    // each side is stripped when rendering).
    let pad = if longest > 0 { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Text for a table cell: `|` escaped (GitHub unescapes it inside code spans too).
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests;
