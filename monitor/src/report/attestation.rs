//! The run as an in-toto attestation (issue 18): a Statement v1 whose subjects are the
//! artifacts the build produced and whose predicate is a Runtime Trace
//! (<https://github.com/in-toto/attestation/blob/main/spec/predicates/runtime-trace.md>),
//! optionally signed into a DSSE envelope with a local ed25519 key. docs/reports.md describes
//! the fields; keyless signing is left to `cosign attest-blob`.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signer as _, SigningKey, pkcs8::DecodePrivateKey as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{RunMeta, json::JsonFinding};
use crate::{digest::hex, images::ImageKind, pipeline::RunReport};

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The Runtime Trace predicate, version 0.1.
pub const PREDICATE_TYPE: &str = "https://in-toto.io/attestation/runtime-trace/v0.1";
/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Most files listed per crate and access kind in `fileAccess` (the JSON report has the rest of
/// the activity; the counts are exact).
const FILES_PER_CRATE: usize = 200;

/// Facts the attestation needs besides the run: where the working directory is and the
/// environment it ran in (GitHub Actions' variables name the job).
#[derive(Clone, Debug, Default)]
pub struct AttestationContext {
    /// The directory buildwatch ran in.
    pub working_dir: Option<PathBuf>,
    /// The environment variables consulted (`GITHUB_*`, `CARGO_TARGET_DIR`).
    pub env: BTreeMap<String, String>,
    /// The host's name.
    pub hostname: Option<String>,
}

impl AttestationContext {
    /// This process's working directory, environment and host name.
    pub fn current() -> Self {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("GITHUB_") || k == "CARGO_TARGET_DIR")
            .collect();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        Self {
            working_dir: std::env::current_dir().ok(),
            env,
            hostname,
        }
    }
}

/// An attestation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    /// No artifact found: a Statement needs at least one subject.
    #[error(
        "no artifact to attest: found no binary or library in {0} (the build produced none, or \
         wrote them elsewhere: pass --target-dir to cargo inside the watched command, or set \
         CARGO_TARGET_DIR)"
    )]
    NoSubject(String),
    /// The signing key could not be read.
    #[error(
        "cannot read the ed25519 signing key {path}: {why} (expected a PKCS#8 PEM private key, \
         as `openssl genpkey -algorithm ed25519 -out {path}` writes)"
    )]
    Key {
        /// The key file.
        path: String,
        /// Why.
        why: String,
    },
}

/// The profile directories whose files are the build's artifacts: those rustc wrote into,
/// else the one the command line names (`--release`, `--profile`, `--target`, `--target-dir`,
/// `CARGO_TARGET_DIR`), relative to the working directory.
pub fn artifact_dirs(run: &RunReport, meta: &RunMeta, ctx: &AttestationContext) -> Vec<PathBuf> {
    if !run.evidence.output_dirs.is_empty() {
        return run.evidence.output_dirs.iter().map(PathBuf::from).collect();
    }
    let args = &meta.command;
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .or_else(|| {
                let prefix = format!("{flag}=");
                args.iter()
                    .find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
            })
    };
    let profile = match value("--profile").as_deref() {
        Some("dev" | "test") => "debug".to_owned(),
        Some("bench") => "release".to_owned(),
        Some(p) => p.to_owned(),
        None if args.iter().any(|a| a == "--release" || a == "-r") => "release".to_owned(),
        None => "debug".to_owned(),
    };
    let target_dir = value("--target-dir")
        .or_else(|| ctx.env.get("CARGO_TARGET_DIR").cloned())
        .unwrap_or_else(|| {
            value("--manifest-path")
                .and_then(|m| {
                    Path::new(&m)
                        .parent()
                        .map(|d| d.join("target").to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "target".to_owned())
        });
    let mut dir = PathBuf::from(target_dir);
    if let Some(triple) = value("--target") {
        dir.push(triple);
    }
    dir.push(profile);
    match &ctx.working_dir {
        Some(wd) if dir.is_relative() => vec![wd.join(dir)],
        _ => vec![dir],
    }
}

/// Whether a file of a profile directory is an artifact: a library cargo writes there, or an
/// executable (not its dep-info, lock or fingerprint files).
fn is_artifact(path: &Path, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if !meta.is_file() || name.ends_with(".d") || name.starts_with('.') {
        return false;
    }
    let library = [".rlib", ".so", ".a", ".dylib", ".dll", ".wasm", ".rmeta"]
        .iter()
        .any(|ext| name.ends_with(ext));
    library || meta.permissions().mode() & 0o111 != 0
}

/// The subjects: every artifact in `dirs` (not recursing), named relative to the working
/// directory when under it, with its SHA-256.
pub fn subjects(dirs: &[PathBuf], working_dir: Option<&Path>) -> Vec<Value> {
    let mut out = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Symlinks are followed: cargo may link the uplifted file.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !is_artifact(&path, &meta) {
                continue;
            }
            let Ok(sha) = crate::digest::sha256_file(&path) else {
                continue;
            };
            let name = working_dir
                .and_then(|wd| path.strip_prefix(wd).ok())
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.insert(
                name.clone(),
                json!({"name": name, "digest": {"sha256": sha}}),
            );
        }
    }
    out.into_values().collect()
}

