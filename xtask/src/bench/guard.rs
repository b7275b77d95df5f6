//! `cargo xtask bench`: guard. What a running `buildwatch guard` costs the machine while no
//! build runs: a syscall-heavy program (the open storm, as fast as it can) and an exec-heavy
//! shell loop (exec is where the guard adds work: one flag load and, for an untracked process,
//! one `GUARD_ROOTS` lookup), neither of them a build: with nothing running, with a plain
//! `buildwatch` watching an idle command (the sensor attached, as during any watched build: what
//! the rest of the machine pays today), and with the guard running; alternated round by round
//! so that drift affects all alike.
use super::*;

/// What runs during a measurement.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mode {
    /// Nothing of buildwatch.
    Off,
    /// `buildwatch ci -- sleep`: the sensor attached, tracking one idle process.
    Sensor,
    /// `buildwatch guard`.
    Guard,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Sensor => "sensor (watching `sleep`)",
            Mode::Guard => "guard",
        }
    }
}

/// One measurement.
pub(super) struct GuardRound {
    pub(super) mode: Mode,
    /// Opens (+ close) per second, one process.
    pub(super) open_rate: f64,
    /// The open storm's CPU time (user + system, the eBPF programs that ran in its system calls
    /// included) per open + close, in ns: the figure a loaded machine disturbs least.
    pub(super) open_cpu_ns: f64,
    /// `dd bs=1` (one read and one write per byte)'s CPU time per byte, in ns: system calls
    /// the sensor watches (write) and does not (read), as any program makes them.
    pub(super) dd_cpu_ns: f64,
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
    /// The median of a figure in `mode`.
    fn median(&self, mode: Mode, figure: impl Fn(&GuardRound) -> f64) -> Option<f64> {
        let values: Vec<f64> = self
            .rounds
            .iter()
            .filter(|r| r.mode == mode)
            .map(figure)
            .collect();
        stats(&values).map(|(_, median, _)| median)
    }

    /// The slowdown (%) in `mode` against nothing running: how much longer each operation
    /// takes (`rate`: the figure is operations per second, else a cost per operation).
    fn overhead(
        &self,
        mode: Mode,
        figure: impl Fn(&GuardRound) -> f64 + Copy,
        rate: bool,
    ) -> Option<f64> {
        let off = self.median(Mode::Off, figure)?;
        let on = self.median(mode, figure)?;
        if rate {
            (on > 0.0).then(|| (off / on - 1.0) * 100.0)
        } else {
            (off > 0.0).then(|| (on / off - 1.0) * 100.0)
        }
    }
}

