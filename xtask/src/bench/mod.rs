//! `cargo xtask bench`: what watching a build with buildwatch costs on this machine, written to
//! BENCHMARKS.md.
//!
//! - Real builds: clean builds of ripgrep (`cargo install`, pinned) and of a workspace of crates
//!   with heavy build scripts and proc-macros (tests/fixtures/popular), each unwatched, under
//!   `buildwatch ci`, under `strace -f` with the same syscalls, and under bpftrace with the same
//!   tracepoints, alternated within each round (ABCD ABCD ...) so that drift affects all alike.
//! - Storm: a program opening files (or connecting to a loopback listener) as fast as it can, or
//!   throttled at increasing rates, to find the highest event rate the sensor takes without loss.
//! - Memory: buildwatch's own peak RSS (VmHWM, sampled from /proc while it runs: rusage of a
//!   child would include the build it watches) during the builds and after 1M and 10M events.
//! - Startup: from just before spawning buildwatch to the first thing the watched program does.
//!
//! Everything runs as root (buildwatch needs it). A full run takes over an hour; `--quick` runs
//! one round and small storms, and writes target/bench/BENCHMARKS.md instead of the top-level one.
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

const USAGE: &str = "usage: cargo xtask bench [--quick] [--rounds N] [--only SECTIONS]

  --quick          one round of builds, short storms; writes target/bench/BENCHMARKS.md
  --rounds N       rounds of real builds (default 5)
  --only LIST      comma-separated sections: startup, storm, memory, builds (a partial run writes
                   target/bench/BENCHMARKS.md)";

/// ripgrep, pinned.
const RIPGREP: &str = "ripgrep@14.1.1";

/// The syscalls buildwatch's sensor watches, for `strace -e trace=`.
const STRACE_SYSCALLS: &str = "execve,execveat,fork,vfork,clone,clone3,exit_group,openat,openat2,\
open,creat,open_by_handle_at,connect,sendto,sendmsg,sendmmsg,mmap,rename,renameat,renameat2,\
link,linkat,symlink,symlinkat,ptrace,process_vm_writev";

/// Files the open storm cycles through (distinct paths, so the monitor sees many).
const STORM_FILES: u64 = 1024;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Section {
    Startup,
    Storm,
    Memory,
    Builds,
}

const SECTIONS: [(&str, Section); 4] = [
    ("startup", Section::Startup),
    ("storm", Section::Storm),
    ("memory", Section::Memory),
    ("builds", Section::Builds),
];

struct Options {
    quick: bool,
    rounds: usize,
    sections: Vec<Section>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            quick: false,
            rounds: 5,
            sections: SECTIONS.iter().map(|(_, s)| *s).collect(),
        };
        let mut rounds = None;
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
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument `{other}`\n{USAGE}"),
            }
        }
        options.rounds = rounds.unwrap_or(if options.quick { 1 } else { 5 });
        if options.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        Ok(options)
    }

    /// A full run: the one whose results go to the top-level BENCHMARKS.md.
    fn full(&self) -> bool {
        !self.quick && self.rounds >= 5 && self.sections.len() == SECTIONS.len()
    }

    fn runs(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }
}

/// What every section needs.
struct Bench {
    /// target/bench: workloads, logs, reports.
    work: PathBuf,
    /// target/release/buildwatch.
    buildwatch: PathBuf,
    /// The storm program, compiled from xtask/bench/storm.c.
    storm: PathBuf,
    /// Directory of the files the open storm opens.
    storm_files: PathBuf,
    /// cargo, resolved in PATH (bpftrace wants an absolute path).
    cargo: PathBuf,
    /// bpftrace's script, or why bpftrace is not part of the comparison.
    bpftrace: std::result::Result<PathBuf, String>,
    quick: bool,
}

pub fn bench(args: &[String]) -> Result<()> {
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
    doc.verifier = verifier_stats(&bench);
    let out = if options.full() {
        root().join("BENCHMARKS.md")
    } else {
        bench.work.join("BENCHMARKS.md")
    };
    let text = doc.render(&machine, &bench, &options, started.elapsed());
    std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "xtask: bench: done in {:.0} min, results in {}",
        started.elapsed().as_secs_f64() / 60.0,
        out.display()
    );
    Ok(())
}

