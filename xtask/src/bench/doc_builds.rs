//! `cargo xtask bench`: the build sections of BENCHMARKS.md (each workload's table, the
//! paired ratios, the in-kernel cost per program).
use super::*;

/// What a build's cost is measured in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Figure {
    /// Wall time, spawn to exit.
    Wall,
    /// User + system CPU time of the whole process tree.
    Cpu,
}

impl Builds {
    pub(super) fn figure(&self, workload: &str, watch: Watch, figure: Figure) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.workload == workload && r.watch == watch)
            .map(|r| match figure {
                Figure::Wall => r.measured.secs,
                Figure::Cpu => r.measured.tree_cpu_secs,
            })
            .collect()
    }

    /// Round by round, `watch`'s figure over the same round's unwatched one.
    pub(super) fn paired(&self, workload: &str, watch: Watch, figure: Figure) -> Vec<f64> {
        self.figure(workload, watch, figure)
            .iter()
            .zip(&self.figure(workload, Watch::Unwatched, figure))
            .map(|(w, b)| w / b)
            .collect()
    }

    pub(super) fn secs(&self, workload: &str, watch: Watch) -> Vec<f64> {
        self.figure(workload, watch, Figure::Wall)
    }
}

/// Each configuration's time over the same round's unwatched time, and the spread of the
/// unwatched builds themselves: drift between rounds cancels out of the former, and the latter
/// says how small an overhead this machine can resolve at all. Then the same for CPU time.
pub(super) fn render_paired(md: &mut String, builds: &Builds, workload: &str) {
    for (figure, what) in [
        (Figure::Wall, "Wall time"),
        (
            Figure::Cpu,
            "CPU time (user + system of every process of the build, buildwatch and \
         the eBPF programs included)",
        ),
    ] {
        let base = builds.figure(workload, Watch::Unwatched, figure);
        let Some((min, median, max)) = stats(&base) else {
            continue;
        };
        let _ = writeln!(
            md,
            "{what}: the unwatched builds spread over {:.1}% of their median ({median:.1} s). \
             Round by round, over the same round's unwatched build:\n",
            (max - min) / median * 100.0
        );
        for watch in [Watch::Buildwatch, Watch::Strace, Watch::Bpftrace] {
            let ratios = builds.paired(workload, watch, figure);
            if let Some((_, m, _)) = stats(&ratios) {
                let list: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
                let interval = median_interval(&ratios).map_or(
                    " (too few rounds for a confidence interval)".to_owned(),
                    |(lo, hi, c)| {
                        format!(
                            "; {:.0}% confidence interval of the median {:+.1}% .. {:+.1}%",
                            c * 100.0,
                            (lo - 1.0) * 100.0,
                            (hi - 1.0) * 100.0
                        )
                    },
                );
                let _ = writeln!(
                    md,
                    "- {}: {} (paired median {m:.3}, {:+.1}%{interval})",
                    watch.label(),
                    list.join(", "),
                    (m - 1.0) * 100.0
                );
            }
        }
        let _ = writeln!(md);
    }
}

/// Each eBPF program's runs and in-kernel time over one watched build.
pub(super) fn render_programs(md: &mut String, builds: &Builds) {
    for (workload, costs) in &builds.programs {
        let total_ns: u64 = costs.iter().map(|c| c.ns).sum();
        let base =
            stats(&builds.figure(workload, Watch::Unwatched, Figure::Cpu)).map(|(_, m, _)| m);
        let _ = writeln!(
            md,
            "eBPF programs over one watched {workload} build (`kernel.bpf_stats_enabled`, a \
             build of its own, not one of the timed rounds): {:.0} ms in all{}.\n",
            total_ns as f64 / 1e6,
            base.map_or(String::new(), |b| format!(
                ", {:.2}% of the unwatched build's CPU time",
                total_ns as f64 / 1e9 / b * 100.0
            ))
        );
        let _ = writeln!(
            md,
            "| program | runs | ns per run | total (ms) |\n|---|---:|---:|---:|"
        );
        for c in costs.iter().filter(|c| c.runs > 0) {
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.1} |",
                c.name,
                thousands(c.runs),
                c.ns as f64 / c.runs as f64,
                c.ns as f64 / 1e6
            );
        }
        let idle: Vec<&str> = costs
            .iter()
            .filter(|c| c.runs == 0)
            .map(|c| c.name.as_str())
            .collect();
        if !idle.is_empty() {
            let _ = writeln!(md, "\nNever ran in this build: {}.", idle.join(", "));
        }
        let _ = writeln!(md);
    }
}

pub(super) fn render_builds(md: &mut String, builds: &Builds, bench: &Bench) {
    let _ = writeln!(md, "## Real builds\n");
    let _ = writeln!(
        md,
        "Clean builds, {} rounds; within each round the configurations run in turn (unwatched, \
         buildwatch, strace, bpftrace; in the reverse order every other round), so that drift, \
         and what the build before left behind, affect all alike. Wall time from spawning \
         the command (or the tool that runs it) to its exit, tool startup included. One warm-up \
         build of each workload first fills the registry and page caches; the measured builds \
         run `--offline`, in the environment `cargo xtask` was started from, without the \
         LD_LIBRARY_PATH cargo run sets for xtask (before 2026-12-08 they had it: the dynamic \
         loader of every program tried four more directories per library).\n",
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
    render_programs(md, builds);
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
         include the build). The eBPF programs' own cost is charged to the build's processes: it is \
         in the CPU-time figure (wait4's rusage of the whole tree) and listed per program above.\n"
    );
}
