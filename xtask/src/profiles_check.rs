//! `cargo xtask profiles-check`: the shipped profiles keep working. Builds workloads that
//! together use every shipped profile's crate that can be built here, each under
//! `buildwatch ci --fail-on all` with the shipped profiles only, and expects zero findings;
//! then checks that every shipped profile's crate ran in one of them, except the profiles
//! written from a crate's source (marked "from source, not from a run").
//!
//! Workloads: the fixture workspaces tests/fixtures/{popular,system-libs,profiles-*}, and
//! published tools checked from their crates.io source with their own Cargo.lock (as
//! `cargo install --locked` builds them). `cargo check` runs every build script and proc-macro
//! exactly as a build does, without generating code for the rest; one target directory serves
//! every workload, so a crate shared by two of them runs its build script once.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{as_root, cargo, root, run};

/// What marks a profile written from a crate's published source rather than from a run.
const FROM_SOURCE: &str = "from source, not from a run";

/// Published tools checked from their own source: (crate, version, extra cargo arguments).
const PUBLISHED: &[(&str, &str, &[&str])] = &[
    ("git-delta", "0.20.1", &[]),
    ("fd-find", "10.5.0", &["--features", "use-jemalloc"]),
    ("eza", "0.23.4", &[]),
];

/// The result of one workload.
struct Outcome {
    name: String,
    status: Option<i32>,
    findings: Vec<String>,
    ran: BTreeSet<String>,
}

pub fn profiles_check(args: &[String]) -> Result<()> {
    let only: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::setup::setup()?;
    crate::setup::workload_packages();
    run(cargo().args(["build", "--release", "-p", "monitor"]))?;
    let bin = root().join("target/release/buildwatch");
    let work =
        std::env::temp_dir().join(format!("buildwatch-profiles-check-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = check(&bin, &work, &only);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("xtask: workloads and reports kept in {}", work.display());
    }
    result
}

fn check(bin: &Path, work: &Path, only: &[&str]) -> Result<()> {
    let mut workloads: Vec<(String, PathBuf, Vec<String>)> = Vec::new();
    for fixture in fixtures()? {
        let dir = work.join(&fixture);
        copy_dir(&root().join("tests/fixtures").join(&fixture), &dir)?;
        workloads.push((fixture, dir, Vec::new()));
    }
    for (name, dir, extra) in published(work)? {
        workloads.push((name, dir, extra));
    }
    workloads.retain(|(name, _, _)| only.is_empty() || only.contains(&name.as_str()));
    let target = work.join("target");
    let no_profiles = work.join("no-user-profiles");
    let mut outcomes = Vec::new();
    for (name, dir, extra) in &workloads {
        let report = work.join(format!("{name}.report.json"));
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir).env("CARGO_TARGET_DIR", &target);
        match workload_library_path() {
            Some(path) => cmd.env("LD_LIBRARY_PATH", path),
            None => cmd.env_remove("LD_LIBRARY_PATH"),
        };
        cmd.args(["ci", "--no-tui", "--fail-on", "all", "--profiles"])
            .arg(&no_profiles)
            .arg("--report")
            .arg(&report)
            .args(["--", "cargo", "check", "--locked"])
            .args(extra);
        eprintln!("xtask: profiles-check: {name}");
        let status = as_root(cmd).status().context("running buildwatch")?;
        let outcome = read_outcome(name, status.code(), &report)?;
        eprintln!(
            "xtask: profiles-check: {name}: exit {:?}, {} crates ran build-time code, {} findings",
            outcome.status,
            outcome.ran.len(),
            outcome.findings.len()
        );
        outcomes.push(outcome);
    }
    summarize(&outcomes, only.is_empty())
}

/// LD_LIBRARY_PATH for the workloads: as the user set it, without the directories `cargo run`
/// (which `cargo xtask` is) adds for this workspace's target directory. With them every program
/// of the workload has the dynamic loader search a directory no profile has a reason to allow
/// (seen as onig_sys's build script reading target/debug and target/debug/deps).
fn workload_library_path() -> Option<String> {
    let ours = root().join("target");
    let inherited = std::env::var("LD_LIBRARY_PATH").ok()?;
    let kept: Vec<&str> = inherited
        .split(':')
        .filter(|d| !d.is_empty() && !Path::new(d).starts_with(&ours))
        .collect();
    (!kept.is_empty()).then(|| kept.join(":"))
}