fn compile_storm(out: &Path) -> Result<()> {
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
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Installs `tool` with apt-get (package `package`) when it is missing; Err says why it is not
/// usable.
fn ensure_tool(tool: &str, package: &str) -> std::result::Result<(), String> {
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
fn bpftrace_smoke_test(script: &Path, work: &Path) -> std::result::Result<(), String> {
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

// ---------------------------------------------------------------------------------------------
// Running and measuring one command

/// One watched or unwatched run.
#[derive(Clone, Debug, Default)]
struct Measured {
    secs: f64,
    /// buildwatch's own peak RSS (KiB) and CPU time, when it was sampled.
    hwm_kib: Option<u64>,
    cpu_secs: Option<f64>,
    /// Its resident memory by kind of mapping (KiB), at the last reading (every 0.5 s).
    breakdown: Option<Vec<(&'static str, u64)>>,
}

/// Runs `cmd` with its output in `log`, timing it from just before the spawn to its reaping.
/// With `sample`, the process's own VmHWM and CPU time are read from /proc every 20 ms (the
/// last reading before it exits is kept: /proc of a zombie has no memory figures any more).
fn measure(cmd: &mut Command, log: &Path, sample: bool) -> Result<(Measured, ExitStatus)> {
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to start {}", describe(cmd)))?;
    let pid = child.id();
    let done = AtomicBool::new(false);
    let (status, secs, last) = std::thread::scope(|scope| {
        let sampler = sample.then(|| {
            scope.spawn(|| {
                let mut last = None;
                let mut breakdown = None;
                let mut n = 0u32;
                while !done.load(Ordering::Acquire) {
                    if let Some(s) = proc_sample(pid) {
                        last = Some(s);
                    }
                    if n.is_multiple_of(25)
                        && let Some(b) = smaps_breakdown(pid)
                    {
                        breakdown = Some(b);
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                last.map(|l| (l, breakdown))
            })
        });
        let status = child.wait();
        let secs = start.elapsed().as_secs_f64();
        done.store(true, Ordering::Release);
        let last = sampler.and_then(|h| h.join().ok()).flatten();
        (status, secs, last)
    });
    let status = status.with_context(|| format!("failed to wait for {}", describe(cmd)))?;
    Ok((
        Measured {
            secs,
            hwm_kib: last.as_ref().map(|((hwm, _), _)| *hwm),
            cpu_secs: last.as_ref().map(|((_, cpu), _)| *cpu),
            breakdown: last.and_then(|(_, b)| b),
        },
        status,
    ))
}

/// VmHWM (KiB) and user+system CPU seconds of process `pid` itself (not of its children).
fn proc_sample(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((hwm, (utime + stime) / ticks.max(1.0)))
}

/// Resident memory of process `pid` by kind of mapping (KiB), largest first.
fn smaps_breakdown(pid: u32) -> Option<Vec<(&'static str, u64)>> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut kinds: Vec<(&'static str, u64)> = Vec::new();
    let mut kind = "";
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let name = line.split_whitespace().nth(5).unwrap_or("");
            kind = match name {
                "anon_inode:bpf-map" => "eBPF maps mapped (the ring buffer's data, mapped twice)",
                "[heap]" => "heap",
                "" => "other anonymous memory (thread stacks, large allocations)",
                "[stack]" => "main stack",
                _ => "the binary and libraries",
            };
        } else if let Some(kib) = line.strip_prefix("Rss:") {
            let kib: u64 = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some(entry) => entry.1 += kib,
                None => kinds.push((kind, kib)),
            }
        }
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    Some(kinds)
}

/// What buildwatch's JSON report says about a run.
#[derive(Clone, Debug, Default)]
struct Counted {
    /// Events processed (every kind but `lost` records).
    events: u64,
    lost: u64,
    /// The watched command's exit status.
    exit_status: i64,
}

fn read_report(path: &Path) -> Result<Counted> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("buildwatch wrote no report at {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("cannot parse the report {}", path.display()))?;
    let counts = json["counts"]
        .as_object()
        .context("the report has no counts")?;
    let events = counts
        .iter()
        .filter(|(kind, _)| kind.as_str() != "lost")
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    Ok(Counted {
        events,
        lost: json["lost_events"].as_u64().unwrap_or(0),
        exit_status: json["exit_status"].as_i64().unwrap_or(-1),
    })
}

/// buildwatch's exit statuses that still mean "the command ran and succeeded": 3 (a finding
/// failed the policy) and 4 (events lost) are results to report, not failures of the bench.
fn buildwatch_ran(status: ExitStatus) -> bool {
    matches!(status.code(), Some(0 | 3 | 4))
}

/// The storm's `ops=N secs=S rate=R failed=F` line in `log`.
fn storm_line(log: &Path) -> Result<(u64, f64)> {
    let text = std::fs::read_to_string(log)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("ops="))
        .with_context(|| format!("the storm printed no result in {}", log.display()))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let ops = field("ops=").context("storm line without ops")? as u64;
    let rate = field("rate=").context("storm line without rate")?;
    if field("failed=").unwrap_or(0.0) > 0.0 {
        bail!("the storm's operations failed: {line}");
    }
    Ok((ops, rate))
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// min, median, max.
fn stats(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[0], median, v[n - 1]))
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Startup

struct Startup {
    /// Milliseconds from spawning buildwatch to the watched program's first action.
    watched_ms: Vec<f64>,
    /// The same without buildwatch (spawning the program directly).
    direct_ms: Vec<f64>,
    /// Wall time of a whole `buildwatch ci -- storm now` run (load, run, detach, report).
    whole_ms: Vec<f64>,
}

impl Bench {
    fn startup(&self) -> Result<Startup> {
        eprintln!("xtask: bench: startup");
        let mut result = Startup {
            watched_ms: Vec::new(),
            direct_ms: Vec::new(),
            whole_ms: Vec::new(),
        };
        let log = self.work.join("startup.log");
        for _ in 0..10 {
            let t0 = now_ns();
            let out = Command::new(&self.storm)
                .arg("now")
                .output()
                .context("failed to run the storm program")?;
            result.direct_ms.push(first_action_ms(&out.stdout, t0)?);

            let mut cmd = Command::new(&self.buildwatch);
            cmd.args(["ci", "--no-tui", "--"])
                .arg(&self.storm)
                .arg("now");
            let t0 = now_ns();
            let (measured, status) = measure(&mut cmd, &log, false)?;
            if !status.success() {
                bail!("buildwatch failed ({status}):\n{}", tail(&log));
            }
            let text = std::fs::read(&log)?;
            result.watched_ms.push(first_action_ms(&text, t0)?);
            result.whole_ms.push(measured.secs * 1e3);
        }
        Ok(result)
    }
}

/// The time in ms between `t0` and the nanosecond timestamp the storm's `now` printed (the first
/// line of `output` that is a number).
fn first_action_ms(output: &[u8], t0: u128) -> Result<f64> {
    let text = String::from_utf8_lossy(output);
    let t1: u128 = text
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .context("the watched program printed no time")?;
    Ok(t1.saturating_sub(t0) as f64 / 1e6)
}

// ---------------------------------------------------------------------------------------------
// Storm

#[derive(Clone, Debug)]
struct StormRun {
    /// Requested rate (operations/s), None: as fast as possible.
    target: Option<f64>,
    procs: u32,
    ops: u64,
    /// Rate the storm achieved (operations/s).
    rate: f64,
    counted: Counted,
}

struct Storm {
    /// Unwatched, as fast as possible: opens/s with 1 and 2 processes, connects/s.
    bare_open: Vec<(u32, f64)>,
    bare_connect: f64,
    /// Under buildwatch, as fast as possible.
    open_flat_out: Vec<StormRun>,
    connect_flat_out: Vec<StormRun>,
    /// Under buildwatch, throttled at increasing rates.
    ladder: Vec<StormRun>,
    /// Seconds each ladder step lasts.
    step_secs: f64,
}

impl Storm {
    /// The highest achieved event rate without loss, among every storm run.
    fn zero_loss_rate(&self) -> Option<f64> {
        self.ladder
            .iter()
            .chain(&self.open_flat_out)
            .filter(|r| r.counted.lost == 0)
            .map(|r| r.rate)
            .max_by(f64::total_cmp)
    }

    /// The highest achieved rate without loss on the throttled ladder (two producers).
    fn ladder_zero_loss(&self) -> Option<f64> {
        self.ladder
            .iter()
            .filter(|r| r.counted.lost == 0)
            .map(|r| r.rate)
            .max_by(f64::total_cmp)
    }

    /// The lowest achieved rate at which the throttled ladder lost events.
    fn first_loss(&self) -> Option<&StormRun> {
        self.ladder
            .iter()
            .filter(|r| r.counted.lost > 0)
            .min_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    /// What the sensor adds to one open in the kernel (µs), from one producer's rate unwatched
    /// and watched, as fast as it can: the storm spends its time in the syscall and the
    /// programs attached to it.
    fn open_cost_us(&self) -> Option<f64> {
        let bare = self.bare_open.iter().find(|(p, _)| *p == 1)?.1;
        let watched = self.open_flat_out.iter().find(|r| r.procs == 1)?.rate;
        (bare > 0.0 && watched > 0.0).then(|| (1.0 / watched - 1.0 / bare) * 1e6)
    }
}

/// A loopback listener that accepts and drops connections until the bench ends. Its backlog is
/// the kernel's maximum (std's `TcpListener::bind` asks for 128): a full accept queue drops
/// SYNs, and the storm's connects would then wait out one-second retransmissions.
fn loopback_listener() -> Result<u16> {
    // SAFETY: plain socket calls on a descriptor this function owns; `addr` outlives the call.
    let fd = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            bail!(
                "cannot create the storm's listening socket: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let bound = libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if bound != 0 || libc::listen(fd, 65535) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            bail!("cannot listen on 127.0.0.1 for the storm: {e}");
        }
        fd
    };
    // SAFETY: `fd` is a listening socket owned by nothing else.
    let listener = unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    Ok(port)
}

impl Bench {
    /// The storm command: `procs` storm processes (under one `sh`) sharing `total` operations
    /// and the rate `target`.
    fn storm_command(
        &self,
        op: &StormOp,
        total: u64,
        target: Option<f64>,
        procs: u32,
    ) -> Vec<String> {
        let per_proc = total / u64::from(procs);
        let rate = target.map_or(0.0, |r| r / f64::from(procs));
        let one = match op {
            StormOp::Open => format!(
                "{} open {} {STORM_FILES} {per_proc} {rate:.0}",
                self.storm.display(),
                self.storm_files.display()
            ),
            StormOp::Connect(port) => {
                format!(
                    "{} connect {port} {per_proc} {rate:.0}",
                    self.storm.display()
                )
            }
        };
        if procs == 1 {
            return one.split(' ').map(str::to_owned).collect();
        }
        // Several processes: started together, their lines summed by `storm_sum` below.
        let script = format!(
            "{} & wait",
            std::iter::repeat_n(one.as_str(), procs as usize)
                .collect::<Vec<_>>()
                .join(" & ")
        );
        vec!["sh".into(), "-c".into(), script]
    }

    /// Runs a storm (watched by buildwatch or not) and returns its operations and rate.
    fn run_storm(
        &self,
        op: &StormOp,
        total: u64,
        target: Option<f64>,
        procs: u32,
        watched: bool,
    ) -> Result<StormRun> {
        let argv = self.storm_command(op, total, target, procs);
        let log = self.work.join("storm.log");
        let report = self.work.join("storm-report.json");
        let _ = std::fs::remove_file(&report);
        let mut cmd = if watched {
            let mut cmd = Command::new(&self.buildwatch);
            cmd.args(["ci", "--no-tui", "--report"])
                .arg(&report)
                .arg("--")
                .args(&argv);
            cmd
        } else {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        };
        let (_, status) = measure(&mut cmd, &log, false)?;
        let ok = if watched {
            buildwatch_ran(status)
        } else {
            status.success()
        };
        if !ok {
            bail!("storm run failed ({status}):\n{}", tail(&log));
        }
        let (ops, rate) = storm_sum(&log)?;
        let counted = if watched {
            read_report(&report)?
        } else {
            Counted::default()
        };
        let run = StormRun {
            target,
            procs,
            ops,
            rate,
            counted,
        };
        eprintln!(
            "xtask: bench: storm {} x{procs} target {} -> {ops} ops at {:.0}/s{}",
            op.name(),
            target.map_or("max".to_owned(), |t| format!("{t:.0}/s")),
            rate,
            if watched {
                format!(", {} events, {} lost", run.counted.events, run.counted.lost)
            } else {
                String::new()
            }
        );
        Ok(run)
    }

    fn storm(&self) -> Result<Storm> {
        eprintln!("xtask: bench: storm");
        let port = loopback_listener()?;
        let connect = StormOp::Connect(port);
        let scale = if self.quick { 5 } else { 1 };
        let flat_total = 4_000_000 / scale;
        let connect_total = 200_000 / scale;
        let mut storm = Storm {
            bare_open: Vec::new(),
            bare_connect: 0.0,
            open_flat_out: Vec::new(),
            connect_flat_out: Vec::new(),
            ladder: Vec::new(),
            step_secs: if self.quick { 2.0 } else { 5.0 },
        };
        for procs in [1, 2] {
            let bare = self.run_storm(&StormOp::Open, flat_total, None, procs, false)?;
            storm.bare_open.push((procs, bare.rate));
            storm.open_flat_out.push(self.run_storm(
                &StormOp::Open,
                flat_total,
                None,
                procs,
                true,
            )?);
        }
        storm.bare_connect = self
            .run_storm(&connect, connect_total, None, 1, false)?
            .rate;
        for procs in [1, 2] {
            storm.connect_flat_out.push(self.run_storm(
                &connect,
                connect_total,
                None,
                procs,
                true,
            )?);
        }
        // The ladder: 2 processes, so that the storm is not capped by one CPU's syscall rate;
        // stops once events are lost twice or the storm cannot reach its target any more.
        let mut target = 100_000.0;
        let mut losses = 0;
        while losses < 2 {
            let total = (target * storm.step_secs) as u64;
            let run = self.run_storm(&StormOp::Open, total, Some(target), 2, true)?;
            let saturated = run.rate < 0.9 * target;
            if run.counted.lost > 0 {
                losses += 1;
            }
            storm.ladder.push(run);
            if saturated {
                break;
            }
            target *= if target < 400_000.0 { 1.5 } else { 1.25 };
        }
        // Refine between the highest clean step and the first lossy one.
        if let (Some(clean), Some(lossy)) = (storm.ladder_zero_loss(), storm.first_loss()) {
            let lossy = lossy.target.unwrap_or(lossy.rate);
            if clean < lossy {
                let mid = (clean + lossy) / 2.0;
                let total = (mid * storm.step_secs) as u64;
                let run = self.run_storm(&StormOp::Open, total, Some(mid), 2, true)?;
                storm.ladder.push(run);
            }
        }
        storm
            .ladder
            .sort_by(|a, b| a.target.unwrap_or(0.0).total_cmp(&b.target.unwrap_or(0.0)));
        Ok(storm)
    }
}

enum StormOp {
    Open,
    Connect(u16),
}

impl StormOp {
    fn name(&self) -> &'static str {
        match self {
            StormOp::Open => "open",
            StormOp::Connect(_) => "connect",
        }
    }
}

/// Sums the `ops=` lines of every storm process in `log`; the rate is the total over the longest
/// process's time.
fn storm_sum(log: &Path) -> Result<(u64, f64)> {
    let text = std::fs::read_to_string(log)?;
    let mut ops = 0;
    let mut secs: f64 = 0.0;
    let mut any = false;
    for line in text.lines().filter(|l| l.starts_with("ops=")) {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse::<f64>().ok())
        };
        if field("failed=").unwrap_or(0.0) > 0.0 {
            bail!("the storm's operations failed: {line}");
        }
        ops += field("ops=").context("storm line without ops")? as u64;
        secs = secs.max(field("secs=").context("storm line without secs")?);
        any = true;
    }
    if !any {
        // Fall back to the single-line parser for its error message.
        return storm_line(log);
    }
    Ok((ops, if secs > 0.0 { ops as f64 / secs } else { 0.0 }))
}

