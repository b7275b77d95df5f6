//! `cargo xtask bench`: soak. One `buildwatch ci` watches, for a long time, two loads at once:
//! an open storm at a steady rate (the rates the storm section measures without loss) and
//! short-lived processes (fork + exec of a static program that exits at once, several in
//! parallel). buildwatch's VmRSS and VmHWM are read every second: memory must stay flat however
//! long the run and however many processes come and go (the process table, the image list and
//! the policy's state are bounded), and nothing may be lost.
use std::{collections::BTreeMap, process::Child};

use super::*;

/// What a soak asks for (`--soak-minutes`, `--soak-processes`, `--soak-rate`).
#[derive(Clone, Debug)]
pub(crate) struct SoakOptions {
    pub(crate) minutes: f64,
    pub(crate) processes: u64,
    /// Opens per second, throughout.
    pub(crate) open_rate: f64,
    /// Processes started at once (workers of the spawn storm).
    pub(crate) parallel: u32,
}

impl Default for SoakOptions {
    fn default() -> Self {
        Self {
            minutes: 30.0,
            processes: 1_000_000,
            // The storm section's lowest throttled step, far below its zero-loss rate: the
            // machine is shared, and the soak is about time, not peak rate.
            open_rate: 100_000.0,
            parallel: 4,
        }
    }
}

impl SoakOptions {
    /// The size whose figures go to the top-level BENCHMARKS.md.
    pub(super) fn is_full(&self) -> bool {
        let d = Self::default();
        self.minutes >= d.minutes && self.processes >= d.processes && self.open_rate >= d.open_rate
    }
}

/// When the run's start is read: the sensor is loaded and both loads are running.
const SETTLED_SECS: f64 = 10.0;

/// One reading of buildwatch's memory.
#[derive(Clone, Copy, Debug)]
pub(super) struct RssSample {
    pub(super) secs: f64,
    pub(super) rss_kib: u64,
    pub(super) hwm_kib: u64,
}

pub(super) struct Soak {
    pub(super) options: SoakOptions,
    pub(super) secs: f64,
    pub(super) counted: Counted,
    /// Events processed per kind (the report's counts).
    pub(super) kinds: BTreeMap<String, u64>,
    /// Opens and processes the loads made, and their rates.
    pub(super) opens: (u64, f64),
    pub(super) spawned: (u64, f64),
    pub(super) samples: Vec<RssSample>,
    pub(super) cpu_secs: Option<f64>,
    pub(super) breakdown: Option<Vec<(&'static str, u64)>>,
    pub(super) date: String,
    pub(super) commit: String,
}

impl Soak {
    /// The reading nearest to `fraction` of the run, counted from [`SETTLED_SECS`] (before
    /// that buildwatch is still loading its sensor).
    pub(super) fn at(&self, fraction: f64) -> Option<RssSample> {
        let from = SETTLED_SECS.min(self.secs);
        let t = from + (self.secs - from) * fraction;
        self.samples
            .iter()
            .min_by(|a, b| (a.secs - t).abs().total_cmp(&(b.secs - t).abs()))
            .copied()
    }

    /// Growth of VmRSS from the middle of the run to its end (KiB, may be negative): flat
    /// memory once the bounded tables are full.
    pub(super) fn late_growth_kib(&self) -> Option<i64> {
        let middle = self.at(0.5)?;
        let end = self.samples.last()?;
        Some(end.rss_kib as i64 - middle.rss_kib as i64)
    }

    /// Memory is flat: at most 4 MiB (allocator noise) from the middle to the end.
    pub(super) fn flat(&self) -> bool {
        self.late_growth_kib().is_some_and(|g| g <= 4 * 1024)
    }

