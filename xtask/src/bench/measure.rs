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
    /// User + system CPU seconds of the command and every descendant it waited for (wait4's
    /// rusage): for a watched build, the build's processes, the eBPF programs that ran in their
    /// context (charged to them as system time), and buildwatch itself.
    pub(super) tree_cpu_secs: f64,
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
    let child = cmd
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
        let status = wait_with_rusage(pid);
        let secs = start.elapsed().as_secs_f64();
        done.store(true, Ordering::Release);
        let last = sampler.and_then(|h| h.join().ok()).flatten();
        (status, secs, last)
    });
    // The child is reaped: std's handle must not wait for it again.
    drop(child);
    let (status, tree_cpu_secs) =
        status.with_context(|| format!("failed to wait for {}", describe(cmd)))?;
    Ok((
        Measured {
            tree_cpu_secs,
            secs,
            hwm_kib: last.as_ref().map(|((hwm, _), _)| *hwm),
            cpu_secs: last.as_ref().map(|((_, cpu), _)| *cpu),
            breakdown: last.and_then(|(_, b)| b),
        },
        status,
    ))
}

/// Waits for `pid` with wait4(2): its exit status and the user+system CPU seconds of it and of
/// all its descendants that were waited for (the kernel adds a reaped child's totals, its own
/// reaped children included, to its parent's).
fn wait_with_rusage(pid: u32) -> std::io::Result<(ExitStatus, f64)> {
    use std::os::unix::process::ExitStatusExt as _;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and usage are valid for writes; pid is our own child.
        let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
        if r == pid as i32 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        ExitStatus::from_raw(status),
        secs(usage.ru_utime) + secs(usage.ru_stime),
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

/// Sets a /proc/sys value for the measured run and puts the old one back when dropped.
pub(super) struct Sysctl {
    path: &'static str,
    before: String,
}

impl Sysctl {
    pub(super) fn set(path: &'static str, value: &str) -> Result<Self> {
        let before = std::fs::read_to_string(path).unwrap_or_else(|_| "0".into());
        std::fs::write(path, value).with_context(|| format!("cannot set {path}"))?;
        Ok(Self { path, before })
    }

    /// The kernel's BPF run-time statistics (`kernel.bpf_stats_enabled`) on.
    pub(super) fn bpf_stats() -> Result<Self> {
        Self::set("/proc/sys/kernel/bpf_stats_enabled", "1")
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, self.before.trim());
    }
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

/// A distribution-free confidence interval for the median of `values` (order statistics and the
/// binomial distribution, as the sign test): the widest-coverage pair (x(k), x(n+1-k)) whose
/// coverage is at least 90%, and that coverage. None with fewer than 5 values (no such pair).
pub(super) fn median_interval(values: &[f64]) -> Option<(f64, f64, f64)> {
    let n = values.len();
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    // P(X <= j) for X ~ Binomial(n, 1/2).
    let cdf = |j: usize| -> f64 {
        let mut c = 1.0f64;
        let mut sum = 0.0;
        for i in 0..=j {
            if i > 0 {
                c = c * (n - i + 1) as f64 / i as f64;
            }
            sum += c;
        }
        sum / 2f64.powi(n as i32)
    };
    // The narrowest interval (largest k) with coverage 1 - 2 P(X <= k-1) >= 0.90.
    let mut best = None;
    for k in 1..=n / 2 {
        let coverage = 1.0 - 2.0 * cdf(k - 1);
        if coverage >= 0.90 {
            best = Some((v[k - 1], v[n - k], coverage));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::median_interval;

    #[test]
    fn median_interval_uses_order_statistics() {
        // n = 8: (x(2), x(7)) covers 1 - 2 * 9/256 = 93%; (x(3), x(6)) only 71%.
        let v = [8.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let (lo, hi, c) = median_interval(&v).expect("8 values have an interval");
        assert_eq!((lo, hi), (2.0, 7.0));
        assert!((c - (1.0 - 18.0 / 256.0)).abs() < 1e-9, "{c}");
        assert!(median_interval(&[1.0, 2.0, 3.0, 4.0]).is_none());
    }
}