// ---------------------------------------------------------------------------------------------
// Memory after many events

struct MemoryRun {
    events_wanted: u64,
    rate: f64,
    counted: Counted,
    hwm_kib: Option<u64>,
    cpu_secs: Option<f64>,
    breakdown: Option<Vec<(&'static str, u64)>>,
}

impl Bench {
    /// buildwatch's VmHWM after 1M and 10M open events, at a rate it takes without loss (80% of
    /// the storm's zero-loss rate, when the storm ran).
    fn memory(&self, zero_loss_rate: Option<f64>) -> Result<Vec<MemoryRun>> {
        eprintln!("xtask: bench: memory");
        let rate = zero_loss_rate.map(|r| (r * 0.8).max(50_000.0));
        let sizes: &[u64] = if self.quick {
            &[100_000, 1_000_000]
        } else {
            &[1_000_000, 10_000_000]
        };
        let mut out = Vec::new();
        for &events in sizes {
            let argv = self.storm_command(&StormOp::Open, events, rate, 1);
            let log = self.work.join("memory.log");
            let report = self.work.join("memory-report.json");
            let _ = std::fs::remove_file(&report);
            let mut cmd = Command::new(&self.buildwatch);
            cmd.args(["ci", "--no-tui", "--report"])
                .arg(&report)
                .arg("--")
                .args(&argv);
            let (measured, status) = measure(&mut cmd, &log, true)?;
            if !buildwatch_ran(status) {
                bail!("memory run failed ({status}):\n{}", tail(&log));
            }
            let (_, achieved) = storm_sum(&log)?;
            let counted = read_report(&report)?;
            eprintln!(
                "xtask: bench: memory after {} events ({} lost): VmHWM {:?} KiB",
                counted.events, counted.lost, measured.hwm_kib
            );
            out.push(MemoryRun {
                events_wanted: events,
                rate: achieved,
                counted,
                hwm_kib: measured.hwm_kib,
                cpu_secs: measured.cpu_secs,
                breakdown: measured.breakdown,
            });
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Real builds

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Watch {
    Unwatched,
    Buildwatch,
    Strace,
    Bpftrace,
}

impl Watch {
    fn label(self) -> &'static str {
        match self {
            Watch::Unwatched => "unwatched",
            Watch::Buildwatch => "buildwatch ci",
            Watch::Strace => "strace -f",
            Watch::Bpftrace => "bpftrace",
        }
    }
}

struct Workload {
    name: &'static str,
    title: String,
    /// Working directory of the build.
    dir: PathBuf,
    argv: Vec<String>,
    /// Removed before every run (clean build).
    clean: Vec<PathBuf>,
    /// Must exist after every run (bpftrace does not pass the command's exit status on).
    artifact: PathBuf,
}

#[derive(Clone, Debug)]
struct BuildRun {
    workload: &'static str,
    watch: Watch,
    measured: Measured,
    /// buildwatch's report.
    counted: Option<Counted>,
    /// bpftrace: lines written and events it reported lost.
    bpftrace: Option<(u64, u64)>,
}

struct Builds {
    workloads: Vec<(String, String)>,
    rounds: usize,
    runs: Vec<BuildRun>,
    /// Why a configuration dropped out mid-run.
    dropped: Vec<String>,
}

/// The environment of a nested build: without what `cargo xtask` (cargo run) set for xtask.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO") && key != "CARGO_HOME" {
            cmd.env_remove(key.as_ref());
        }
    }
}

