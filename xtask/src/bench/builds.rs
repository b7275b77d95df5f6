//! `cargo xtask bench`: real builds.
use super::*;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Watch {
    Unwatched,
    Buildwatch,
    Strace,
    Bpftrace,
}

impl Watch {
    pub(super) fn label(self) -> &'static str {
        match self {
            Watch::Unwatched => "unwatched",
            Watch::Buildwatch => "buildwatch ci",
            Watch::Strace => "strace -f",
            Watch::Bpftrace => "bpftrace",
        }
    }
}

pub(super) struct Workload {
    pub(super) name: &'static str,
    pub(super) title: String,
    /// Working directory of the build.
    pub(super) dir: PathBuf,
    pub(super) argv: Vec<String>,
    /// Removed before every run (clean build).
    pub(super) clean: Vec<PathBuf>,
    /// Must exist after every run (bpftrace does not pass the command's exit status on).
    pub(super) artifact: PathBuf,
}

#[derive(Clone, Debug)]
pub(super) struct BuildRun {
    pub(super) workload: &'static str,
    pub(super) watch: Watch,
    pub(super) measured: Measured,
    /// buildwatch's report.
    pub(super) counted: Option<Counted>,
    /// bpftrace: lines written and events it reported lost.
    pub(super) bpftrace: Option<(u64, u64)>,
}

pub(super) struct Builds {
    pub(super) workloads: Vec<(String, String)>,
    pub(super) rounds: usize,
    pub(super) runs: Vec<BuildRun>,
    /// Why a configuration dropped out mid-run.
    pub(super) dropped: Vec<String>,
    /// Per workload, each eBPF program's runs and run time over one extra watched build with
    /// `kernel.bpf_stats_enabled` (not one of the timed rounds: counting has a cost of its own).
    pub(super) programs: Vec<(&'static str, Vec<ProgramCost>)>,
}

/// One eBPF program's in-kernel cost over a build.
#[derive(Clone, Debug)]
pub(super) struct ProgramCost {
    pub(super) name: String,
    pub(super) runs: u64,
    pub(super) ns: u64,
}

/// The environment of a nested build: without what `cargo xtask` (cargo run) set for xtask.
/// That includes LD_LIBRARY_PATH, which cargo run points at xtask's target directories and the
/// toolchain's libraries: every program of the measured build would have the dynamic loader try
/// four more directories for each library it loads (a third of a watched `popular` build's
/// events were those failed opens), which no build run from a shell does.
pub(super) fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO") && key != "CARGO_HOME") || key == "LD_LIBRARY_PATH" {
            cmd.env_remove(key.as_ref());
        }
    }
}

impl Bench {
    pub(super) fn prepare_ripgrep(&self) -> Result<Workload> {
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

    pub(super) fn prepare_popular(&self) -> Result<Workload> {
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

    pub(super) fn clean(&self, workload: &Workload) -> Result<()> {
        for path in &workload.clean {
            if path.exists() {
                std::fs::remove_dir_all(path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(())
    }

    pub(super) fn watch_command(
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

    pub(super) fn builds(&self, rounds: usize) -> Result<Builds> {
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
            programs: Vec::new(),
        };
        let total = rounds * workloads.len() * configs.len();
        let started = Instant::now();
        for round in 1..=rounds {
            for workload in &workloads {
                // Every other round in the reverse order (ABCD DCBA): each configuration then
                // follows different builds, so that what the previous one left behind (a target
                // directory of a gigabyte just deleted, a tracer's teardown) does not always fall
                // on the same configuration.
                let order: Vec<Watch> = if round % 2 == 0 {
                    configs.iter().rev().copied().collect()
                } else {
                    configs.clone()
                };
                for watch in order {
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
            match self.program_costs(workload) {
                Ok(costs) => builds.programs.push((workload.name, costs)),
                Err(e) => builds
                    .dropped
                    .push(format!("per-program cost of {}: {e:#}", workload.name)),
            }
            self.clean(workload)?;
        }
        Ok(builds)
    }

    /// One more watched build of `workload` with the kernel's BPF run-time statistics on;
    /// buildwatch prints each program's totals before it detaches them.
    pub(super) fn program_costs(&self, workload: &Workload) -> Result<Vec<ProgramCost>> {
        let stats = Sysctl::bpf_stats()?;
        self.clean(workload)?;
        let report = self.work.join(format!("{}-report.json", workload.name));
        let log = self
            .work
            .join(format!("{}-program-costs.log", workload.name));
        let mut cmd = self.watch_command(Watch::Buildwatch, workload, &report, &log)?;
        cmd.env("BUILDWATCH_PROGRAM_STATS", "1");
        let result = measure(&mut cmd, &log, false);
        drop(stats);
        let (_, status) = result?;
        if !buildwatch_ran(status) {
            bail!("the watched build failed ({status}):\n{}", tail(&log));
        }
        let text = std::fs::read_to_string(&log)?;
        let mut costs: Vec<ProgramCost> = text.lines().filter_map(parse_program_cost).collect();
        if costs.is_empty() {
            bail!(
                "buildwatch printed no program statistics in {}",
                log.display()
            );
        }
        costs.sort_by(|a, b| b.ns.cmp(&a.ns).then(a.name.cmp(&b.name)));
        Ok(costs)
    }
}

/// `program: sys_enter_openat: 123 runs, 456789 ns`.
pub(super) fn parse_program_cost(line: &str) -> Option<ProgramCost> {
    let rest = line.strip_prefix("program: ")?;
    let (name, rest) = rest.split_once(": ")?;
    let (runs, rest) = rest.split_once(" runs, ")?;
    let ns = rest.strip_suffix(" ns")?;
    Some(ProgramCost {
        name: name.to_owned(),
        runs: runs.trim().parse().ok()?,
        ns: ns.trim().parse().ok()?,
    })
}

/// Lines bpftrace wrote (one per event) and the events it reported lost.
pub(super) fn bpftrace_counts(trace: &Path) -> (u64, u64) {
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
