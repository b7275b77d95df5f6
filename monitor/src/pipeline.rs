//! One pipeline for every command: decoded events → attribution → sinks.
use std::{
    fs::File,
    io::{self, BufWriter, Write as _},
    path::Path,
};

use crate::{attribution::Attributor, event::Event, summary::Summary};

/// Everything downstream of the sensor (or of a recorded stream in `replay`).
pub struct Pipeline {
    attributor: Attributor,
    summary: Summary,
    events_out: Option<BufWriter<File>>,
}

impl Pipeline {
    /// A pipeline that writes every attributed event as JSON Lines to `events` when given.
    pub fn new(events: Option<&Path>) -> io::Result<Self> {
        let events_out = events.map(File::create).transpose()?.map(BufWriter::new);
        Ok(Self {
            attributor: Attributor::new(),
            summary: Summary::default(),
            events_out,
        })
    }

    /// Processes one event.
    pub fn process(&mut self, mut event: Event) -> io::Result<()> {
        self.attributor.process(&mut event);
        self.summary.record(&event, self.attributor.table());
        if let Some(out) = &mut self.events_out {
            serde_json::to_writer(&mut *out, &event)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes the sinks and returns the summary.
    pub fn finish(mut self) -> io::Result<Summary> {
        if let Some(out) = &mut self.events_out {
            out.flush()?;
        }
        Ok(self.summary)
    }

    /// The attribution state.
    pub fn attributor(&self) -> &Attributor {
        &self.attributor
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}