impl Bench {
    fn prepare_ripgrep(&self) -> Result<Workload> {
        let dir = self.work.join("ripgrep");
        std::fs::create_dir_all(&dir)?;
        let install_root = dir.join("root");
        let target = dir.join("target");
        let args = |offline: bool| {
            let mut argv = vec![self.cargo.display().to_string(), "install".to_owned()];
            if offline {
                argv.push("--offline".to_owned());
            }
            argv.extend([
                "--locked".to_owned(),
                "--root".to_owned(),
                install_root.display().to_string(),
                "--target-dir".to_owned(),
                target.display().to_string(),
                RIPGREP.to_owned(),
            ]);
            argv
        };
        let workload = Workload {
            name: "ripgrep",
            title: format!("`cargo install --locked {RIPGREP}` (release)"),
            dir: dir.clone(),
            argv: args(true),
            clean: vec![install_root.clone(), target.clone()],
            artifact: install_root.join("bin/rg"),
        };
        // Warm-up: fills the registry cache (online) and the page cache.
        eprintln!("xtask: bench: warm-up build of {RIPGREP}");
        self.clean(&workload)?;
        let online = args(false);
        let mut cmd = Command::new(&online[0]);
        cmd.args(&online[1..]).current_dir(&dir);
        clean_env(&mut cmd);
        let log = dir.join("warm-up.log");
        let (_, status) = measure(&mut cmd, &log, false)?;
        if !status.success() {
            bail!("warm-up install of {RIPGREP} failed:\n{}", tail(&log));
        }
        Ok(workload)
    }

    fn prepare_popular(&self) -> Result<Workload> {
        let dir = self.work.join("popular");
        let ws = dir.join("ws");
        let _ = std::fs::remove_dir_all(&ws);
        std::fs::create_dir_all(&ws)?;
        let fixture = root().join("tests/fixtures/popular");
        for item in ["Cargo.toml", "Cargo.lock", "src"] {
            run(Command::new("cp")
                .arg("-r")
                .arg(fixture.join(item))
                .arg(&ws))?;
        }
        // The copy lives under this repository's target/: an empty [workspace] table keeps it a
        // workspace of its own rather than an unlisted member of ours.
        let manifest = ws.join("Cargo.toml");
        let mut text = std::fs::read_to_string(&manifest)?;
        text.push_str("\n[workspace]\n");
        std::fs::write(&manifest, text)?;
        let target = dir.join("target");
        let cargo = self.cargo.display().to_string();
        let workload = Workload {
            name: "popular",
            title: "`cargo build --locked` (debug) of tests/fixtures/popular: 29 crates with \
                    build scripts or proc-macros, among them ring, libsqlite3-sys (bundled), \
                    libz-sys (static), zstd-sys, serde derive, tokio macros"
                .to_owned(),
            dir: ws.clone(),
            argv: vec![
                cargo.clone(),
                "build".into(),
                "--locked".into(),
                "--offline".into(),
                "--target-dir".into(),
                target.display().to_string(),
            ],
            clean: vec![target.clone()],
            artifact: target.join("debug/popular"),
        };
        eprintln!("xtask: bench: fetch and warm-up build of tests/fixtures/popular");
        let mut fetch = Command::new(&cargo);
        fetch.args(["fetch", "--locked"]).current_dir(&ws);
        clean_env(&mut fetch);
        run(&mut fetch)?;
        self.clean(&workload)?;
        let mut cmd = Command::new(&workload.argv[0]);
        cmd.args(&workload.argv[1..]).current_dir(&ws);
        clean_env(&mut cmd);
        let log = dir.join("warm-up.log");
        let (_, status) = measure(&mut cmd, &log, false)?;
        if !status.success() {
            bail!(
                "warm-up build of the popular workspace failed:\n{}",
                tail(&log)
            );
        }
        Ok(workload)
    }

