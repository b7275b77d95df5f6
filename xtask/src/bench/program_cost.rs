//! `cargo xtask bench --only programcost`: the in-kernel cost of each eBPF program, the system
//! call handlers included, over one watched build of the popular workload and over the open
//! storm (issue 17: every change to the kernel side shows its price).
//!
//! The kernel's bpf_stats (`kernel.bpf_stats_enabled`) count a program's runs and run time only
//! when it is entered from its hook: on x86_64 the system call handlers are tail calls of the raw
//! `sys_enter`/`sys_exit` dispatchers, so bpf_stats give them 0 runs and put their time in the
//! dispatcher's. Under `BUILDWATCH_PROGRAM_STATS` the dispatchers also count their tail calls per
//! slot (monitor-ebpf/src/dispatch.rs), which gives each handler's runs; its time comes from
//! `perf record -a -g` over the same run: each sample is charged to the innermost frame that is
//! one of this run's programs (found by tag in the JIT images' `bpf_prog_<tag>_<name>` symbols),
//! and each dispatcher's bpf_stats time is split over it and its handlers in proportion to their
//! samples.
use std::io::BufRead as _;

use super::*;

/// perf's sampling frequency (per CPU): higher gives more samples in the programs (finer
/// shares) and more NMIs inside the measured run times.
const PERF_HZ: u32 = 4000;

/// A program a dispatcher tail-called: its runs, from buildwatch's `handler:` lines.
#[derive(Clone, Debug)]
pub(super) struct HandlerRuns {
    pub(super) dispatcher: String,
    pub(super) name: String,
    pub(super) runs: u64,
}

/// `handler: raw_sys_exit: sys_exit_open_family: 123 runs`.
pub(super) fn parse_handler_runs(line: &str) -> Option<HandlerRuns> {
    let rest = line.strip_prefix("handler: ")?;
    let (dispatcher, rest) = rest.split_once(": ")?;
    let (name, rest) = rest.split_once(": ")?;
    Some(HandlerRuns {
        dispatcher: dispatcher.to_owned(),
        name: name.to_owned(),
        runs: rest.strip_suffix(" runs")?.trim().parse().ok()?,
    })
}

/// `program tag: sys_exit_open_family: 2e44673017a86072`.
fn parse_program_tag(line: &str) -> Option<(String, String)> {
    let (name, tag) = line.strip_prefix("program tag: ")?.split_once(": ")?;
    Some((tag.trim().to_owned(), name.to_owned()))
}

/// The tag of a JIT image's symbol `bpf_prog_<16 hex digits>_<name>`.
fn symbol_tag(symbol: &str) -> Option<&str> {
    let rest = symbol.strip_prefix("bpf_prog_")?;
    let tag = rest.get(..16)?;
    (tag.bytes().all(|b| b.is_ascii_hexdigit()) && rest[16..].starts_with('_')).then_some(tag)
}

/// One watched run with bpf_stats, the dispatchers' counts and (if it could run) perf.
pub(super) struct Profiled {
    /// bpf_stats: every program entered from its hook.
    pub(super) programs: Vec<ProgramCost>,
    pub(super) handlers: Vec<HandlerRuns>,
    /// perf samples charged to each program of the run, or why there are none.
    pub(super) samples: std::result::Result<Vec<(String, u64)>, String>,
    /// User + system CPU time of the watched command's tree, buildwatch included (wait4).
    pub(super) tree_cpu_secs: f64,
}

/// A line of the table: a program, the dispatcher that called it (handlers), its runs, its
/// in-kernel time (None: not measurable in this run) and its perf samples.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) via: Option<String>,
    pub(super) runs: u64,
    pub(super) ns: Option<f64>,
    /// A dispatcher whose time could not be split: it includes its handlers'.
    pub(super) whole: bool,
    pub(super) samples: Option<u64>,
}

