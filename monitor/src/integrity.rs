//! The run loop's check that the sensor is still whole (see [`crate::sensor::Integrity`]): about
//! once a second, and once more at the end, it asks the kernel whether buildwatch's cgroup
//! programs are still attached. A program gone mid-run makes the run incomplete (`ci` exits 4)
//! and is named in the report's coverage gaps.
use std::time::{Duration, Instant};

use crate::{observer::Observer, pipeline::Pipeline, sensor::Integrity};

/// How often the kernel is asked (two bpf(2) calls per program: cheap, but not at every batch).
const EVERY: Duration = Duration::from_secs(1);

/// Watches over the sensor's attachments during a run.
pub struct IntegrityWatch {
    integrity: Integrity,
    last: Instant,
    /// What was found missing (kept for the report once the run loop has taken the errors).
    lost: Vec<String>,
    taken: bool,
}

impl IntegrityWatch {
    /// Starts watching; the first check comes a second from now.
    pub fn new(integrity: Integrity) -> Self {
        Self {
            integrity,
            last: Instant::now(),
            lost: Vec::new(),
            taken: false,
        }
    }

    /// What went missing during the run.
    pub fn lost(&self) -> &[String] {
        &self.lost
    }

    fn check(&mut self) {
        self.last = Instant::now();
        for problem in self.integrity.check() {
            if !self.lost.contains(&problem) {
                eprintln!("buildwatch: error: {problem}. Monitoring is incomplete");
                self.lost.push(problem);
            }
        }
    }
}

impl Observer for IntegrityWatch {
    fn tick(&mut self, _pipeline: &Pipeline) {
        if self.last.elapsed() >= EVERY {
            self.check();
        }
    }

    /// The last check, at the end of the run: a detach in its last second counts too.
    fn take_errors(&mut self) -> Vec<String> {
        if !self.taken {
            self.check();
            self.taken = true;
        }
        self.lost
            .iter()
            .map(|p| format!("{p}. Monitoring is incomplete"))
            .collect()
    }
}