    fn clean(&self, workload: &Workload) -> Result<()> {
        for path in &workload.clean {
            if path.exists() {
                std::fs::remove_dir_all(path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn watch_command(
        &self,
        watch: Watch,
        workload: &Workload,
        report: &Path,
        trace: &Path,
    ) -> Result<Command> {
        let argv = &workload.argv;
        let mut cmd = match watch {
            Watch::Unwatched => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            }
            Watch::Buildwatch => {
                let mut cmd = Command::new(&self.buildwatch);
                cmd.args(["ci", "--no-tui", "--report"])
                    .arg(report)
                    .arg("--")
                    .args(argv);
                cmd
            }
            Watch::Strace => {
                let mut cmd = Command::new("strace");
                cmd.args(["-f", "-e", &format!("trace={STRACE_SYSCALLS}")])
                    .args(["-o", "/dev/null", "--"])
                    .args(argv);
                cmd
            }
            Watch::Bpftrace => {
                let script = self
                    .bpftrace
                    .as_ref()
                    .map_err(|why| anyhow::anyhow!("bpftrace unusable: {why}"))?;
                if argv.iter().any(|a| a.contains(char::is_whitespace)) {
                    bail!("bpftrace -c cannot take arguments with spaces: {argv:?}");
                }
                // bpftrace's output goes to a file so that its "Lost N events" lines can be read.
                let mut cmd = Command::new("bpftrace");
                cmd.arg("-o")
                    .arg(trace)
                    .arg("-c")
                    .arg(argv.join(" "))
                    .arg(script);
                cmd
            }
        };
        cmd.current_dir(&workload.dir);
        clean_env(&mut cmd);
        Ok(cmd)
    }

    fn builds(&self, rounds: usize) -> Result<Builds> {
        let workloads = [self.prepare_ripgrep()?, self.prepare_popular()?];
        let mut configs = vec![Watch::Unwatched, Watch::Buildwatch, Watch::Strace];
        if self.bpftrace.is_ok() {
            configs.push(Watch::Bpftrace);
        }
        let mut builds = Builds {
            workloads: workloads
                .iter()
                .map(|w| (w.name.to_owned(), w.title.clone()))
                .collect(),
            rounds,
            runs: Vec::new(),
            dropped: Vec::new(),
        };
        let total = rounds * workloads.len() * configs.len();
        let started = Instant::now();
        for round in 1..=rounds {
            for workload in &workloads {
                for watch in configs.clone() {
                    let report = self.work.join(format!("{}-report.json", workload.name));
                    let trace = self.work.join(format!("{}-bpftrace.out", workload.name));
                    let log = self.work.join(format!(
                        "{}-{}.log",
                        workload.name,
                        watch.label().replace(' ', "-")
                    ));
                    self.clean(workload)?;
                    let _ = std::fs::remove_file(&report);
                    let _ = std::fs::remove_file(&trace);
                    let mut cmd = self.watch_command(watch, workload, &report, &trace)?;
                    let (measured, status) = measure(&mut cmd, &log, watch == Watch::Buildwatch)?;
                    let ok = match watch {
                        Watch::Buildwatch => buildwatch_ran(status),
                        _ => status.success(),
                    } && workload.artifact.exists();
                    if !ok {
                        if watch == Watch::Bpftrace {
                            // bpftrace is a comparison, not the subject: say why and go on.
                            let why = format!(
                                "bpftrace failed in round {round} on {} ({status}): {}",
                                workload.name,
                                tail(&log)
                            );
                            eprintln!("xtask: bench: {why}");
                            builds.dropped.push(why);
                            configs.retain(|w| *w != Watch::Bpftrace);
                            continue;
                        }
                        bail!(
                            "{} build {} failed ({status}):\n{}",
                            workload.name,
                            watch.label(),
                            tail(&log)
                        );
                    }
                    let counted = if watch == Watch::Buildwatch {
                        let counted = read_report(&report)?;
                        if counted.exit_status != 0 {
                            bail!("the watched build failed: {}", tail(&log));
                        }
                        Some(counted)
                    } else {
                        None
                    };
                    let bpftrace = (watch == Watch::Bpftrace).then(|| bpftrace_counts(&trace));
                    let _ = std::fs::remove_file(&trace);
                    let done = builds.runs.len() + 1;
                    let eta = started.elapsed().as_secs_f64() / done as f64
                        * (total.saturating_sub(done)) as f64;
                    eprintln!(
                        "xtask: bench: round {round}/{rounds} {} {}: {:.1} s{}{} (~{:.0} min left)",
                        workload.name,
                        watch.label(),
                        measured.secs,
                        counted.as_ref().map_or(String::new(), |c| format!(
                            ", {} events, {} lost",
                            c.events, c.lost
                        )),
                        measured
                            .hwm_kib
                            .map_or(String::new(), |k| format!(", VmHWM {} KiB", k)),
                        eta / 60.0
                    );
                    builds.runs.push(BuildRun {
                        workload: workload.name,
                        watch,
                        measured,
                        counted,
                        bpftrace,
                    });
                }
            }
        }
        for workload in &workloads {
            self.clean(workload)?;
        }
        Ok(builds)
    }
}

/// Lines bpftrace wrote (one per event) and the events it reported lost.
fn bpftrace_counts(trace: &Path) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(trace) else {
        return (0, 0);
    };
    let mut lines = 0;
    let mut lost = 0;
    for line in text.lines() {
        if let Some(n) = line
            .strip_prefix("Lost ")
            .and_then(|r| r.strip_suffix(" events"))
        {
            lost += n.trim().parse::<u64>().unwrap_or(0);
        } else if !line.is_empty() && !line.starts_with("Attaching ") {
            lines += 1;
        }
    }
    (lines, lost)
}

// ---------------------------------------------------------------------------------------------
// The machine and the verifier

struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
    rustc: String,
    date: String,
    commit: String,
    tools: Vec<String>,
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Machine {
    fn describe(bench: &Bench) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let mut tools = vec![
            first_line(Command::new(&bench.cargo).arg("-V")),
            first_line(Command::new("strace").arg("-V")),
        ];
        if bench.bpftrace.is_ok() {
            tools.push(first_line(Command::new("bpftrace").arg("--version")));
        }
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            rustc: first_line(Command::new("rustc").arg("-V")),
            date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
            commit: first_line(
                Command::new("git")
                    .args(["rev-parse", "--short", "HEAD"])
                    .current_dir(root()),
            ),
            tools,
        }
    }
}

