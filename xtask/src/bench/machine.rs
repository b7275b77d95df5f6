//! `cargo xtask bench`: the machine and the verifier.
use super::*;

pub(super) struct Machine {
    pub(super) cpu: String,
    pub(super) cores: usize,
    pub(super) memory_gib: f64,
    pub(super) kernel: String,
    pub(super) rustc: String,
    pub(super) date: String,
    pub(super) commit: String,
    pub(super) tools: Vec<String>,
}

pub(super) fn first_line(cmd: &mut Command) -> String {
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
    pub(super) fn describe(bench: &Bench) -> Self {
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
pub(super) fn verifier_stats(bench: &Bench) -> Vec<(String, u64)> {
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
