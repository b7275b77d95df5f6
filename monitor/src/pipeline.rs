//! One pipeline for every command: decoded events → attribution → sinks.
use std::{
    fs::File,
    io::{self, BufWriter, Write as _},
    path::Path,
};

use crate::{
    activity::ActivityLog,
    attribution::{Attributor, BuildContext},
    event::Event,
    summary::Summary,
};

/// Everything downstream of the sensor (or of a recorded stream in `replay`).
pub struct Pipeline {
    attributor: Attributor,
    summary: Summary,
    activity: ActivityLog,
    events_out: Option<BufWriter<File>>,
}

/// What a run leaves behind once its pipeline is finished.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Counts per kind and per program.
    pub summary: Summary,
    /// Per crate and role activity.
    pub activity: ActivityLog,
}

impl RunReport {
    /// The text summary (per-crate table, then totals).
    pub fn render(&self) -> String {
        format!("{}{}", self.activity.render(), self.summary.render(8))
    }
}

impl Pipeline {
    /// A pipeline that writes every attributed event as JSON Lines to `events` when given.
    pub fn new(events: Option<&Path>) -> io::Result<Self> {
        let events_out = events.map(File::create).transpose()?.map(BufWriter::new);
        Ok(Self {
            attributor: Attributor::new(),
            summary: Summary::default(),
            activity: ActivityLog::default(),
            events_out,
        })
    }

    /// Supplies workspace facts (they may arrive while events are flowing).
    pub fn set_context(&mut self, context: BuildContext) {
        self.attributor.set_context(context);
    }

    /// Processes one event.
    pub fn process(&mut self, mut event: Event) -> io::Result<()> {
        self.attributor.process(&mut event);
        self.summary.record(&event, self.attributor.table());
        self.activity.record(&event, &self.attributor);
        if let Some(out) = &mut self.events_out {
            serde_json::to_writer(&mut *out, &event)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes the sinks and returns what the run amounted to.
    pub fn finish(mut self) -> io::Result<RunReport> {
        if let Some(out) = &mut self.events_out {
            out.flush()?;
        }
        Ok(RunReport {
            summary: self.summary,
            activity: self.activity,
        })
    }

    /// The attribution state.
    pub fn attributor(&self) -> &Attributor {
        &self.attributor
    }
}
