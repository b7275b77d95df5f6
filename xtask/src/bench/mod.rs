//! `cargo xtask bench`: what watching a build with buildwatch costs on this machine, written to
//! BENCHMARKS.md.
//!
//! - Real builds: clean builds of ripgrep (`cargo install`, pinned) and of a workspace of crates
//!   with heavy build scripts and proc-macros (tests/fixtures/popular), each unwatched, under
//!   `buildwatch ci`, under `strace -f` with the same syscalls, and under bpftrace with the same
//!   tracepoints, alternated within each round and reversed every other round (ABCD DCBA ...) so
//!   that drift, and what the build before left behind, affect all alike.
//! - Storm: a program opening files (or connecting to a loopback listener) as fast as it can, or
//!   throttled at increasing rates, to find the highest event rate the sensor takes without loss.
//! - Memory: buildwatch's own peak RSS (VmHWM, sampled from /proc while it runs: rusage of a
//!   child would include the build it watches) during the builds and after 1M and 10M events.
//! - Startup: from just before spawning buildwatch to the first thing the watched program does.
//! - Guard: what a running `buildwatch guard` costs the machine when no build runs.
//! - In-kernel cost by program: runs and time of every eBPF program, the system call handlers
//!   included, over one watched build and the open storm (bpf_stats, the dispatchers' counts and
//!   perf samples).
//! - Soak: one watch through 30 minutes of opens and a million short-lived processes; its memory
//!   over time.
//!
//! Everything runs as root (buildwatch needs it). A full run takes about two hours; `--quick`
//! runs one round, small storms and a short soak, and writes target/bench/BENCHMARKS.md instead
//! of the top-level one. `--only soak` at full size updates the soak section of the top-level
//! file alone.
use std::{
    fmt::Write as _,
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, describe, is_root, root, run, setup};

mod builds;
mod doc;
mod doc_builds;
mod guard;
mod machine;
mod measure;
mod memory;
mod open_cost;
mod program_cost;
mod soak;
mod startup;
mod storm;

use builds::*;
use doc::*;
use doc_builds::*;
use guard::*;
use machine::*;
use measure::*;
use memory::*;
use open_cost::*;
use program_cost::*;
use soak::*;
use startup::*;
use storm::*;

pub(super) const USAGE: &str = "usage: cargo xtask bench [--quick] [--rounds N] [--only SECTIONS]

  --quick          one round of builds, short storms; writes target/bench/BENCHMARKS.md
  --rounds N       rounds of real builds (default 8)
  --only LIST      comma-separated sections: startup, storm, memory, builds, guard, opencost,
                   programcost, soak (a partial run writes target/bench/BENCHMARKS.md; with 8
                   rounds or more, startup, guard, opencost, programcost and a full-size soak
                   replace their own sections of BENCHMARKS.md and nothing else)
  --soak-minutes M     how long the soak runs (default 30; 2 with --quick)
  --soak-processes N   short-lived processes it starts (default 1000000; 50000 with --quick)
  --soak-rate R        opens per second throughout (default 100000)
  --soak-parallel P    processes started at once (default 4)";

/// ripgrep, pinned.
pub(super) const RIPGREP: &str = "ripgrep@14.1.1";

/// The syscalls buildwatch's sensor watches, for `strace -e trace=`.
pub(super) const STRACE_SYSCALLS: &str = "execve,execveat,fork,vfork,clone,clone3,exit_group,openat,openat2,\
open,creat,open_by_handle_at,connect,sendto,sendmsg,sendmmsg,mmap,rename,renameat,renameat2,\
link,linkat,symlink,symlinkat,ptrace,process_vm_writev,process_vm_readv,pidfd_getfd,unshare,setns,\
io_uring_setup,io_uring_enter";

/// Files the open storm cycles through (distinct paths, so the monitor sees many).
pub(super) const STORM_FILES: u64 = 1024;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Section {
    Startup,
    Storm,
    Memory,
    Builds,
    Guard,
    OpenCost,
    ProgramCost,
    Soak,
}

