//! `cargo xtask fuzz [--time SECS] [TARGET...]`: runs every cargo-fuzz target of `fuzz/` (the
//! parsers of hostile input: profiles, the config file, `replay`'s event streams, the sensor's
//! records) for SECS seconds each, one after the other, and reports the executions and corpus
//! size each reached. A crash fails the task; its input is left in `fuzz/artifacts/<target>/`
//! and belongs in a regression test of the normal suite (docs/reliability.md, "Hostile input").
//!
//! The machine has only the stable toolchain: cargo-fuzz's `-Z` flags are allowed with
//! RUSTC_BOOTSTRAP=1, for this build only. No sanitizer: the code under test is safe Rust, and
//! AddressSanitizer would halve the executions; debug assertions are on (integer overflow panics).
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{describe, root, run, setup};

const TARGETS: [&str; 4] = ["profile", "config", "replay", "decode"];
const USAGE: &str = "usage: cargo xtask fuzz [--time SECS] [TARGET...]
  targets: profile, config, replay, decode (default: all); SECS per target (default 180)";

pub fn fuzz(args: &[String]) -> Result<()> {
    let mut secs = 180u64;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--time" => {
                secs = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .context(format!("--time needs a number of seconds\n{USAGE}"))?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            t if TARGETS.contains(&t) => targets.push(t),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    setup::setup()?;
    cargo_fuzz()?;
    cxx()?;
    let dir = root().join("fuzz");
    run(fuzz_cmd(&dir).args(["build", "-s", "none", "-a"]))?;
    let mut results = Vec::new();
    for target in targets {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        seed(target, &corpus)?;
        let artifacts = dir.join("artifacts").join(target);
        std::fs::create_dir_all(&artifacts)?;
        let log = dir.join(format!("fuzz-{target}.log"));
        let mut cmd = fuzz_cmd(&dir);
        cmd.args(["run", "-s", "none", "-a", target])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .stderr(std::fs::File::create(&log)?);
        eprintln!("xtask: $ {} 2> {}", describe(&cmd), log.display());
        let status = cmd.status().context("failed to run cargo fuzz")?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let runs = final_stat(&text, "stat::number_of_executed_units:");
        let cov = last_coverage(&text);
        let entries = std::fs::read_dir(&corpus)?.count();
        let bytes: u64 = std::fs::read_dir(&corpus)?
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        let crashes: Vec<PathBuf> = std::fs::read_dir(&artifacts)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        results.push((target, status.success(), runs, cov, entries, bytes, crashes));
    }
    println!("\ntarget    seconds  executions  coverage  corpus (inputs, bytes)  result");
    let mut failed = false;
    for (target, ok, runs, cov, entries, bytes, crashes) in &results {
        let runs = runs.map_or("?".to_owned(), |r| r.to_string());
        let cov = cov.map_or("?".to_owned(), |c| c.to_string());
        let result = if *ok && crashes.is_empty() {
            "ok".to_owned()
        } else {
            failed = true;
            format!(
                "FAILED: {} input(s) in fuzz/artifacts/{target}",
                crashes.len()
            )
        };
        println!(
            "{target:<9} {secs:>7}  {runs:>10}  {cov:>8}  {entries:>7} {bytes:>12}   {result}"
        );
    }
    if failed {
        bail!(
            "a fuzz target failed: reproduce with `cargo fuzz run -s none -a TARGET INPUT` in fuzz/"
        );
    }
    Ok(())
}

fn fuzz_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(dir).env("RUSTC_BOOTSTRAP", "1").arg("fuzz");
    cmd
}

/// Installs cargo-fuzz when `cargo fuzz` is missing.
fn cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    }
    Ok(())
}

/// libFuzzer is C++, built by libfuzzer-sys's build script with the `c++` in PATH (or $CXX):
/// installs g++ with apt-get when there is none, else says what to install.
fn cxx() -> Result<()> {
    let found = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if std::env::var_os("CXX").is_some() || found("c++") {
        return Ok(());
    }
    if crate::is_root() && found("apt-get") {
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "g++"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        if found("c++") {
            return Ok(());
        }
    }
    bail!("libFuzzer needs a C++ compiler: install g++ (or clang++ and set CXX), then run again")
}

/// libFuzzer's `-print_final_stats` line `NAME VALUE`.
fn final_stat(log: &str, name: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

/// The coverage libFuzzer last reported (`cov: N` in its status lines): the code edges reached.
fn last_coverage(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        let rest = &l[l.find(" cov: ")? + 6..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Seeds an empty corpus with the real inputs of the repository: the shipped profiles, the
/// configuration examples, the recorded event streams (in each mode of the replay target: as is,
/// gzipped, learning). Records have no files to start from: libFuzzer finds the record kinds
/// from the comparisons the decoder makes.
fn seed(target: &str, corpus: &Path) -> Result<()> {
    if std::fs::read_dir(corpus)?.next().is_some() {
        return Ok(());
    }
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        std::fs::write(corpus.join(name), bytes)
            .with_context(|| format!("cannot write the seed {name}"))
    };
    match target {
        "profile" => {
            for entry in std::fs::read_dir(root().join("profiles"))? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "toml") {
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    write(&name, &std::fs::read(&path)?)?;
                }
            }
        }
        "config" => {
            write(
                "list.toml",
                b"[policy]\nfail-on = [\"unexpected-network\", \"sensitive-read\"]\n",
            )?;
            write("all.toml", b"[policy]\nfail-on = \"all\"\n")?;
            write("empty.toml", b"")?;
        }
        "replay" => {
            let streams = root().join("tests/fixtures/streams");
            for entry in std::fs::read_dir(&streams)? {
                let path = entry?.path();
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let output = Command::new("zcat").arg("-f").arg(&path).output()?;
                // The first events only: libFuzzer mutates small inputs much faster.
                let head: Vec<&[u8]> = output.stdout.split(|&b| b == b'\n').take(60).collect();
                let text = head.join(&b'\n');
                for mode in 0u8..4 {
                    let mut seed = vec![mode];
                    seed.extend_from_slice(&text);
                    write(&format!("{name}.{mode}"), &seed)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}