    pub(super) fn kind(&self, name: &str) -> u64 {
        self.kinds.get(name).copied().unwrap_or(0)
    }
}

/// VmRSS and VmHWM (KiB) of process `pid`.
fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

impl Bench {
    pub(super) fn soak(&self, options: &SoakOptions, machine: &Machine) -> Result<Soak> {
        let secs = (options.minutes * 60.0).max(1.0);
        let opens = (options.open_rate * secs) as u64;
        let spawn_rate = options.processes as f64 / secs;
        eprintln!(
            "xtask: bench: soak: {:.1} min, {opens} opens at {:.0}/s and {} processes at {:.0}/s \
             ({} in parallel)",
            options.minutes, options.open_rate, options.processes, spawn_rate, options.parallel
        );
        let open_out = self.work.join("soak-open.out");
        let spawn_out = self.work.join("soak-spawn.out");
        // The loads are niced, not buildwatch: on a shared machine the monitor must keep up.
        let script = format!(
            "{storm} open {files} {STORM_FILES} {opens} {rate:.0} > {open_out} & \
             {storm} spawn {procs} {par} {spawn_rate:.1} > {spawn_out} & wait",
            storm = self.storm.display(),
            files = self.storm_files.display(),
            rate = options.open_rate,
            open_out = open_out.display(),
            procs = options.processes,
            par = options.parallel,
            spawn_out = spawn_out.display(),
        );
        let log = self.work.join("soak.log");
        let report = self.work.join("soak-report.json");
        let _ = std::fs::remove_file(&report);
        let mut cmd = Command::new(&self.buildwatch);
        cmd.args(["ci", "--no-tui", "--report"])
            .arg(&report)
            .args(["--", "nice", "-n", "5", "sh", "-c", &script]);
        let file =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let start = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("failed to start {}", describe(&cmd)))?;
        let sampled = sample_until_exit(child, start, secs)?;
        let took = start.elapsed().as_secs_f64();
        if !buildwatch_ran(sampled.status) {
            bail!("soak run failed ({}):\n{}", sampled.status, tail(&log));
        }
        let counted = read_report(&report)?;
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)
            .with_context(|| format!("cannot parse the report {}", report.display()))?;
        let kinds = json["counts"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let soak = Soak {
            options: options.clone(),
            secs: took,
            counted,
            kinds,
            opens: storm_line(&open_out)?,
            spawned: storm_line(&spawn_out)?,
            samples: sampled.samples,
            cpu_secs: sampled.cpu_secs,
            breakdown: sampled.breakdown,
            date: machine.date.clone(),
            commit: machine.commit.clone(),
        };
        let csv: String = soak
            .samples
            .iter()
            .map(|s| format!("{:.1},{},{}\n", s.secs, s.rss_kib, s.hwm_kib))
            .collect();
        let csv_path = self.work.join("soak-rss.csv");
        std::fs::write(&csv_path, format!("secs,vmrss_kib,vmhwm_kib\n{csv}"))?;
        eprintln!(
            "xtask: bench: soak done in {:.1} min: {} events, {} lost, {} execs; VmRSS {} -> {} \
             KiB (every second in {})",
            took / 60.0,
            soak.counted.events,
            soak.counted.lost,
            soak.kind("exec"),
            soak.at(0.0).map_or(0, |s| s.rss_kib),
            soak.samples.last().map_or(0, |s| s.rss_kib),
            csv_path.display()
        );
        Ok(soak)
    }
}