fn timestamp(ns: u64) -> String {
    // RFC 3339 in UTC, from days since the epoch (Howard Hinnant's civil_from_days).
    let secs = (ns / 1_000_000_000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `monitoredProcess`: on GitHub Actions, the platform, its workflow build type and the run's
/// attempt; elsewhere the host and the command.
fn monitored_process(meta: &RunMeta, ctx: &AttestationContext) -> Value {
    let env = |k: &str| ctx.env.get(k).map(String::as_str);
    let mut process = match (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        (Some(server), Some(repo), Some(run)) => json!({
            "hostID": server,
            "type": "https://actions.github.io/buildtypes/workflow/v1",
            "event": format!(
                "{server}/{repo}/actions/runs/{run}/attempts/{}",
                env("GITHUB_RUN_ATTEMPT").unwrap_or("1")
            ),
        }),
        _ => json!({
            "hostID": format!("urn:buildwatch:host:{}", ctx.hostname.as_deref().unwrap_or("localhost")),
            "type": format!("{}/command/v1", super::INFORMATION_URI),
            "event": meta.command.join(" "),
        }),
    };
    // Extension fields (the spec lets producers add them): the command as run, its status and
    // user.
    process["command"] = json!(meta.command);
    if let Some(status) = meta.exit_status {
        process["exitStatus"] = json!(status);
    }
    if let Some(user) = &meta.user {
        process["user"] = json!(user);
    }
    process
}

/// `monitorLog.process`: one entry per program image, with its digest and who ran it.
fn processes(run: &RunReport) -> Vec<Value> {
    run.images
        .iter()
        .map(|image| {
            let mut entry = json!({
                "eventType": match image.kind {
                    ImageKind::Exec => "exec",
                    ImageKind::MacroLib => "proc-macro-load",
                },
                "processBinary": image.path,
                "runs": image.runs,
                "actors": image.actors,
            });
            if let Some(d) = &image.digest {
                match d.sha256() {
                    Some(sha) => entry["digest"] = json!({"sha256": sha}),
                    None => entry["digestStatus"] = json!(d.describe()),
                }
            }
            entry
        })
        .collect()
}

/// `monitorLog.network`: the recommended entry shape (ip, hostname, port, protocol,
/// invokingProcess).
fn network(run: &RunReport) -> Vec<Value> {
    run.evidence
        .network
        .iter()
        .map(|(endpoint, actors)| {
            let mut entry = serde_json::to_value(endpoint).unwrap_or(Value::Null);
            entry["invokingProcess"] = json!({"actors": actors});
            entry
        })
        .collect()
}

/// `monitorLog.fileAccess`: one ResourceDescriptor per crate and role, its accesses summarised
/// in annotations.
fn file_access(run: &RunReport) -> Vec<Value> {
    run.activity
        .entries()
        .map(|(who, a)| {
            let name = match &who.krate {
                Some(k) => format!("{k} ({})", who.role),
                None => format!("({})", who.role),
            };
            let first = |set: &BTreeSet<String>| -> Vec<String> {
                set.iter().take(FILES_PER_CRATE).cloned().collect()
            };
            json!({
                "name": name,
                "annotations": {
                    "crate": who.krate.as_ref().map(|k| k.name.clone()),
                    "version": who.krate.as_ref().and_then(|k| k.version.clone()),
                    "role": who.role.as_str(),
                    "reads": a.reads,
                    "writes": a.writes,
                    "execs": a.execs,
                    "programs": first(&a.programs),
                    "unusualReads": first(&a.unusual_reads),
                    "unusualWrites": first(&a.unusual_writes),
                    "omitted": a.omitted,
                },
            })
        })
        .collect()
}

/// The in-toto Statement of a run.
pub fn statement(
    run: &RunReport,
    meta: &RunMeta,
    ctx: &AttestationContext,
    hooks: &[&str],
) -> Result<Value, AttestationError> {
    let dirs = artifact_dirs(run, meta, ctx);
    let subject = subjects(&dirs, ctx.working_dir.as_deref());
    if subject.is_empty() {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(AttestationError::NoSubject(shown.join(", ")));
    }
    let version = env!("CARGO_PKG_VERSION");
    let mut metadata = json!({});
    if let Some((start, end)) = run.evidence.span {
        metadata["buildStartedOn"] = json!(timestamp(start));
        metadata["buildFinishedOn"] = json!(timestamp(end));
    }
    Ok(json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "monitor": {
                "type": format!("{}@v{version}", super::INFORMATION_URI),
                "tracePolicy": {
                    "name": "buildwatch",
                    "version": version,
                    "hooks": hooks,
                    "coverageGaps": run.coverage_gaps,
                    "lostEvents": run.lost_events,
                    "complete": run.lost_events == 0 && run.coverage_gaps.is_empty(),
                },
            },
            "monitoredProcess": monitored_process(meta, ctx),
            "monitorLog": {
                "process": processes(run),
                "network": network(run),
                "fileAccess": file_access(run),
            },
            "metadata": metadata,
            "findings": run.findings.iter().map(JsonFinding::from).collect::<Vec<_>>(),
        },
    }))
}