impl Profiled {
    fn samples_of(&self, name: &str) -> Option<u64> {
        let samples = self.samples.as_ref().ok()?;
        Some(
            samples
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, s)| *s),
        )
    }

    /// Every program that ran, handlers with their share of their dispatcher's time.
    pub(super) fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for p in self.programs.iter().filter(|p| p.runs > 0) {
            let handlers: Vec<&HandlerRuns> = self
                .handlers
                .iter()
                .filter(|h| h.dispatcher == p.name)
                .collect();
            let own = self.samples_of(&p.name);
            let all = own.map(|own| {
                own + handlers
                    .iter()
                    .filter_map(|h| self.samples_of(&h.name))
                    .sum::<u64>()
            });
            let split = match all {
                Some(all) if all > 0 && !handlers.is_empty() => Some(all),
                _ => None,
            };
            let share = |samples: Option<u64>| {
                split
                    .zip(samples)
                    .map(|(all, s)| p.ns as f64 * s as f64 / all as f64)
            };
            rows.push(Row {
                name: p.name.clone(),
                via: None,
                runs: p.runs,
                ns: if handlers.is_empty() {
                    Some(p.ns as f64)
                } else {
                    Some(share(own).unwrap_or(p.ns as f64))
                },
                whole: !handlers.is_empty() && split.is_none(),
                samples: own,
            });
            for h in handlers {
                let samples = self.samples_of(&h.name);
                rows.push(Row {
                    name: h.name.clone(),
                    via: Some(p.name.clone()),
                    runs: h.runs,
                    // No sample: too little time to tell from zero at this rate.
                    ns: share(samples.filter(|s| *s > 0)),
                    whole: false,
                    samples,
                });
            }
        }
        rows.sort_by(|a, b| {
            b.ns.unwrap_or(0.0)
                .total_cmp(&a.ns.unwrap_or(0.0))
                .then(b.runs.cmp(&a.runs))
        });
        rows
    }
}

/// The section's two runs.
pub(super) struct ProgramCosts {
    pub(super) build: Profiled,
    pub(super) workload: String,
    pub(super) storm: Profiled,
    pub(super) opens: u64,
}

impl Bench {
    pub(super) fn program_cost(&self) -> Result<ProgramCosts> {
        let opens: u64 = if self.quick { 50_000 } else { 200_000 };
        let mut storm = self.open_storm_command(opens, false);
        let storm = self.profiled(&mut storm, "program-cost-storm")?;
        let workload = self.prepare_popular()?;
        self.clean(&workload)?;
        let report = self.work.join("program-cost-report.json");
        let _ = std::fs::remove_file(&report);
        // (The trace file is bpftrace's: unused here.)
        let trace = self.work.join("program-cost.trace");
        let mut cmd = self.watch_command(Watch::Buildwatch, &workload, &report, &trace)?;
        let build = self.profiled(&mut cmd, "program-cost-build");
        let built = workload.artifact.exists();
        self.clean(&workload)?;
        let build = build?;
        let counted = read_report(&report)?;
        if counted.exit_status != 0 || !built {
            bail!("the watched {} build failed", workload.name);
        }
        Ok(ProgramCosts {
            build,
            workload: workload.name.to_owned(),
            storm,
            opens,
        })
    }

    /// Runs `cmd` (a `buildwatch ci` command line) with bpf_stats, `BUILDWATCH_PROGRAM_STATS`
    /// and, when it can, `perf record -a -g` around it.
    fn profiled(&self, cmd: &mut Command, name: &str) -> Result<Profiled> {
        let log = self.work.join(format!("{name}.log"));
        let data = self.work.join(format!("{name}.perf.data"));
        let _ = std::fs::remove_file(&data);
        let stats = Sysctl::bpf_stats()?;
        // Without it the JIT images have no symbols and perf cannot tell them apart.
        let kallsyms = Sysctl::set("/proc/sys/net/core/bpf_jit_kallsyms", "1");
        let mut perf = match (&kallsyms, which("perf")) {
            (Err(e), _) => Err(format!("{e:#}")),
            (Ok(_), None) => Err("perf is not installed".to_owned()),
            (Ok(_), Some(perf)) => self.start_perf(&perf, &data, name),
        };
        cmd.env("BUILDWATCH_PROGRAM_STATS", "1");
        let result = measure(cmd, &log, false);
        if let Ok(child) = &mut perf {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            let _ = child.wait();
        }
        drop(stats);
        drop(kallsyms);
        let (measured, status) = result?;
        if !buildwatch_ran(status) {
            bail!("buildwatch failed ({status}):\n{}", tail(&log));
        }
        let text = std::fs::read_to_string(&log)?;
        let programs: Vec<ProgramCost> = text.lines().filter_map(parse_program_cost).collect();
        if programs.is_empty() {
            bail!(
                "buildwatch printed no program statistics in {}",
                log.display()
            );
        }
        let tags: Vec<(String, String)> = text.lines().filter_map(parse_program_tag).collect();
        let samples = perf.and_then(|_| perf_samples(&data, &tags));
        let _ = std::fs::remove_file(&data);
        if let Err(why) = &samples {
            eprintln!("xtask: bench: no perf figures for {name}: {why}");
        }
        Ok(Profiled {
            programs,
            handlers: text.lines().filter_map(parse_handler_runs).collect(),
            samples,
            tree_cpu_secs: measured.tree_cpu_secs,
        })
    }