struct Sampled {
    status: ExitStatus,
    samples: Vec<RssSample>,
    cpu_secs: Option<f64>,
    breakdown: Option<Vec<(&'static str, u64)>>,
}

/// Reads the child's memory every second until it exits (the last readings before its exit are
/// kept: /proc of a zombie has no memory figures any more), with a line of progress a minute.
fn sample_until_exit(mut child: Child, start: Instant, planned_secs: f64) -> Result<Sampled> {
    let pid = child.id();
    let mut samples = Vec::new();
    let mut cpu_secs = None;
    let mut breakdown = None;
    let mut next = Duration::ZERO;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Sampled {
                status,
                samples,
                cpu_secs,
                breakdown,
            });
        }
        let elapsed = start.elapsed();
        if elapsed >= next {
            if let Some((rss_kib, hwm_kib)) = rss(pid) {
                samples.push(RssSample {
                    secs: elapsed.as_secs_f64(),
                    rss_kib,
                    hwm_kib,
                });
                if samples.len() % 60 == 0 {
                    eprintln!(
                        "xtask: bench: soak: {:.0}/{:.0} min, VmRSS {:.1} MiB, VmHWM {:.1} MiB",
                        elapsed.as_secs_f64() / 60.0,
                        planned_secs / 60.0,
                        mib(rss_kib),
                        mib(hwm_kib)
                    );
                }
            }
            if let Some((_, cpu)) = proc_sample(pid) {
                cpu_secs = Some(cpu);
            }
            if samples.len() % 30 == 1
                && let Some(b) = smaps_breakdown(pid)
            {
                breakdown = Some(b);
            }
            next += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn render_soak(md: &mut String, soak: &Soak) {
    let o = &soak.options;
    let _ = writeln!(md, "## Soak\n");
    let _ = writeln!(
        md,
        "One `buildwatch ci` (default 16 MiB ring buffer) watching, for {:.1} minutes, an open \
         storm at {} opens/s and {} short-lived processes ({} workers each forking and \
         executing a static program that exits at once, and waiting for it), both under \
         `nice -n 5`. buildwatch's VmRSS and VmHWM read every second. Run on {} at commit {} \
         (`cargo xtask bench --only soak{}`).\n",
        soak.secs / 60.0,
        thousands(o.open_rate as u64),
        thousands(o.processes),
        o.parallel,
        soak.date,
        soak.commit,
        if o.is_full() {
            String::new()
        } else {
            format!(
                " --soak-minutes {} --soak-processes {}",
                o.minutes, o.processes
            )
        }
    );
    let _ = writeln!(md, "| | |\n|---|---:|");
    let rows = [
        ("opens made (rate)", soak.opens),
        ("processes started (rate)", soak.spawned),
    ];
    for (name, (n, rate)) in rows {
        let _ = writeln!(
            md,
            "| {name} | {} ({}/s) |",
            thousands(n),
            thousands(rate as u64)
        );
    }
    for (name, n) in [
        ("events processed", soak.counted.events),
        ("events lost", soak.counted.lost),
        ("forks seen", soak.kind("fork")),
        ("execs seen", soak.kind("exec")),
        ("exits seen", soak.kind("exit")),
        ("opens seen", soak.kind("open")),
    ] {
        let _ = writeln!(md, "| {name} | {} |", thousands(n));
    }
    if let Some(cpu) = soak.cpu_secs {
        let _ = writeln!(md, "| CPU time of buildwatch | {cpu:.0} s |");
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| point of the run | elapsed | VmRSS | VmHWM |\n|---|---:|---:|---:|"
    );
    for (name, fraction) in [
        ("start (sensor loaded, loads running)", 0.0),
        ("quarter", 0.25),
        ("middle", 0.5),
        ("three quarters", 0.75),
        ("end", 1.0),
    ] {
        if let Some(s) = soak.at(fraction) {
            let _ = writeln!(
                md,
                "| {name} | {:.0} s | {:.1} MiB | {:.1} MiB |",
                s.secs,
                mib(s.rss_kib),
                mib(s.hwm_kib)
            );
        }
    }
    let _ = writeln!(md);
    if let Some(growth) = soak.late_growth_kib() {
        let _ = writeln!(
            md,
            "**Memory {}**: VmRSS {:+.1} MiB from the middle of the run to its end (flat: at most \
             4 MiB); {} events lost.\n",
            if soak.flat() { "flat" } else { "NOT flat" },
            growth as f64 / 1024.0,
            thousands(soak.counted.lost)
        );
    }
    if let Some(breakdown) = &soak.breakdown {
        let _ = writeln!(
            md,
            "Where buildwatch's resident memory is near the end (from /proc/PID/smaps):\n"
        );
        render_breakdown(md, breakdown);
    }
}

/// Replaces the `## Soak` section of `doc` (up to the next `## ` heading) with `section`, or
/// puts it before the eBPF programs' section (or at the end) when there is none: a soak run
/// alone updates its own figures and leaves every other section as it was.
pub(super) fn splice_section(doc: &str, heading: &str, section: &str) -> String {
    let starts = |l: &str| l.trim_end() == heading;
    let lines: Vec<&str> = doc.split_inclusive('\n').collect();
    let (from, to) = match lines.iter().position(|l| starts(l)) {
        Some(from) => {
            let to = lines[from + 1..]
                .iter()
                .position(|l| l.starts_with("## "))
                .map_or(lines.len(), |i| from + 1 + i);
            (from, to)
        }
        None => {
            let at = lines
                .iter()
                .position(|l| l.starts_with("## eBPF programs"))
                .unwrap_or(lines.len());
            (at, at)
        }
    };
    let mut out: String = lines[..from].concat();
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(section);
    out.push_str(&lines[to..].concat());
    out
}

#[cfg(test)]
mod tests {
    use super::splice_section;

    #[test]
    fn a_soak_section_replaces_only_its_own() {
        let doc = "# B\n\n## Storm\n\nx\n\n## Soak\n\nold\n\n## eBPF programs\n\ny\n";
        let out = splice_section(doc, "## Soak", "## Soak\n\nnew\n\n");
        assert_eq!(
            out,
            "# B\n\n## Storm\n\nx\n\n## Soak\n\nnew\n\n## eBPF programs\n\ny\n"
        );
        let doc = "# B\n\n## Storm\n\nx\n\n## eBPF programs\n\ny\n";
        let out = splice_section(doc, "## Soak", "## Soak\n\nnew\n\n");
        assert_eq!(
            out,
            "# B\n\n## Storm\n\nx\n\n## Soak\n\nnew\n\n## eBPF programs\n\ny\n"
        );
        let out = splice_section("# B\n\nz\n", "## Soak", "## Soak\n\nnew\n");
        assert_eq!(out, "# B\n\nz\n\n## Soak\n\nnew\n");
    }
}