/// Reads a PKCS#8 PEM ed25519 private key.
pub fn load_key(path: &Path) -> Result<SigningKey, AttestationError> {
    let fail = |why: String| AttestationError::Key {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| fail(e.to_string()))
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The statement signed into a DSSE envelope. `keyid` is the SHA-256 of the raw public key.
pub fn envelope(statement: &[u8], key: &SigningKey) -> Value {
    let signature = key.sign(&pae(PAYLOAD_TYPE, statement));
    let keyid = hex(&Sha256::digest(key.verifying_key().as_bytes()));
    json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": STANDARD.encode(statement),
        "signatures": [{"keyid": keyid, "sig": STANDARD.encode(signature.to_bytes())}],
    })
}

/// The attestation file's text: the statement, or its signed envelope with `key`.
pub fn attestation(
    run: &RunReport,
    meta: &RunMeta,
    ctx: &AttestationContext,
    hooks: &[&str],
    key: Option<&SigningKey>,
) -> Result<String, AttestationError> {
    let statement = statement(run, meta, ctx, hooks)?;
    let text = super::pretty(&statement);
    Ok(match key {
        Some(key) => super::pretty(&envelope(text.as_bytes(), key)),
        None => text,
    })
}

#[cfg(test)]
#[path = "attestation_tests.rs"]
mod tests;
