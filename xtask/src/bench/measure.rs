//! `cargo xtask bench`: running and measuring one command.
use super::*;

/// One watched or unwatched run.
#[derive(Clone, Debug, Default)]
pub(super) struct Measured {
    pub(super) secs: f64,
    /// buildwatch's own peak RSS (KiB) and CPU time, when it was sampled.
    pub(super) hwm_kib: Option<u64>,
    pub(super) cpu_secs: Option<f64>,
    /// Its resident memory by kind of mapping (KiB), at the last reading (every 0.5 s).
    pub(super) breakdown: Option<Vec<(&'static str, u64)>>,
}

/// Runs `cmd` with its output in `log`, timing it from just before the spawn to its reaping.
/// With `sample`, the process's own VmHWM and CPU time are read from /proc every 20 ms (the
/// last reading before it exits is kept: /proc of a zombie has no memory figures any more).
pub(super) fn measure(
    cmd: &mut Command,
    log: &Path,
    sample: bool,
) -> Result<(Measured, ExitStatus)> {
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
pub(super) fn proc_sample(pid: u32) -> Option<(u64, f64)> {
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
pub(super) fn smaps_breakdown(pid: u32) -> Option<Vec<(&'static str, u64)>> {
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
pub(super) struct Counted {
    /// Events processed (every kind but `lost` records).
    pub(super) events: u64,
    pub(super) lost: u64,
    /// The watched command's exit status.
    pub(super) exit_status: i64,
}

pub(super) fn read_report(path: &Path) -> Result<Counted> {
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
pub(super) fn buildwatch_ran(status: ExitStatus) -> bool {
    matches!(status.code(), Some(0 | 3 | 4))
}

/// The storm's `ops=N secs=S rate=R failed=F` line in `log`.
pub(super) fn storm_line(log: &Path) -> Result<(u64, f64)> {
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

pub(super) fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// min, median, max.
pub(super) fn stats(values: &[f64]) -> Option<(f64, f64, f64)> {
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

pub(super) fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