pub(super) const SECTIONS: [(&str, Section); 8] = [
    ("startup", Section::Startup),
    ("storm", Section::Storm),
    ("memory", Section::Memory),
    ("builds", Section::Builds),
    ("guard", Section::Guard),
    ("opencost", Section::OpenCost),
    ("programcost", Section::ProgramCost),
    ("soak", Section::Soak),
];

pub(super) struct Options {
    pub(super) quick: bool,
    pub(super) rounds: usize,
    pub(super) sections: Vec<Section>,
    pub(super) soak: SoakOptions,
}

impl Options {
    pub(super) fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            quick: false,
            rounds: 8,
            sections: SECTIONS.iter().map(|(_, s)| *s).collect(),
            soak: SoakOptions::default(),
        };
        let mut rounds = None;
        let (mut minutes, mut processes) = (None, None);
        fn number<T: std::str::FromStr>(arg: &str, value: Option<&String>) -> Result<T> {
            value
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{arg} needs a number\n{USAGE}"))
        }
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--rounds" => {
                    let n = args.next().context("--rounds needs a number")?;
                    rounds = Some(n.parse().context("--rounds needs a number")?);
                }
                "--only" => {
                    let list = args.next().context("--only needs a list of sections")?;
                    options.sections = list
                        .split(',')
                        .map(|name| {
                            SECTIONS
                                .iter()
                                .find(|(n, _)| *n == name.trim())
                                .map(|(_, s)| *s)
                                .with_context(|| format!("unknown section `{name}`\n{USAGE}"))
                        })
                        .collect::<Result<_>>()?;
                }
                "--soak-minutes" => minutes = Some(number(arg, args.next())?),
                "--soak-processes" => processes = Some(number(arg, args.next())?),
                "--soak-rate" => options.soak.open_rate = number(arg, args.next())?,
                "--soak-parallel" => options.soak.parallel = number(arg, args.next())?,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument `{other}`\n{USAGE}"),
            }
        }
        options.rounds = rounds.unwrap_or(if options.quick { 1 } else { 8 });
        options.soak.minutes = minutes.unwrap_or(if options.quick { 2.0 } else { 30.0 });
        options.soak.processes =
            processes.unwrap_or(if options.quick { 50_000 } else { 1_000_000 });
        if options.soak.minutes.is_nan()
            || options.soak.minutes <= 0.0
            || options.soak.parallel == 0
        {
            bail!("--soak-minutes and --soak-parallel must be above 0");
        }
        if options.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        Ok(options)
    }

    /// A full run: the one whose results go to the top-level BENCHMARKS.md.
    pub(super) fn full(&self) -> bool {
        !self.quick
            && self.rounds >= 8
            && self.sections.len() == SECTIONS.len()
            && self.soak.is_full()
    }

    /// A full-size soak alone: its section replaces the one of the top-level BENCHMARKS.md.
    /// A partial run whose sections go into BENCHMARKS.md in place of theirs: not quick, the
    /// full number of rounds, a full-size soak if any, and only sections that stand alone (the
    /// storm, memory and build sections feed the page's targets table, so only a full run
    /// writes them).
    pub(super) fn sections_of_record(&self) -> bool {
        !self.quick
            && !self.full()
            && self.rounds >= 8
            && (!self.runs(Section::Soak) || self.soak.is_full())
            && self.sections.iter().all(|s| {
                matches!(
                    s,
                    Section::Startup
                        | Section::Guard
                        | Section::OpenCost
                        | Section::ProgramCost
                        | Section::Soak
                )
            })
    }

    /// The sections asked for, as `--only` takes them.
    pub(super) fn section_names(&self) -> String {
        SECTIONS
            .iter()
            .filter(|(_, s)| self.runs(*s))
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub(super) fn runs(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }
}