/// `BUILDWATCH_VERIFIER_STATS=1`: instructions the verifier went through per program.
fn verifier_stats(bench: &Bench) -> Vec<(String, u64)> {
    let out = Command::new(&bench.buildwatch)
        .args(["ci", "--no-tui", "--", "true"])
        .env("BUILDWATCH_VERIFIER_STATS", "1")
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stderr);
    let mut stats: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("verifier: "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(": ")?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.to_owned(), n))
        })
        .collect();
    stats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    stats
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md

#[derive(Default)]
struct Doc {
    startup: Option<Startup>,
    storm: Option<Storm>,
    memory: Option<Vec<MemoryRun>>,
    builds: Option<Builds>,
    verifier: Vec<(String, u64)>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

impl Doc {
    fn render(
        &self,
        machine: &Machine,
        bench: &Bench,
        options: &Options,
        took: Duration,
    ) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `cargo xtask bench` (xtask/src/bench.rs), which rewrites this file. \
             Run it as root on an otherwise idle machine; a full run took {:.0} minutes here.\n",
            took.as_secs_f64() / 60.0
        );
        if !options.full() {
            let _ = writeln!(
                md,
                "> **Partial or quick run** (--quick, --rounds < 5 or --only): not the figures of \
                 record.\n"
            );
        }
        let _ = writeln!(md, "## Machine\n");
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| date | {} |", machine.date);
        let _ = writeln!(md, "| CPU | {} |", machine.cpu);
        let _ = writeln!(md, "| cores | {} |", machine.cores);
        let _ = writeln!(md, "| memory | {:.1} GiB |", machine.memory_gib);
        let _ = writeln!(md, "| kernel | {} |", machine.kernel);
        let _ = writeln!(md, "| rustc | {} |", machine.rustc);
        let _ = writeln!(
            md,
            "| buildwatch | commit {} (release build) |",
            machine.commit
        );
        let _ = writeln!(md, "| tools | {} |", machine.tools.join("; "));
        let _ = writeln!(md);

        let summary = self.targets();
        if !summary.is_empty() {
            let _ = writeln!(md, "## Targets\n");
            let _ = writeln!(md, "| target | goal | measured | |\n|---|---|---|---|");
            for (name, goal, measured, ok) in summary {
                let _ = writeln!(md, "| {name} | {goal} | {measured} | {} |", verdict(ok));
            }
            let _ = writeln!(md);
        }
        if let Some(builds) = &self.builds {
            render_builds(&mut md, builds, bench);
        }
        if let Some(storm) = &self.storm {
            render_storm(&mut md, storm);
        }
        if let Some(memory) = &self.memory {
            render_memory(&mut md, memory);
        }
        if let Some(startup) = &self.startup {
            render_startup(&mut md, startup);
        }
        if !self.verifier.is_empty() {
            let _ = writeln!(md, "## eBPF programs\n");
            let total: u64 = self.verifier.iter().map(|(_, n)| n).sum();
            let _ = writeln!(
                md,
                "Instructions the verifier went through at load (`BUILDWATCH_VERIFIER_STATS=1`): \
                 {} in all, over {} programs; the largest:\n",
                thousands(total),
                self.verifier.len()
            );
            let _ = writeln!(md, "| program | instructions verified |\n|---|---:|");
            for (name, n) in self.verifier.iter().take(8) {
                let _ = writeln!(md, "| {name} | {} |", thousands(*n));
            }
            let _ = writeln!(md);
        }
        md
    }

    /// (target, goal, measured, met) for each goal that this run measured.
    fn targets(&self) -> Vec<(String, String, String, bool)> {
        let mut out = Vec::new();
        if let Some(builds) = &self.builds {
            for (name, _) in &builds.workloads {
                if let Some(ratio) = builds.ratio(name, Watch::Buildwatch) {
                    let overhead = (ratio - 1.0) * 100.0;
                    let strace = builds
                        .ratio(name, Watch::Strace)
                        .map_or(String::new(), |r| {
                            format!(" (strace: {:+.1}%)", (r - 1.0) * 100.0)
                        });
                    out.push((
                        format!("overhead of `buildwatch ci`, {name}"),
                        "≤ 2% (stretch ≤ 1%)".to_owned(),
                        format!("{overhead:+.1}% of the unwatched median{strace}"),
                        overhead <= 2.0,
                    ));
                }
            }
            let lost: u64 = builds
                .runs
                .iter()
                .filter_map(|r| r.counted.as_ref())
                .map(|c| c.lost)
                .sum();
            let watched = builds.runs.iter().filter(|r| r.counted.is_some()).count();
            out.push((
                "lost events on the real builds".to_owned(),
                "0".to_owned(),
                format!("{lost} over {watched} watched builds"),
                lost == 0,
            ));
            if let Some(peak) = builds.runs.iter().filter_map(|r| r.measured.hwm_kib).max() {
                out.push((
                    "peak RSS of buildwatch, real builds".to_owned(),
                    "≤ 64 MiB".to_owned(),
                    format!("{:.1} MiB (highest of all runs)", mib(peak)),
                    mib(peak) <= 64.0,
                ));
            }
        }
        if let Some(storm) = &self.storm {
            let clean = storm.zero_loss_rate().unwrap_or(0.0);
            out.push((
                "storm: events/s without loss (16M buffer)".to_owned(),
                "≥ 1,000,000".to_owned(),
                format!(
                    "{} events/s{}",
                    thousands(clean as u64),
                    storm.first_loss().map_or(String::new(), |l| format!(
                        "; losses from {} events/s with two producers",
                        thousands(l.rate as u64)
                    ))
                ),
                clean >= 1_000_000.0,
            ));
        }
        if let Some(memory) = &self.memory
            && let (Some(first), Some(last)) = (memory.first(), memory.last())
            && let (Some(a), Some(b)) = (first.hwm_kib, last.hwm_kib)
        {
            out.push((
                "memory bounded under many events".to_owned(),
                "bounded".to_owned(),
                format!(
                    "VmHWM {:.1} MiB after {} events, {:.1} MiB after {}",
                    mib(a),
                    thousands(first.counted.events),
                    mib(b),
                    thousands(last.counted.events)
                ),
                // Ten times the events may not cost more than a few MiB more.
                b <= a + 8 * 1024,
            ));
        }
        if let Some(startup) = &self.startup
            && let Some((_, median, _)) = stats(&startup.watched_ms)
        {
            out.push((
                "startup (to the command's first action)".to_owned(),
                "≤ 150 ms".to_owned(),
                format!("{median:.0} ms (median of {})", startup.watched_ms.len()),
                median <= 150.0,
            ));
        }
        out
    }
}