/// A running buildwatch, stopped (SIGTERM, waited for) on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
        // buildwatch hands its programs to a reaper process that detaches them after it has
        // exited (sensor/load.rs): until that is gone the programs still run, and a round
        // measured meanwhile would count as "off" what is the sensor's cost.
        let start = Instant::now();
        while buildwatch_running() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether any process named `buildwatch` exists (the reaper has buildwatch's name).
fn buildwatch_running() -> bool {
    std::fs::read_dir("/proc").is_ok_and(|entries| {
        entries.flatten().any(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "buildwatch")
        })
    })
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
            for mode in [Mode::Off, Mode::Sensor, Mode::Guard] {
                let running = match mode {
                    Mode::Off => None,
                    Mode::Sensor => Some(self.start_buildwatch(round, false)?),
                    Mode::Guard => Some(self.start_buildwatch(round, true)?),
                };
                let (open_rate, open_cpu_ns) = self.open_rate(opens)?;
                let dd_cpu_ns = self.dd_cpu(opens)?;
                let exec_rate = self.exec_rate(execs)?;
                drop(running);
                eprintln!(
                    "xtask: bench: guard round {}: {}: {open_rate:.0} opens/s \
                     ({open_cpu_ns:.0} ns CPU each), dd {dd_cpu_ns:.0} ns CPU per byte, \
                     {exec_rate:.0} execs/s",
                    round + 1,
                    mode.name()
                );
                cost.rounds.push(GuardRound {
                    mode,
                    open_rate,
                    open_cpu_ns,
                    dd_cpu_ns,
                    exec_rate,
                });
            }
        }
        Ok(cost)
    }

    /// Starts `buildwatch guard`, or `buildwatch ci -- sleep` (guard false); returns once its
    /// programs are attached.
    fn start_buildwatch(&self, round: usize, guard: bool) -> Result<Running> {
        let dir = self.work.join("guard");
        let stderr = dir.join(format!(
            "{}-{round}.stderr",
            if guard { "guard" } else { "ci" }
        ));
        let marker = dir.join("sleeping");
        let _ = std::fs::remove_file(&marker);
        let mut cmd = Command::new(&self.buildwatch);
        if guard {
            cmd.args(["guard", "--no-notify", "--socket"])
                .arg(dir.join("guard.sock"))
                .arg("--journal-socket")
                .arg(dir.join("no-journal"))
                .arg("--log")
                .arg(dir.join("findings.jsonl"));
        } else {
            cmd.args(["ci", "--no-tui", "--no-metadata", "--", "sh", "-c"])
                .arg(format!("touch {} && exec sleep 3600", marker.display()));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr)?)
            .spawn()
            .context("cannot start buildwatch")?;
        let running = Running(child);
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&stderr).unwrap_or_default();
            let ready = if guard {
                text.contains("watching every build")
            } else {
                marker.exists()
            };
            if ready && guard {
                // Measured dormant, as a machine with no build is: the guard's status must say
                // its system call hooks are detached (a build of someone else's would attach
                // them; the round then measures something else, and says so by failing).
                let status = Command::new(&self.buildwatch)
                    .args(["guard", "--status", "--socket"])
                    .arg(dir.join("guard.sock"))
                    .output()
                    .context("guard --status")?;
                if String::from_utf8_lossy(&status.stdout).contains("system call hooks: detached") {
                    return Ok(running);
                }
            } else if ready {
                return Ok(running);
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("buildwatch did not start:\n{}", tail(&stderr));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The open storm's rate (opens/s) and CPU time per open + close (ns).
    fn open_rate(&self, total: u64) -> Result<(f64, f64)> {
        let log = self.work.join("guard/open.log");
        let (measured, status) = measure(
            Command::new(&self.storm)
                .arg("open")
                .arg(&self.storm_files)
                .arg(STORM_FILES.to_string())
                .arg(total.to_string())
                .arg("0"),
            &log,
            false,
        )?;
        if !status.success() {
            bail!("the open storm failed ({status})");
        }
        Ok((
            storm_line(&log)?.1,
            measured.tree_cpu_secs * 1e9 / total as f64,
        ))
    }

    /// `dd bs=1 count=BYTES`'s CPU time per byte (one read and one write each), in ns.
    fn dd_cpu(&self, bytes: u64) -> Result<f64> {
        let log = self.work.join("guard/dd.log");
        let (measured, status) = measure(
            Command::new("dd").args([
                "if=/dev/zero",
                "of=/dev/null",
                "bs=1",
                &format!("count={bytes}"),
            ]),
            &log,
            false,
        )?;
        if !status.success() {
            bail!("dd failed ({status}): {}", tail(&log));
        }
        Ok(measured.tree_cpu_secs * 1e9 / bytes as f64)
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
        "The cost to the rest of the machine, while no build runs, of `buildwatch guard` \
         (docs/guard.md), and for comparison of a plain `buildwatch ci -- sleep` (the sensor \
         attached and tracking one idle process: what the machine pays today during any watched \
         build): {} opens (+ close) of the storm program as fast as it can (its wall-time rate \
         and its CPU time per open: user + system, which includes the eBPF programs run in its \
         system calls and is what a loaded machine disturbs least), `dd bs=1` of as many bytes \
         (one read, which the sensor does not watch, and one write, which it does, per byte) \
         and {} `/bin/true` execs from a shell loop; the three modes alternated in each of {} \
         rounds (buildwatch started and stopped around each, and the next round waits until \
         its reaper has detached the programs). Medians; the overhead is how much longer one \
         operation takes than with nothing running. Target: at most 1 %. The guard is \
         measured once its status says its system call hooks are detached (docs/guard.md, \
         \"Dormant while no build runs\": it attaches them only while something that can run \
         crate code is watched); what a machine pays while a build runs is the sensor's \
         column.\n",
        thousands(cost.opens),
        thousands(cost.execs),
        cost.rounds.len() / 3
    );
    let _ = writeln!(
        md,
        "| figure | off | sensor | guard | sensor overhead | guard overhead | guard ≤ 1 % |\n\
         |---|---:|---:|---:|---:|---:|---|"
    );
    let figures: [(&str, RoundFigure, bool); 4] = [
        ("opens/s", |r| r.open_rate, true),
        ("CPU ns per open + close", |r| r.open_cpu_ns, false),
        ("`dd bs=1`: CPU ns per byte", |r| r.dd_cpu_ns, false),
        ("execs/s", |r| r.exec_rate, true),
    ];
    for (name, figure, rate) in figures {
        let m = |mode| cost.median(mode, figure).unwrap_or(0.0);
        let o = |mode| cost.overhead(mode, figure, rate).unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.0} | {:.0} | {:+.2} % | {:+.2} % | {} |",
            m(Mode::Off),
            m(Mode::Sensor),
            m(Mode::Guard),
            o(Mode::Sensor),
            o(Mode::Guard),
            verdict(o(Mode::Guard) <= 1.0)
        );
    }
    let _ = writeln!(md, "\nEvery round:\n");
    let _ = writeln!(
        md,
        "| mode | opens/s | CPU ns per open | dd CPU ns per byte | execs/s |\n\
         |---|---:|---:|---:|---:|"
    );
    for r in &cost.rounds {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.mode.name(),
            r.open_rate,
            r.open_cpu_ns,
            r.dd_cpu_ns,
            r.exec_rate
        );
    }
    let _ = writeln!(md);
}
