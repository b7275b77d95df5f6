//! The seam between the run loop and whoever follows a run (the live view, the enforcer, the
//! watchdog): the loop calls these methods and knows nothing else of them, and they know nothing
//! of the loop, so neither imports the other.
use std::{os::fd::OwnedFd, sync::Arc};

use crate::{
    command::{Child, Status, Stream},
    model::Event,
    pipeline::{Pipeline, RunReport},
};

/// Whoever follows a run besides the pipeline: told of its course by the run loop, which knows
/// nothing else of them. Every method has a default that does nothing.
pub trait Observer {
    /// The command's output should come to this observer instead of the terminal (a view that
    /// owns the terminal); the command's stdin is then /dev/null.
    fn takes_output(&self) -> bool {
        false
    }

    /// The command started; `output` holds its stdout and stderr when [`Self::takes_output`]
    /// (empty otherwise). An error stops the run (the command is killed): nobody would read
    /// its output.
    fn started(
        &mut self,
        _child: &Arc<Child>,
        _output: Vec<(OwnedFd, Stream)>,
    ) -> std::io::Result<()> {
        Ok(())
    }

    /// An event went through the pipeline (attributed and checked).
    fn event(&mut self, _event: &Event, _pipeline: &Pipeline) {}

    /// A sensor record could not be decoded. `true` when the observer shows it (then no
    /// warning is printed).
    fn undecodable(&mut self) -> bool {
        false
    }

    /// Every turn of the loop: after each batch of events, and at least every 50 ms.
    fn tick(&mut self, _pipeline: &Pipeline) {}

    /// The events are drained and the pipeline is about to finish.
    fn finishing(&mut self, _pipeline: &Pipeline) {}

    /// The run is over: what it amounted to and the command's status.
    fn finished(&mut self, _report: &RunReport, _status: Option<Status>) {}

    /// Problems the observer met during the run, reported with the outcome.
    fn take_errors(&mut self) -> Vec<String> {
        Vec::new()
    }
}
