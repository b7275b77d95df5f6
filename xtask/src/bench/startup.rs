//! `cargo xtask bench`: startup.
use super::*;

pub(super) struct Startup {
    /// Milliseconds from spawning buildwatch to the watched program's first action.
    pub(super) watched_ms: Vec<f64>,
    /// The same without buildwatch (spawning the program directly).
    pub(super) direct_ms: Vec<f64>,
    /// Wall time of a whole `buildwatch ci -- storm now` run (load, run, detach, report).
    pub(super) whole_ms: Vec<f64>,
}

impl Bench {
    pub(super) fn startup(&self) -> Result<Startup> {
        eprintln!("xtask: bench: startup");
        let mut result = Startup {
            watched_ms: Vec::new(),
            direct_ms: Vec::new(),
            whole_ms: Vec::new(),
        };
        let log = self.work.join("startup.log");
        for _ in 0..10 {
            let t0 = now_ns();
            let out = Command::new(&self.storm)
                .arg("now")
                .output()
                .context("failed to run the storm program")?;
            result.direct_ms.push(first_action_ms(&out.stdout, t0)?);

            let mut cmd = Command::new(&self.buildwatch);
            cmd.args(["ci", "--no-tui", "--"])
                .arg(&self.storm)
                .arg("now");
            let t0 = now_ns();
            let (measured, status) = measure(&mut cmd, &log, false)?;
            if !status.success() {
                bail!("buildwatch failed ({status}):\n{}", tail(&log));
            }
            let text = std::fs::read(&log)?;
            result.watched_ms.push(first_action_ms(&text, t0)?);
            result.whole_ms.push(measured.secs * 1e3);
        }
        Ok(result)
    }
}

/// The time in ms between `t0` and the nanosecond timestamp the storm's `now` printed (the first
/// line of `output` that is a number).
pub(super) fn first_action_ms(output: &[u8], t0: u128) -> Result<f64> {
    let text = String::from_utf8_lossy(output);
    let t1: u128 = text
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .context("the watched program printed no time")?;
    Ok(t1.saturating_sub(t0) as f64 / 1e6)
}