/// What every section needs.
pub(super) struct Bench {
    /// target/bench: workloads, logs, reports.
    pub(super) work: PathBuf,
    /// target/release/buildwatch.
    pub(super) buildwatch: PathBuf,
    /// The storm program, compiled from xtask/bench/storm.c.
    pub(super) storm: PathBuf,
    /// Directory of the files the open storm opens.
    pub(super) storm_files: PathBuf,
    /// cargo, resolved in PATH (bpftrace wants an absolute path).
    pub(super) cargo: PathBuf,
    /// bpftrace's script, or why bpftrace is not part of the comparison.
    pub(super) bpftrace: std::result::Result<PathBuf, String>,
    pub(super) quick: bool,
}

pub fn bench(args: &[String]) -> Result<()> {
    // What is measured must run as it would from a shell, not with the LD_LIBRARY_PATH that
    // cargo run (`cargo xtask`) sets for xtask (see builds::clean_env).
    // SAFETY: xtask has started no thread yet; nothing reads the environment concurrently.
    unsafe { std::env::remove_var("LD_LIBRARY_PATH") };
    let options = Options::parse(args)?;
    if !is_root() {
        bail!("the benchmarks load the eBPF sensor: run them as root (sudo -E cargo xtask bench)");
    }
    setup::setup()?;
    run(cargo().args(["build", "--release", "--package", "monitor"]))?;
    let work = root().join("target/bench");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let storm = work.join("storm");
    compile_storm(&storm)?;
    let storm_files = work.join("storm-files");
    std::fs::create_dir_all(&storm_files)?;
    for i in 0..STORM_FILES {
        let file = storm_files.join(format!("f{i}"));
        if !file.exists() {
            std::fs::write(&file, b"")?;
        }
    }
    let cargo = which("cargo").context("cargo is not in PATH")?;
    ensure_tool("strace", "strace").map_err(anyhow::Error::msg)?;
    let bpftrace = ensure_tool("bpftrace", "bpftrace").and_then(|()| {
        let script = root().join("xtask/bench/watch.bt");
        bpftrace_smoke_test(&script, &work).map(|()| script)
    });
    if let Err(why) = &bpftrace {
        eprintln!("xtask: bench: bpftrace is left out: {why}");
    }
    let bench = Bench {
        work,
        buildwatch: root().join("target/release/buildwatch"),
        storm,
        storm_files,
        cargo,
        bpftrace,
        quick: options.quick,
    };

    let started = Instant::now();
    let machine = Machine::describe(&bench);
    let mut doc = Doc::default();
    if options.runs(Section::Startup) {
        doc.startup = Some(bench.startup()?);
    }
    if options.runs(Section::Storm) {
        doc.storm = Some(bench.storm()?);
    }
    if options.runs(Section::Memory) {
        let rate = doc.storm.as_ref().and_then(|s| s.zero_loss_rate());
        doc.memory = Some(bench.memory(rate)?);
    }
    if options.runs(Section::Builds) {
        doc.builds = Some(bench.builds(options.rounds)?);
    }
    if options.runs(Section::Guard) {
        doc.guard = Some(bench.guard(options.rounds)?);
    }
    if options.runs(Section::OpenCost) {
        doc.open_cost = Some(bench.open_cost(options.rounds.min(5))?);
    }
    if options.runs(Section::ProgramCost) {
        doc.program_cost = Some(bench.program_cost()?);
    }
    if options.runs(Section::Soak) {
        doc.soak = Some(bench.soak(&options.soak, &machine)?);
    }
    doc.verifier = verifier_stats(&bench);
    let (out, text) = if options.sections_of_record() {
        // A partial run of record: its sections replace theirs in BENCHMARKS.md, each headed by
        // the run that made it (the rest of the page, its targets table included, stays).
        let out = root().join("BENCHMARKS.md");
        let mut text = std::fs::read_to_string(&out).unwrap_or_default();
        let origin = format!(
            "> From `cargo xtask bench --only {} --rounds {}` on {}, commit {}, on the machine \
             of the Machine table.\n\n",
            options.section_names(),
            options.rounds,
            machine.date,
            machine.commit,
        );
        let parts: [(&str, Option<String>); 6] = [
            (
                "## Startup",
                doc.startup
                    .as_ref()
                    .map(|s| rendered(|md| render_startup(md, s))),
            ),
            (
                "## Guard: the machine when no build runs",
                doc.guard
                    .as_ref()
                    .map(|g| rendered(|md| render_guard(md, g))),
            ),
            (
                "## In-kernel cost per open",
                doc.open_cost
                    .as_ref()
                    .map(|r| rendered(|md| render_open_cost(md, r))),
            ),
            (
                "## In-kernel cost by program",
                doc.program_cost
                    .as_ref()
                    .map(|c| rendered(|md| render_program_cost(md, c))),
            ),
            (
                "## Soak",
                doc.soak.as_ref().map(|s| rendered(|md| render_soak(md, s))),
            ),
            // Measured by every run (the loader's own figures).
            (
                "## eBPF programs",
                (!doc.verifier.is_empty())
                    .then(|| rendered(|md| render_verifier(md, &doc.verifier))),
            ),
        ];
        for (heading, section) in parts {
            if let Some(section) = section {
                let section = match section.split_once('\n') {
                    Some((first, rest)) if first.trim_end() == heading => {
                        format!("{first}\n\n{origin}{}", rest.trim_start_matches('\n'))
                    }
                    _ => section,
                };
                text = splice_section(&text, heading, &section);
            }
        }
        (out, text)
    } else if options.full() {
        let text = doc.render(&machine, &bench, &options, started.elapsed());
        (root().join("BENCHMARKS.md"), text)
    } else {
        let text = doc.render(&machine, &bench, &options, started.elapsed());
        (bench.work.join("BENCHMARKS.md"), text)
    };
    std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "xtask: bench: done in {:.0} min, results in {}",
        started.elapsed().as_secs_f64() / 60.0,
        out.display()
    );
    Ok(())
}

