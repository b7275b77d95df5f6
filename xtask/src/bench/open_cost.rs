//! `cargo xtask bench`: the kernel's cost per open of a watched process, with and without
//! `--enforce` (issue 14 asks for it beside every change to the open path). The open storm runs
//! under `buildwatch ci [--enforce]` with `kernel.bpf_stats_enabled` on; buildwatch prints each
//! program's run count and run time as it stops (`BUILDWATCH_PROGRAM_STATS`). On x86_64 the
//! system call programs are tail calls of the raw `sys_enter`/`sys_exit` dispatchers, whose
//! figures include them: their sum over the storm's opens is the in-kernel time per open + close.
use super::*;

/// One measured run.
pub(super) struct OpenCostRun {
    pub(super) enforce: bool,
    /// Opens (+ close) the storm made.
    pub(super) opens: u64,
    /// Every program's runs and run time over the run.
    pub(super) programs: Vec<ProgramCost>,
    /// Runs of each program the dispatchers tail-called (bpf_stats count them as the
    /// dispatcher's).
    pub(super) handlers: Vec<HandlerRuns>,
}

impl OpenCostRun {
    /// In-kernel ns per open + close: all programs' time over the opens.
    pub(super) fn ns_per_open(&self) -> f64 {
        let ns: u64 = self.programs.iter().map(|p| p.ns).sum();
        ns as f64 / self.opens.max(1) as f64
    }
}

impl Bench {
    pub(super) fn open_cost(&self, rounds: usize) -> Result<Vec<OpenCostRun>> {
        let opens: u64 = if self.quick { 50_000 } else { 200_000 };
        let _stats = Sysctl::bpf_stats()?;
        let mut runs = Vec::new();
        for round in 0..rounds {
            for enforce in [false, true] {
                let run = self.open_cost_run(opens, enforce)?;
                eprintln!(
                    "xtask: bench: open cost round {}{}: {:.0} ns per open",
                    round + 1,
                    if enforce { " (--enforce)" } else { "" },
                    run.ns_per_open()
                );
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// The open storm (`opens` opens + closes of the storm files, one process) under
    /// `buildwatch ci [--enforce]`, printing the programs' statistics as it stops.
    pub(super) fn open_storm_command(&self, opens: u64, enforce: bool) -> Command {
        let mut cmd = Command::new(&self.buildwatch);
        cmd.args(["ci", "--no-tui", "--no-metadata"]);
        if enforce {
            cmd.arg("--enforce");
        }
        cmd.arg("--")
            .arg(&self.storm)
            .arg("open")
            .arg(&self.storm_files)
            .arg(STORM_FILES.to_string())
            .arg(opens.to_string())
            .arg("0")
            .env("BUILDWATCH_PROGRAM_STATS", "1");
        cmd
    }

    fn open_cost_run(&self, opens: u64, enforce: bool) -> Result<OpenCostRun> {
        let log = self.work.join("open-cost.log");
        let mut cmd = self.open_storm_command(opens, enforce);
        let (_, status) = measure(&mut cmd, &log, false)?;
        if !buildwatch_ran(status) {
            bail!("buildwatch failed ({status}):\n{}", tail(&log));
        }
        let text = std::fs::read_to_string(&log)?;
        let programs: Vec<ProgramCost> = text
            .lines()
            .filter_map(parse_program_cost)
            .filter(|p| p.runs > 0)
            .collect();
        if programs.is_empty() {
            bail!(
                "buildwatch printed no program statistics in {}",
                log.display()
            );
        }
        Ok(OpenCostRun {
            enforce,
            opens,
            programs,
            handlers: text.lines().filter_map(parse_handler_runs).collect(),
        })
    }
}

pub(super) fn render_open_cost(md: &mut String, runs: &[OpenCostRun]) {
    let _ = writeln!(md, "## In-kernel cost per open\n");
    let opens = runs.first().map_or(0, |r| r.opens);
    let _ = writeln!(
        md,
        "The open storm ({} opens + closes of {} distinct files, one process) under \
         `buildwatch ci` and `buildwatch ci --enforce`, alternated, with \
         `kernel.bpf_stats_enabled`: every program's run time over the run, divided by the \
         opens. The system call programs run as tail calls of the raw `sys_enter`/`sys_exit` \
         dispatchers, whose figures include them (below, ↳ rows: the runs of each program they \
         called, counted by the dispatchers under `BUILDWATCH_PROGRAM_STATS`; the section \
         \"In-kernel cost by program\" gives their time); the rest of the run (exec, exit) is \
         a few runs. Counting itself adds two clock reads per program run.\n",
        thousands(opens),
        thousands(STORM_FILES)
    );
    let _ = writeln!(
        md,
        "| mode | runs | ns per open + close (median) | every run |\n|---|---:|---:|---|"
    );
    for enforce in [false, true] {
        let values: Vec<f64> = runs
            .iter()
            .filter(|r| r.enforce == enforce)
            .map(OpenCostRun::ns_per_open)
            .collect();
        let every: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            if enforce { "`ci --enforce`" } else { "`ci`" },
            values.len(),
            stats(&values).map_or("–".to_owned(), |(_, m, _)| format!("{m:.0}")),
            every.join(", ")
        );
    }
    if let Some(last) = runs.iter().rev().find(|r| !r.enforce) {
        let _ = writeln!(md, "\nBy program, last run without `--enforce`:\n");
        let _ = writeln!(md, "| program | runs | ns per run |\n|---|---:|---:|");
        let mut programs: Vec<&ProgramCost> = last.programs.iter().collect();
        programs.sort_by_key(|p| std::cmp::Reverse(p.ns));
        for p in programs.iter().take(6) {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} |",
                p.name,
                thousands(p.runs),
                p.ns as f64 / p.runs.max(1) as f64
            );
            // The programs it tail-called: their runs (their time is in its figure; the
            // section "In-kernel cost by program" splits it).
            let mut handlers: Vec<&HandlerRuns> = last
                .handlers
                .iter()
                .filter(|h| h.dispatcher == p.name)
                .collect();
            handlers.sort_by_key(|h| std::cmp::Reverse(h.runs));
            for h in handlers {
                let _ = writeln!(
                    md,
                    "| ↳ {} (tail call) | {} | in {}'s |",
                    h.name,
                    thousands(h.runs),
                    p.name
                );
            }
        }
    }
    let _ = writeln!(md);
}
