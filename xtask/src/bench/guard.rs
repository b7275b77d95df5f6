//! `cargo xtask bench`: guard. What a running `buildwatch guard` costs the machine while no
//! build runs: a syscall-heavy program (the open storm, as fast as it can) and an exec-heavy
//! shell loop (exec is where the guard adds work: one flag load and, for an untracked process,
//! one `GUARD_ROOTS` lookup), neither of them a build, with and without the guard running,
//! alternated round by round (off, on, off, on, ...) so that drift affects both alike.
use super::*;

/// One measurement.
pub(super) struct GuardRound {
    pub(super) guard: bool,
    /// Opens (+ close) per second, one process.
    pub(super) open_rate: f64,
    /// `/bin/true` execs (fork + exec + wait) per second from a shell loop.
    pub(super) exec_rate: f64,
}

/// The guard section's results.
pub(super) struct GuardCost {
    pub(super) rounds: Vec<GuardRound>,
    pub(super) opens: u64,
    pub(super) execs: u64,
}

impl GuardCost {
    /// Medians (without, with) of a figure.
    fn medians(&self, figure: impl Fn(&GuardRound) -> f64) -> Option<(f64, f64)> {
        let of = |guard: bool| -> Vec<f64> {
            self.rounds
                .iter()
                .filter(|r| r.guard == guard)
                .map(&figure)
                .collect()
        };
        let (_, off, _) = stats(&of(false))?;
        let (_, on, _) = stats(&of(true))?;
        Some((off, on))
    }

    /// The slowdown (%) of a figure that is a rate: how much longer each operation takes.
    fn overhead(&self, figure: impl Fn(&GuardRound) -> f64) -> Option<f64> {
        let (off, on) = self.medians(figure)?;
        (on > 0.0).then(|| (off / on - 1.0) * 100.0)
    }
}

/// A running guard, stopped (SIGTERM, waited for) on drop.
struct RunningGuard(std::process::Child);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

impl Bench {
    pub(super) fn guard(&self, rounds: usize) -> Result<GuardCost> {
        let opens: u64 = if self.quick { 300_000 } else { 2_000_000 };
        let execs: u64 = if self.quick { 300 } else { 2000 };
        std::fs::create_dir_all(self.work.join("guard"))?;
        let mut cost = GuardCost {
            rounds: Vec::new(),
            opens,
            execs,
        };
        for round in 0..rounds {
            for guard in [false, true] {
                let running = guard.then(|| self.start_guard(round)).transpose()?;
                let open_rate = self.open_rate(opens)?;
                let exec_rate = self.exec_rate(execs)?;
                drop(running);
                eprintln!(
                    "xtask: bench: guard round {}: guard {}: {open_rate:.0} opens/s, \
                     {exec_rate:.0} execs/s",
                    round + 1,
                    if guard { "on" } else { "off" }
                );
                cost.rounds.push(GuardRound {
                    guard,
                    open_rate,
                    exec_rate,
                });
            }
        }
        Ok(cost)
    }

    fn start_guard(&self, round: usize) -> Result<RunningGuard> {
        let dir = self.work.join("guard");
        std::fs::create_dir_all(&dir)?;
        let stderr = dir.join(format!("guard-{round}.stderr"));
        let child = Command::new(&self.buildwatch)
            .args(["guard", "--no-notify", "--socket"])
            .arg(dir.join("guard.sock"))
            .arg("--journal-socket")
            .arg(dir.join("no-journal"))
            .arg("--log")
            .arg(dir.join("findings.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr)?)
            .spawn()
            .context("cannot start buildwatch guard")?;
        let guard = RunningGuard(child);
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&stderr).unwrap_or_default();
            if text.contains("watching every build") {
                return Ok(guard);
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("the guard did not start:\n{}", tail(&stderr));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn open_rate(&self, total: u64) -> Result<f64> {
        let log = self.work.join("guard/open.log");
        let status = Command::new(&self.storm)
            .arg("open")
            .arg(&self.storm_files)
            .arg(STORM_FILES.to_string())
            .arg(total.to_string())
            .arg("0")
            .stdout(File::create(&log)?)
            .status()?;
        if !status.success() {
            bail!("the open storm failed ({status})");
        }
        Ok(storm_line(&log)?.1)
    }

    fn exec_rate(&self, total: u64) -> Result<f64> {
        let script = format!("i=0; while [ $i -lt {total} ]; do /bin/true; i=$((i+1)); done");
        let start = Instant::now();
        let status = Command::new("/bin/sh").args(["-c", &script]).status()?;
        if !status.success() {
            bail!("the exec loop failed ({status})");
        }
        Ok(total as f64 / start.elapsed().as_secs_f64())
    }
}

/// A figure of a round.
type RoundFigure = fn(&GuardRound) -> f64;

pub(super) fn render_guard(md: &mut String, cost: &GuardCost) {
    let _ = writeln!(md, "## Guard: the machine when no build runs\n");
    let _ = writeln!(
        md,
        "`buildwatch guard` running (docs/guard.md) against not running, while no build runs: \
         {} opens (+ close) of the storm program as fast as it can, and {} `/bin/true` execs \
         from a shell loop; off and on alternated in each of {} rounds (the guard is started and \
         stopped around each \"on\"). Medians; the overhead is how much longer one operation \
         takes. Target: at most 1 %. Other processes of the machine (builds of other users, \
         which the guard does watch) run meanwhile, as they would.\n",
        thousands(cost.opens),
        thousands(cost.execs),
        cost.rounds.len() / 2
    );
    let _ = writeln!(
        md,
        "| figure | guard off | guard on | overhead | ≤ 1 % |\n|---|---:|---:|---:|---|"
    );
    let figures: [(&str, RoundFigure); 2] =
        [("opens/s", |r| r.open_rate), ("execs/s", |r| r.exec_rate)];
    for (name, figure) in figures {
        if let (Some((off, on)), Some(pct)) = (cost.medians(figure), cost.overhead(figure)) {
            let _ = writeln!(
                md,
                "| {name} | {off:.0} | {on:.0} | {pct:+.2} % | {} |",
                verdict(pct <= 1.0)
            );
        }
    }
    let _ = writeln!(md, "\nEvery round:\n");
    let _ = writeln!(md, "| guard | opens/s | execs/s |\n|---|---:|---:|");
    for r in &cost.rounds {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} |",
            if r.guard { "on" } else { "off" },
            r.open_rate,
            r.exec_rate
        );
    }
    let _ = writeln!(md);
}
