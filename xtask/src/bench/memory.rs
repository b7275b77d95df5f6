//! `cargo xtask bench`: memory after many events.
use super::*;

pub(super) struct MemoryRun {
    pub(super) events_wanted: u64,
    pub(super) rate: f64,
    pub(super) counted: Counted,
    pub(super) hwm_kib: Option<u64>,
    pub(super) cpu_secs: Option<f64>,
    pub(super) breakdown: Option<Vec<(&'static str, u64)>>,
}

impl Bench {
    /// buildwatch's VmHWM after 1M and 10M open events, at a rate it takes without loss (80% of
    /// the storm's zero-loss rate, when the storm ran).
    pub(super) fn memory(&self, zero_loss_rate: Option<f64>) -> Result<Vec<MemoryRun>> {
        eprintln!("xtask: bench: memory");
        let rate = zero_loss_rate.map(|r| (r * 0.8).max(50_000.0));
        let sizes: &[u64] = if self.quick {
            &[100_000, 1_000_000]
        } else {
            &[1_000_000, 10_000_000]
        };
        let mut out = Vec::new();
        for &events in sizes {
            let argv = self.storm_command(&StormOp::Open, events, rate, 1);
            let log = self.work.join("memory.log");
            let report = self.work.join("memory-report.json");
            let _ = std::fs::remove_file(&report);
            let mut cmd = Command::new(&self.buildwatch);
            cmd.args(["ci", "--no-tui", "--report"])
                .arg(&report)
                .arg("--")
                .args(&argv);
            let (measured, status) = measure(&mut cmd, &log, true)?;
            if !buildwatch_ran(status) {
                bail!("memory run failed ({status}):\n{}", tail(&log));
            }
            let (_, achieved) = storm_sum(&log)?;
            let counted = read_report(&report)?;
            eprintln!(
                "xtask: bench: memory after {} events ({} lost): VmHWM {:?} KiB",
                counted.events, counted.lost, measured.hwm_kib
            );
            out.push(MemoryRun {
                events_wanted: events,
                rate: achieved,
                counted,
                hwm_kib: measured.hwm_kib,
                cpu_secs: measured.cpu_secs,
                breakdown: measured.breakdown,
            });
        }
        Ok(out)
    }
}
