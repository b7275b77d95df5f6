//! Toolchain drift (issue 18): `learn` records, per toolchain version, the SHA-256 of every
//! toolchain program the build ran in `.buildwatch/toolchain.toml`; `ci` reports
//! `toolchain-changed` when a program of the same version has another digest, and notes a
//! version change (no finding: a new toolchain is an update, not an attack).
//!
//! The toolchain's programs: rustc, cargo, rustdoc, rust-lld (and whatever else lives in the
//! sysroot of a rustc the build ran), the rustup proxies, and the system's compiler drivers,
//! linkers, assemblers and archivers (told by their real path, as the link check does). The
//! version is the first line of `rustc -vV` of the sysroot's rustc, run as the build's user.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::Deserialize;

use crate::{
    images::{ImageKind, ProgramImage},
    model::paths,
    policy::{Code, Finding, Severity},
};

/// The file's schema version.
pub const VERSION: u32 = 1;

/// The recorded digests: per toolchain version, program path → SHA-256.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Version (`rustc 1.95.0 (hash date)`) → program → digest.
    pub toolchains: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: toml::Spanned<u32>,
    #[serde(default)]
    toolchain: BTreeMap<String, RawToolchain>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolchain {
    #[serde(default)]
    programs: BTreeMap<String, toml::Spanned<String>>,
}

/// toolchain.toml could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// Not valid (syntax, unknown key, bad digest, version).
    #[error(
        "{path}:{line}:{column}: {message} (fix the file, or delete it and run `buildwatch learn` to record the toolchain again)"
    )]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
}

/// toolchain.toml beside the profiles directory (`.buildwatch/toolchain.toml` by default).
pub fn file_for(profiles_dir: &Path) -> PathBuf {
    profiles_dir
        .parent()
        .map(|p| p.join("toolchain.toml"))
        .unwrap_or_else(|| PathBuf::from("toolchain.toml"))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Parses toolchain.toml; errors name the file, line and column.
pub fn parse(text: &str, path: &Path) -> Result<Recorded, ToolchainError> {
    let invalid = |offset: usize, message: String| {
        let (line, column) = line_col(text, offset);
        ToolchainError::Invalid {
            path: path.display().to_string(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        invalid(offset, e.message().to_owned())
    })?;
    if *raw.version.get_ref() != VERSION {
        return Err(invalid(
            raw.version.span().start,
            format!(
                "version {} is not supported (this buildwatch reads version {VERSION})",
                raw.version.get_ref()
            ),
        ));
    }
    let mut toolchains = BTreeMap::new();
    for (version, t) in raw.toolchain {
        let mut programs = BTreeMap::new();
        for (program, digest) in t.programs {
            let d = digest.get_ref();
            if d.len() != 64
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(invalid(
                    digest.span().start,
                    format!("the digest of `{program}` is not a SHA-256 (64 lowercase hex digits)"),
                ));
            }
            programs.insert(program, d.clone());
        }
        toolchains.insert(version, programs);
    }
    Ok(Recorded { toolchains })
}

/// Reads toolchain.toml; `None` when there is none.
pub fn load(path: &Path) -> Result<Option<Recorded>, ToolchainError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ToolchainError::Io {
            path: path.display().to_string(),
            error,
        }),
    }
}

/// The file's text.
pub fn render(recorded: &Recorded) -> String {
    // A JSON string is a valid TOML basic string (the same escapes), so keys and digests are
    // written through serde_json.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut body = format!("version = {VERSION}\n");
    for (version, programs) in &recorded.toolchains {
        body.push_str(&format!("\n[toolchain.{}.programs]\n", quote(version)));
        for (program, digest) in programs {
            body.push_str(&format!("{} = {}\n", quote(program), quote(digest)));
        }
    }
    format!(
        "# The toolchain programs `buildwatch learn` saw the build run, per toolchain version, with\n\
         # their SHA-256. `buildwatch ci` reports `toolchain-changed` when one has another digest.\n\
         # `~` is the build user's home.\n{body}"
    )
}

/// What this run shows of the toolchain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The version, when a sysroot's rustc ran.
    pub version: Option<String>,
    /// Program (home written `~`) → SHA-256.
    pub programs: BTreeMap<String, String>,
    /// Toolchain programs that could not be hashed, with why.
    pub unhashed: Vec<(String, String)>,
}