/// What a render function writes.
fn rendered(render: impl FnOnce(&mut String)) -> String {
    let mut md = String::new();
    render(&mut md);
    md
}

pub(super) fn compile_storm(out: &Path) -> Result<()> {
    let source = root().join("xtask/bench/storm.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    // Static when the C library allows it: the startup figure then has no dynamic loading in it.
    let static_ok = Command::new(&cc)
        .args(["-O2", "-static", "-o"])
        .arg(out)
        .arg(&source)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !static_ok {
        run(Command::new(&cc).args(["-O2", "-o"]).arg(out).arg(&source))?;
    }
    Ok(())
}

/// A program in PATH.
pub(super) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Installs `tool` with apt-get (package `package`) when it is missing; Err says why it is not
/// usable.
pub(super) fn ensure_tool(tool: &str, package: &str) -> std::result::Result<(), String> {
    if which(tool).is_some() {
        return Ok(());
    }
    if which("apt-get").is_none() {
        return Err(format!("{tool} is not installed and there is no apt-get"));
    }
    let installed = run(Command::new("apt-get").args(["update", "-q"])).and_then(|()| {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    });
    match installed {
        Ok(()) if which(tool).is_some() => Ok(()),
        Ok(()) => Err(format!(
            "apt-get installed {package} but {tool} is not in PATH"
        )),
        Err(e) => Err(format!("`apt-get install {package}` failed: {e:#}")),
    }
}

/// Runs the bpftrace script over `/bin/true`: Err with bpftrace's complaint if it cannot run.
pub(super) fn bpftrace_smoke_test(script: &Path, work: &Path) -> std::result::Result<(), String> {
    let out_file = work.join("bpftrace-smoke.out");
    let out = Command::new("bpftrace")
        .arg("-o")
        .arg(&out_file)
        .args(["-c", "/bin/true"])
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bpftrace: {e}"))?;
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    if !out.status.success() || !text.contains("exec ") {
        return Err(format!(
            "bpftrace failed on its script ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}