impl Builds {
    fn secs(&self, workload: &str, watch: Watch) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.workload == workload && r.watch == watch)
            .map(|r| r.measured.secs)
            .collect()
    }

    /// Median under `watch` over the unwatched median.
    fn ratio(&self, workload: &str, watch: Watch) -> Option<f64> {
        let (_, base, _) = stats(&self.secs(workload, Watch::Unwatched))?;
        let (_, median, _) = stats(&self.secs(workload, watch))?;
        Some(median / base)
    }
}

/// Each configuration's time over the same round's unwatched time, and the spread of the
/// unwatched builds themselves: drift between rounds cancels out of the former, and the latter
/// says how small an overhead this machine can resolve at all.
fn render_paired(md: &mut String, builds: &Builds, workload: &str) {
    let base = builds.secs(workload, Watch::Unwatched);
    let Some((min, median, max)) = stats(&base) else {
        return;
    };
    let _ = writeln!(
        md,
        "Unwatched builds spread over {:.1}% of their median. Round by round, over the same \
         round's unwatched build:\n",
        (max - min) / median * 100.0
    );
    for watch in [Watch::Buildwatch, Watch::Strace, Watch::Bpftrace] {
        let ratios: Vec<f64> = builds
            .secs(workload, watch)
            .iter()
            .zip(&base)
            .map(|(w, b)| w / b)
            .collect();
        if let Some((_, m, _)) = stats(&ratios) {
            let list: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
            let _ = writeln!(
                md,
                "- {}: {} (median {m:.3})",
                watch.label(),
                list.join(", ")
            );
        }
    }
    let _ = writeln!(md);
}