/// The sysroots of the rustc programs among `images` (`<sysroot>/bin/rustc` with a
/// `lib/rustlib` beside it; a rustup proxy has none).
pub fn sysroots(images: &[ProgramImage]) -> Vec<String> {
    let mut out: Vec<String> = images
        .iter()
        .filter(|i| i.kind == ImageKind::Exec)
        .filter_map(|i| i.path.strip_suffix("/bin/rustc"))
        .filter(|s| Path::new(s).join("lib/rustlib").is_dir())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `path` is a toolchain program, given the run's sysroots.
pub fn is_toolchain(path: &str, sysroots: &[String]) -> bool {
    let name = paths::file_name(path);
    matches!(name, "rustc" | "cargo" | "rustdoc" | "rust-lld" | "rustup")
        || sysroots
            .iter()
            .any(|s| crate::attribution::is_toolchain_program(path, Some(s)))
        || crate::attribution::is_toolchain_program(path, None)
}

fn with_home(path: &str, home: Option<&Path>) -> String {
    match home.map(|h| h.to_string_lossy()) {
        Some(h) if !h.is_empty() && h != "/" => match path.strip_prefix(h.as_ref()) {
            Some(rest) if rest.starts_with('/') => format!("~{rest}"),
            _ => path.to_owned(),
        },
        _ => path.to_owned(),
    }
}

/// The toolchain programs of a run and their digests; `version` is the toolchain's version.
pub fn observe(images: &[ProgramImage], home: Option<&Path>, version: Option<String>) -> Observed {
    let roots = sysroots(images);
    let mut observed = Observed {
        version,
        ..Observed::default()
    };
    for image in images
        .iter()
        .filter(|i| i.kind == ImageKind::Exec && is_toolchain(&i.path, &roots))
    {
        let key = with_home(&image.path, home);
        match image.digest.as_ref() {
            Some(d) => match d.sha256() {
                Some(sha) => {
                    observed.programs.insert(key, sha.to_owned());
                }
                None => observed.unhashed.push((key, d.describe())),
            },
            None => observed.unhashed.push((key, "not hashed".to_owned())),
        }
    }
    observed
}

/// The first line of `rustc -vV`, run as `uid`/`gid` (the build's user: the program is run
/// with no more rights than the build gave it), in at most 10 seconds.
pub fn rustc_version(rustc: &str, ids: Option<(u32, u32)>) -> Option<String> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = std::process::Command::new(rustc);
    cmd.arg("-vV")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some((uid, gid)) = ids {
        // std drops the supplementary groups when root switches uid this way.
        cmd.gid(gid).uid(uid);
    }
    let mut child = cmd.spawn().ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    out.lines()
        .next()
        .map(str::trim)
        .filter(|l| l.starts_with("rustc "))
        .map(str::to_owned)
}

/// `ci`: findings for programs whose digest differs from the one recorded for this version,
/// and notes (a new version, nothing recorded).
pub fn check(
    recorded: &Recorded,
    observed: &Observed,
    severity: Severity,
) -> (Vec<Finding>, Vec<String>) {
    let mut notes = Vec::new();
    let Some(version) = &observed.version else {
        if !observed.programs.is_empty() {
            notes.push("no rustc ran in this build: the toolchain version is unknown, its programs were not compared".to_owned());
        }
        return (Vec::new(), notes);
    };
    let Some(programs) = recorded.toolchains.get(version) else {
        let known: Vec<&str> = recorded.toolchains.keys().map(String::as_str).collect();
        notes.push(format!(
            "toolchain version changed: {version} (learned: {}); its programs were not compared, run `buildwatch learn` to record them",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ));
        return (Vec::new(), notes);
    };
    let mut findings = Vec::new();
    for (program, sha) in &observed.programs {
        match programs.get(program) {
            Some(learned) if learned != sha => findings.push(Finding {
                code: Code::ToolchainChanged,
                severity,
                krate: None,
                role: None,
                process: None,
                detail: format!(
                    "{program} of {version} has SHA-256 {sha}; learn recorded {learned}"
                ),
                subject: program.clone(),
                profile: None,
                list: None,
                candidates: Vec::new(),
                count: 1,
                time_ns: 0,
                killed: false,
            }),
            Some(_) => {}
            None => notes.push(format!(
                "toolchain program not seen by learn for {version}: {program}"
            )),
        }
    }
    for (program, why) in &observed.unhashed {
        notes.push(format!("toolchain program {program} not compared: {why}"));
    }
    (findings, notes)
}

/// `learn`: the recorded digests with this run's version's programs added (a program seen again
/// takes its new digest: learning accepts the toolchain as it is).
pub fn learn(mut recorded: Recorded, observed: &Observed) -> Recorded {
    if let Some(version) = &observed.version {
        let programs = recorded.toolchains.entry(version.clone()).or_default();
        programs.extend(
            observed
                .programs
                .iter()
                .map(|(p, d)| (p.clone(), d.clone())),
        );
    }
    recorded
}

#[cfg(test)]
#[path = "toolchain_drift_tests.rs"]
mod tests;