    /// `perf record` of every CPU, kernel side only, with call chains (a helper's samples then
    /// go to the program that called it), running by the time this returns.
    fn start_perf(
        &self,
        perf: &Path,
        data: &Path,
        name: &str,
    ) -> std::result::Result<std::process::Child, String> {
        let log = self.work.join(format!("{name}.perf.log"));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new(perf)
            .args(["record", "-a", "-g", "--all-kernel", "-F"])
            .arg(PERF_HZ.to_string())
            .arg("-o")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start perf: {e}"))?;
        // perf says nothing when it is ready: give it time to open its events.
        std::thread::sleep(Duration::from_millis(1000));
        match child.try_wait() {
            Ok(None) => Ok(child),
            _ => Err(format!("perf record stopped at once: {}", tail(&log))),
        }
    }
}

/// perf samples per program of this run (`tags`: tag → name): each sample goes to the innermost
/// frame of its call chain that is one of these programs' JIT images. A global function or a
/// callback is an image of its own, under its own tag, so its samples go to the program below
/// it; a tail-called program runs in its dispatcher's frame, so its samples are its own.
fn perf_samples(
    data: &Path,
    tags: &[(String, String)],
) -> std::result::Result<Vec<(String, u64)>, String> {
    let mut child = Command::new("perf")
        .args(["script", "-F", "ip,sym", "--max-stack", "24", "-i"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run perf script: {e}"))?;
    let stdout = child.stdout.take().ok_or("perf script has no output")?;
    let mut counts: Vec<(String, u64)> = Vec::new();
    let mut found = false;
    let mut seen = 0u64;
    // One sample per block of lines (one frame a line, innermost first), blocks apart by a
    // blank line.
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading perf script: {e}"))?;
        let line = line.trim();
        if line.is_empty() {
            found = false;
            continue;
        }
        if found {
            continue;
        }
        let Some(symbol) = line.split_whitespace().nth(1) else {
            continue;
        };
        let Some(tag) = symbol_tag(symbol) else {
            continue;
        };
        if let Some((_, name)) = tags.iter().find(|(t, _)| t == tag) {
            found = true;
            seen += 1;
            match counts.iter_mut().find(|(n, _)| n == name) {
                Some(count) => count.1 += 1,
                None => counts.push((name.clone(), 1)),
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("perf script failed ({status})"));
    }
    if seen == 0 {
        return Err("perf recorded no sample in the run's programs".to_owned());
    }
    Ok(counts)
}

pub(super) fn render_program_cost(md: &mut String, costs: &ProgramCosts) {
    let _ = writeln!(md, "## In-kernel cost by program\n");
    let _ = writeln!(
        md,
        "Every eBPF program's runs and time, the system call handlers included, over one watched \
         `{}` build (the Real builds section's workload, a build of its own, not one of the timed \
         rounds) and over the open storm ({} opens + closes). Runs: bpf_stats \
         (`kernel.bpf_stats_enabled`) for the programs entered from their hooks; for the \
         handlers (↳, tail calls of the raw `sys_enter`/`sys_exit` dispatchers, which bpf_stats \
         count as the dispatcher's) the dispatchers' own count per slot, made only under \
         `BUILDWATCH_PROGRAM_STATS` (a load-time constant: other runs do not have the code; \
         here its one array update per tail call is in the dispatcher's own row). \
         Time: bpf_stats; a dispatcher's time includes its handlers', and is split over them in \
         proportion to `perf record -a -g -F {PERF_HZ}` samples during the same run, each sample \
         charged to the innermost of the run's programs on its call chain (so a helper's time \
         goes to its caller).\n",
        costs.workload,
        thousands(costs.opens),
    );
    let _ = writeln!(
        md,
        "Error: a split share has the sampling error of its sample count (about \
         1/√samples: ±10% at 100 samples, ±3% at 1,000); the sum stays the dispatcher's measured \
         time. Other runs of the same buildwatch on the machine at the same time have the same \
         tags and would add their samples. bpf_stats add two clock reads per run from a hook, \
         and perf's interrupts that land in a program are counted in its time (compare the \
         storm's total with the section \"In-kernel cost per open\", measured without perf). A \
         handler without samples ran too briefly to be told from zero (–). A dispatcher's own \
         row is its bit test and lookup for every system call of the machine, not only the \
         build's.\n"
    );
    let _ = writeln!(md, "### One watched {} build\n", costs.workload);
    render_rows(
        md,
        &costs.build,
        |ns| {
            format!(
                "{:.3}%",
                ns / 1e9 / costs.build.tree_cpu_secs.max(1e-9) * 100.0
            )
        },
        "share of the build's CPU",
    );
    let total: u64 = costs.build.programs.iter().map(|p| p.ns).sum();
    let _ = writeln!(
        md,
        "All programs: {:.0} ms, {:.2}% of the watched build's CPU time ({:.1} s, its processes' \
         and buildwatch's user + system time, which includes the programs).\n",
        total as f64 / 1e6,
        total as f64 / 1e9 / costs.build.tree_cpu_secs.max(1e-9) * 100.0,
        costs.build.tree_cpu_secs
    );
    let _ = writeln!(md, "### The open storm\n");
    let opens = costs.opens.max(1) as f64;
    render_rows(
        md,
        &costs.storm,
        |ns| format!("{:.0}", ns / opens),
        "ns per open",
    );
}

fn render_rows(md: &mut String, run: &Profiled, last: impl Fn(f64) -> String, heading: &str) {
    if let Err(why) = &run.samples {
        let _ = writeln!(
            md,
            "No perf figures for this run ({why}): the handlers' runs only; their time is in \
             their dispatcher's.\n"
        );
    }
    let _ = writeln!(
        md,
        "| program | runs | ns per run | total (ms) | {heading} | perf samples |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for row in run.rows() {
        let name = match (&row.via, row.whole) {
            (Some(via), _) => format!("↳ {} (from {via})", row.name),
            (None, true) => format!("{} (with its handlers)", row.name),
            (None, false) => row.name.clone(),
        };
        let (per_run, total, last) = match row.ns {
            Some(ns) => (
                format!("{:.0}", ns / row.runs.max(1) as f64),
                format!("{:.1}", ns / 1e6),
                last(ns),
            ),
            None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {per_run} | {total} | {last} | {} |",
            thousands(row.runs),
            row.samples.map_or("–".to_owned(), thousands)
        );
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: std::result::Result<Vec<(String, u64)>, String>) -> Profiled {
        let cost = |name: &str, runs, ns| ProgramCost {
            name: name.to_owned(),
            runs,
            ns,
        };
        Profiled {
            programs: vec![
                cost("raw_sys_exit", 1000, 900_000),
                cost("sched_process_exec", 2, 50_000),
            ],
            handlers: vec![HandlerRuns {
                dispatcher: "raw_sys_exit".to_owned(),
                name: "sys_exit_open_family".to_owned(),
                runs: 100,
            }],
            samples,
            tree_cpu_secs: 1.0,
        }
    }

    #[test]
    fn a_dispatchers_time_is_split_by_samples() {
        let samples = vec![
            ("raw_sys_exit".to_owned(), 10),
            ("sys_exit_open_family".to_owned(), 80),
        ];
        let rows = run(Ok(samples)).rows();
        let find = |name: &str| rows.iter().find(|r| r.name == name).expect("a row");
        let handler = find("sys_exit_open_family");
        assert_eq!(handler.via.as_deref(), Some("raw_sys_exit"));
        assert_eq!(handler.runs, 100);
        assert_eq!(handler.ns, Some(800_000.0));
        assert_eq!(find("raw_sys_exit").ns, Some(100_000.0));
        assert!(!find("raw_sys_exit").whole);
        assert_eq!(find("sched_process_exec").ns, Some(50_000.0));
        assert_eq!(rows[0].name, "sys_exit_open_family");
    }

    #[test]
    fn without_perf_a_dispatcher_keeps_its_whole_time() {
        let rows = run(Err("perf is not installed".to_owned())).rows();
        let dispatcher = rows
            .iter()
            .find(|r| r.name == "raw_sys_exit")
            .expect("a row");
        assert!(dispatcher.whole);
        assert_eq!(dispatcher.ns, Some(900_000.0));
        let handler = rows
            .iter()
            .find(|r| r.name == "sys_exit_open_family")
            .expect("a row");
        assert_eq!((handler.runs, handler.ns), (100, None));
    }

    #[test]
    fn lines_and_symbols_parse() {
        let h = parse_handler_runs("handler: raw_sys_enter: sys_enter_mmap: 111 runs")
            .expect("a handler line");
        assert_eq!(
            (h.dispatcher.as_str(), h.name.as_str(), h.runs),
            ("raw_sys_enter", "sys_enter_mmap", 111)
        );
        assert_eq!(
            parse_program_tag("program tag: raw_sys_exit: 7ce360fdce072c26"),
            Some(("7ce360fdce072c26".to_owned(), "raw_sys_exit".to_owned()))
        );
        assert_eq!(
            symbol_tag("bpf_prog_7ce360fdce072c26_raw_sys_exit"),
            Some("7ce360fdce072c26")
        );
        assert_eq!(symbol_tag("bpf_prog_load"), None);
        assert_eq!(symbol_tag("bpf_prog_run_pin_on_cpu_with_a_long_name"), None);
    }
}