fn render_builds(md: &mut String, builds: &Builds, bench: &Bench) {
    let _ = writeln!(md, "## Real builds\n");
    let _ = writeln!(
        md,
        "Clean builds, {} rounds; within each round the configurations run in turn (unwatched, \
         buildwatch, strace, bpftrace), so that drift affects all alike. Wall time from spawning \
         the command (or the tool that runs it) to its exit, tool startup included. One warm-up \
         build of each workload first fills the registry and page caches; the measured builds \
         run `--offline`.\n",
        builds.rounds
    );
    let _ = writeln!(
        md,
        "- **unwatched**: the command alone.\n\
         - **buildwatch ci**: `buildwatch ci --no-tui --report r.json -- CMD` (16 MiB ring buffer).\n\
         - **strace -f**: `strace -f -e trace={STRACE_SYSCALLS} -o /dev/null -- CMD` (the sensor's \
         syscalls; without `--seccomp-bpf`, so the tracee still stops at every syscall).\n\
         - **bpftrace**: `bpftrace -o FILE -c CMD xtask/bench/watch.bt`: the sensor's tracepoints, \
         scoped to the command's process tree in the kernel like the sensor, one line per event. \
         {}\n",
        match &bench.bpftrace {
            Ok(_) => "It has no cgroup hooks and does not resolve opened files to absolute paths \
                      in the kernel, so it does less work per event than the sensor."
                .to_owned(),
            Err(why) => format!("**Not run: {why}**"),
        }
    );
    for why in &builds.dropped {
        let _ = writeln!(md, "> **{}**\n", why.replace('\n', " "));
    }
    for (name, title) in &builds.workloads {
        let _ = writeln!(md, "### {name}: {title}\n");
        let _ = writeln!(
            md,
            "| configuration | runs | min (s) | median (s) | max (s) | median / unwatched | \
             events processed (median) | events lost (all runs) | tool's peak RSS (max) | \
             tool's CPU time (median) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let base = stats(&builds.secs(name, Watch::Unwatched)).map(|(_, m, _)| m);
        for watch in [
            Watch::Unwatched,
            Watch::Buildwatch,
            Watch::Strace,
            Watch::Bpftrace,
        ] {
            let runs: Vec<&BuildRun> = builds
                .runs
                .iter()
                .filter(|r| r.workload == name && r.watch == watch)
                .collect();
            let secs: Vec<f64> = runs.iter().map(|r| r.measured.secs).collect();
            let Some((min, median, max)) = stats(&secs) else {
                continue;
            };
            let ratio = base.map_or("–".to_owned(), |b| format!("{:.3}", median / b));
            let events: Vec<f64> = runs
                .iter()
                .filter_map(|r| {
                    r.counted
                        .as_ref()
                        .map(|c| c.events)
                        .or(r.bpftrace.map(|(lines, _)| lines))
                })
                .map(|n| n as f64)
                .collect();
            let lost: Option<u64> = runs
                .iter()
                .filter_map(|r| {
                    r.counted
                        .as_ref()
                        .map(|c| c.lost)
                        .or(r.bpftrace.map(|(_, lost)| lost))
                })
                .reduce(|a, b| a + b);
            let hwm = runs.iter().filter_map(|r| r.measured.hwm_kib).max();
            let cpu: Vec<f64> = runs.iter().filter_map(|r| r.measured.cpu_secs).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {min:.1} | {median:.1} | {max:.1} | {ratio} | {} | {} | {} | {} |",
                watch.label(),
                runs.len(),
                stats(&events).map_or("–".to_owned(), |(_, m, _)| thousands(m as u64)),
                lost.map_or("–".to_owned(), thousands),
                hwm.map_or("–".to_owned(), |k| format!("{:.1} MiB", mib(k))),
                stats(&cpu).map_or("–".to_owned(), |(_, m, _)| format!("{m:.2} s")),
            );
        }
        let _ = writeln!(md);
        render_paired(md, builds, name);
        let _ = writeln!(md, "<details><summary>every run (s), in order</summary>\n");
        for watch in [
            Watch::Unwatched,
            Watch::Buildwatch,
            Watch::Strace,
            Watch::Bpftrace,
        ] {
            let secs = builds.secs(name, watch);
            if !secs.is_empty() {
                let list: Vec<String> = secs.iter().map(|s| format!("{s:.1}")).collect();
                let _ = writeln!(md, "- {}: {}", watch.label(), list.join(", "));
            }
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    if let Some(peak) = builds
        .runs
        .iter()
        .filter(|r| r.measured.hwm_kib.is_some())
        .max_by_key(|r| r.measured.hwm_kib)
        && let Some(breakdown) = &peak.measured.breakdown
    {
        let _ = writeln!(
            md,
            "buildwatch's resident memory near the end of its highest-peak build ({}, {:.1} MiB \
             VmHWM), by mapping:\n",
            peak.workload,
            mib(peak.measured.hwm_kib.unwrap_or(0))
        );
        render_breakdown(md, breakdown);
    }
    let _ = writeln!(
        md,
        "Events processed: buildwatch's report (every event kind but `lost` records); for \
         bpftrace, lines of output. The tool's peak RSS and CPU time are buildwatch's own \
         process's (VmHWM and utime+stime sampled from /proc every 20 ms: wait4's rusage would \
         include the build). The eBPF programs' own cost is charged to the build's processes and \
         shows only in the wall time.\n"
    );
}

fn render_storm(md: &mut String, storm: &Storm) {
    let _ = writeln!(md, "## Storm\n");
    let _ = writeln!(
        md,
        "`xtask/bench/storm.c` opens {STORM_FILES} distinct files in turn (open + close) or \
         connects to a loopback listener the bench runs on 127.0.0.1 (closing with RST), as fast \
         as it can or throttled to a rate, under `buildwatch ci` with the default 16 MiB ring \
         buffer. Rates are operations per second as the storm measured them; every operation \
         is one event.\n"
    );
    let _ = writeln!(md, "Unwatched, as fast as possible:\n");
    for (procs, rate) in &storm.bare_open {
        let _ = writeln!(
            md,
            "- open, {procs} process(es): {} opens/s",
            thousands(*rate as u64)
        );
    }
    let _ = writeln!(
        md,
        "- connect, 1 process: {} connects/s\n",
        thousands(storm.bare_connect as u64)
    );
    let _ = writeln!(md, "Under buildwatch:\n");
    let _ = writeln!(
        md,
        "| storm | processes | target rate | achieved rate | operations | events processed | \
         events lost |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    let row = |md: &mut String, kind: &str, r: &StormRun| {
        let _ = writeln!(
            md,
            "| {kind} | {} | {} | {} | {} | {} | {} |",
            r.procs,
            r.target
                .map_or("as fast as possible".to_owned(), |t| thousands(t as u64)),
            thousands(r.rate as u64),
            thousands(r.ops),
            thousands(r.counted.events),
            thousands(r.counted.lost)
        );
    };
    for r in &storm.open_flat_out {
        row(md, "open", r);
    }
    for r in &storm.connect_flat_out {
        row(md, "connect", r);
    }
    for r in &storm.ladder {
        row(md, "open (throttled)", r);
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Throttled steps last about {:.0} s each.\n",
        storm.step_secs
    );
    if let Some(cost) = storm.open_cost_us() {
        let _ = writeln!(
            md,
            "One producer as fast as it can: the sensor's programs add about **{cost:.2} µs** to \
             each open (1/watched rate − 1/unwatched rate), which caps what one process can \
             produce.\n"
        );
    }
    let flat = storm
        .open_flat_out
        .iter()
        .find(|r| r.procs == 1 && r.counted.lost == 0);
    if let Some(flat) = flat {
        let _ = writeln!(
            md,
            "**Sustained without loss: {} events/s** (one producer, as fast as it can, {} events, \
             none lost).\n",
            thousands(flat.rate as u64),
            thousands(flat.counted.events)
        );
    }
    match (storm.ladder_zero_loss(), storm.first_loss()) {
        (Some(clean), Some(lossy)) => {
            let _ = writeln!(
                md,
                "**Two producers, throttled: highest rate without loss {} events/s; losses start \
                 at {} events/s** ({} lost of {}). Two producers keep both cores busy, so \
                 buildwatch's reader and pipeline threads compete with them for CPU: the loss \
                 point is where userspace falls behind, not where the kernel side gives up.\n",
                thousands(clean as u64),
                thousands(lossy.rate as u64),
                thousands(lossy.counted.lost),
                thousands(lossy.ops)
            );
        }
        (Some(clean), None) => {
            let _ = writeln!(
                md,
                "**Two producers, throttled: no loss at any rate they could produce** (up to {} \
                 events/s; the storm, slowed by the sensor's in-kernel work, is the limit).\n",
                thousands(clean as u64)
            );
        }
        (None, _) => {
            let _ = writeln!(
                md,
                "**Two producers, throttled: events were lost at every rate tried.**\n"
            );
        }
    }
}

fn render_memory(md: &mut String, memory: &[MemoryRun]) {
    let _ = writeln!(md, "## Memory after many events\n");
    let _ = writeln!(
        md,
        "An open storm of N events under `buildwatch ci` (one process, throttled below the \
         zero-loss rate); buildwatch's own VmHWM at the end of the run.\n"
    );
    let _ = writeln!(
        md,
        "| events asked | events processed | events lost | rate (events/s) | VmHWM | CPU time of \
         buildwatch |\n|---:|---:|---:|---:|---:|---:|"
    );
    for m in memory {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            thousands(m.events_wanted),
            thousands(m.counted.events),
            thousands(m.counted.lost),
            thousands(m.rate as u64),
            m.hwm_kib
                .map_or("–".to_owned(), |k| format!("{:.1} MiB", mib(k))),
            m.cpu_secs.map_or("–".to_owned(), |c| format!("{c:.1} s")),
        );
    }
    let _ = writeln!(md);
    if let Some(breakdown) = memory.last().and_then(|m| m.breakdown.as_ref()) {
        let _ = writeln!(
            md,
            "Where buildwatch's resident memory is at the end of the last run (from \
             /proc/PID/smaps):\n"
        );
        render_breakdown(md, breakdown);
    }
}

fn render_breakdown(md: &mut String, breakdown: &[(&str, u64)]) {
    for (kind, kib) in breakdown.iter().filter(|(_, k)| *k >= 512) {
        let _ = writeln!(md, "- {kind}: {:.1} MiB", mib(*kib));
    }
    let _ = writeln!(md);
}

fn render_startup(md: &mut String, startup: &Startup) {
    let _ = writeln!(md, "## Startup\n");
    let _ = writeln!(
        md,
        "From just before spawning `buildwatch ci --no-tui -- storm now` to the CLOCK_REALTIME \
         the watched program reads as its first action (a static binary), {} runs; the same \
         spawned directly for reference, and the whole run of buildwatch (load, attach, run, \
         detach, summary).\n",
        startup.watched_ms.len()
    );
    let _ = writeln!(md, "| | min | median | max |\n|---|---:|---:|---:|");
    for (name, values) in [
        (
            "buildwatch: to the command's first action",
            &startup.watched_ms,
        ),
        (
            "no buildwatch: to the program's first action",
            &startup.direct_ms,
        ),
        (
            "buildwatch: whole run of a trivial command",
            &startup.whole_ms,
        ),
    ] {
        if let Some((min, median, max)) = stats(values) {
            let _ = writeln!(
                md,
                "| {name} | {min:.1} ms | {median:.1} ms | {max:.1} ms |"
            );
        }
    }
    let _ = writeln!(md);
}