/// The fixture workspaces whose crates the shipped profiles were learned on.
fn fixtures() -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("tests/fixtures"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("profiles-"))
        .collect();
    names.sort();
    names.splice(0..0, ["popular".to_owned(), "system-libs".to_owned()]);
    Ok(names)
}

/// Fetches the published tools (cargo's own download) and copies their sources out of the
/// registry, with the Cargo.lock they were published with.
fn published(work: &Path) -> Result<Vec<(String, PathBuf, Vec<String>)>> {
    let fetch = work.join("fetch");
    std::fs::create_dir_all(fetch.join("src"))?;
    let mut manifest = "[package]\nname = \"fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n".to_owned();
    for (name, version, _) in PUBLISHED {
        manifest.push_str(&format!("{name} = \"={version}\"\n"));
    }
    std::fs::write(fetch.join("Cargo.toml"), manifest)?;
    std::fs::write(fetch.join("src/main.rs"), "fn main() {}\n")?;
    run(cargo().current_dir(&fetch).arg("fetch"))?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let mut out = Vec::new();
    for (name, version, extra) in PUBLISHED {
        let wanted = format!("{name}-{version}");
        let source = std::fs::read_dir(cargo_home.join("registry/src"))?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join(&wanted))
            .find(|p| p.join("Cargo.lock").is_file())
            .with_context(|| format!("{wanted} (with its Cargo.lock) not in the registry"))?;
        let dir = work.join(&wanted);
        copy_dir(&source, &dir)?;
        run(cargo().current_dir(&dir).args(["fetch", "--locked"]))?;
        out.push((wanted, dir, extra.iter().map(|s| (*s).to_owned()).collect()));
    }
    Ok(out)
}

fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    run(Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(dst))?;
    let _ = std::fs::remove_dir_all(dst.join("target"));
    Ok(())
}

fn read_outcome(name: &str, status: Option<i32>, report: &Path) -> Result<Outcome> {
    let text = std::fs::read_to_string(report)
        .with_context(|| format!("{name}: no report at {}", report.display()))?;
    let report: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{name}: report is not JSON"))?;
    let findings = report["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    format!(
                        "{} {} {}: {}",
                        f["severity"].as_str().unwrap_or("?"),
                        f["code"].as_str().unwrap_or("?"),
                        f["crate"]["name"].as_str().unwrap_or("-"),
                        f["detail"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ran = report["crates"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| {
                    c["roles"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|r| r == "build-script" || r == "proc-macro"))
                })
                .filter_map(|c| c["name"].as_str().map(|n| n.replace('_', "-")))
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome {
        name: name.to_owned(),
        status,
        findings,
        ran,
    })
}

/// The shipped profiles: crate (as compared: `_` is `-`) → learned from a run (false: from
/// source).
fn shipped() -> Result<BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("profiles"))? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        out.insert(stem.replace('_', "-"), !text.contains(FROM_SOURCE));
    }
    Ok(out)
}

fn summarize(outcomes: &[Outcome], all: bool) -> Result<()> {
    let shipped = shipped()?;
    let ran: BTreeSet<&String> = outcomes.iter().flat_map(|o| &o.ran).collect();
    let learned = shipped.values().filter(|l| **l).count();
    let missing: Vec<&String> = shipped
        .iter()
        .filter(|(name, learned)| **learned && !ran.contains(name))
        .map(|(name, _)| name)
        .collect();
    let findings: usize = outcomes.iter().map(|o| o.findings.len()).sum();
    println!("profiles-check:");
    for o in outcomes {
        println!(
            "  {:<22} exit {:<4} {:>3} crates with build-time code ran, {} findings",
            o.name,
            o.status.map_or("-".to_owned(), |s| s.to_string()),
            o.ran.len(),
            o.findings.len()
        );
        for f in &o.findings {
            println!("    {f}");
        }
    }
    println!(
        "  {} shipped profiles: {learned} learned from runs ({} of them exercised here), {} \
         written from source",
        shipped.len(),
        learned - missing.len(),
        shipped.len() - learned
    );
    let failed_builds: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.status != Some(0))
        .map(|o| o.name.as_str())
        .collect();
    if findings > 0 || !failed_builds.is_empty() {
        bail!(
            "{findings} findings; workloads that failed: {}",
            if failed_builds.is_empty() {
                "none".to_owned()
            } else {
                failed_builds.join(", ")
            }
        );
    }
    if all && !missing.is_empty() {
        bail!(
            "shipped profiles learned from a run whose crate no workload ran: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("profiles-check: passed");
    Ok(())
}
