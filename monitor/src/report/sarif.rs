//! Findings as SARIF 2.1.0, for code scanning: docs/reports.md.
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

use super::{
    sarif_rules::{rule, sentence},
    *,
};

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
pub(super) fn manifest_dir(command: &[String]) -> Option<PathBuf> {
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
pub(super) fn is_built_in(profile: &str) -> bool {
    profile.ends_with(" (built in)")
}

pub(super) fn level(f: &Finding) -> &'static str {
    match (f.severity, f.code) {
        (Severity::Error, _) => "error",
        (Severity::Warning, Code::UnusedAllow) => "note",
        (Severity::Warning, _) => "warning",
    }
}

/// A stable identity for a finding across runs (code, crate, role, subject; not the version, so
/// that an alert follows a crate through upgrades), for code scanning to recognise the same
/// alert.
pub(super) fn fingerprint(f: &Finding) -> String {
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

/// The message of a result. Code scanning shows the first sentence as the alert's title: who
/// and what; the rest adds the candidates, the count, the process and the profile.
pub(super) fn message(f: &Finding) -> String {
    let names: Vec<String> = f.candidates.iter().map(ToString::to_string).collect();
    let mut s = match (&f.krate, f.role) {
        // No one proc-macro named as if it were certain.
        (Some(_), Some(r)) if !f.exact() => format!(
            "One of {} ({r}, attribution not exact): {}.",
            names.join(", "),
            f.detail
        ),
        (Some(k), Some(r)) => format!("{k} ({r}): {}.", f.detail),
        (Some(k), None) => format!("{k}: {}.", f.detail),
        (None, Some(r)) => format!("{r}: {}.", f.detail),
        (None, None) => format!("{}.", sentence(&f.detail)),
    };
    if !f.exact() {
        let _ = write!(
            s,
            " The proc-macros could not be told apart; the strictest of their profiles applied."
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
    // Code scanning renders the message: what the build chose is shown, never obeyed.
    crate::model::shown(&s).into_owned()
}

/// A region (1-based lines and columns): one whole line of `text`.
pub(super) fn line_region(text: &str, line: usize) -> Value {
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
pub(super) fn lockfile_line(text: &str, krate: &CrateRef) -> Option<usize> {
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
pub(super) fn profile_line(text: &str, f: &Finding, profile: &str) -> Option<usize> {
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
pub(super) fn percent_encode(path: &str) -> String {
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
pub(super) fn uri(path: &Path) -> String {
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
pub(super) fn location(f: &Finding, sources: &Sources) -> Value {
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

pub(super) fn result(f: &Finding, sources: &Sources) -> Value {
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
    if f.killed {
        properties["killed"] = json!(true);
    }
    if !f.exact() {
        properties["exact"] = json!(false);
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
        .map(|f| with_image_digest(result(f, sources), f, run))
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
            "message": {"text": format!("Not watched: {gap}.")},
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
            "artifacts": artifacts(run),
            "results": results,
        }],
    });
    pretty(&value)
}

/// The program images the run executed or loaded, as SARIF artifacts with their SHA-256
/// (`hashes`); an image that could not be hashed says why in its properties.
fn artifacts(run: &RunReport) -> Vec<Value> {
    run.images
        .iter()
        .map(|image| {
            let mut artifact = json!({
                "location": {"uri": uri(Path::new(&image.path))},
                "properties": {
                    "kind": image.kind,
                    "runs": image.runs,
                    "actors": image.actors,
                },
            });
            if let Some(d) = image.digest.as_ref() {
                match d.sha256() {
                    Some(sha) => artifact["hashes"] = json!({"sha-256": sha}),
                    None => artifact["properties"]["digest"] = json!(d.describe()),
                }
            }
            if let Some(size) = image.digest.as_ref().and_then(|d| match d {
                crate::model::ImageDigest::Hashed { size, .. } => Some(*size),
                _ => None,
            }) {
                artifact["length"] = json!(size);
            }
            artifact
        })
        .collect()
}

/// A finding about a process: the digest of the program it ran (`properties.process.sha256`),
/// or why there is none.
fn with_image_digest(mut result: Value, f: &Finding, run: &RunReport) -> Value {
    let Some(p) = &f.process else { return result };
    let digest = run
        .images
        .iter()
        .find(|i| i.path == p.exe && i.kind == crate::images::ImageKind::Exec)
        .and_then(|i| i.digest.as_ref());
    if let Some(d) = digest
        && let Some(process) = result["properties"].get_mut("process")
    {
        process["digest"] = json!(d.describe());
        if let Some(sha) = d.sha256() {
            process["sha256"] = json!(sha);
        }
    }
    result
}
