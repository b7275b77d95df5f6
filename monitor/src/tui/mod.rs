//! The live view of a watched build (ratatui): crates and what their build scripts and
//! proc-macros did, findings, the event log and the build's own output.
//!
//! Structure:
//!
//! - [`UiEvent`] is the one event type: everything the view learns (attributed events, findings,
//!   the build's output, its end) and everything the user does (keys) arrives as one.
//! - [`App`] holds all state; [`App::update`] applies an event. Key handling lives there too, and
//!   is the only place that does I/O (writing an accepted profile change, after the user saw the
//!   diff and said yes).
//! - [`ui::draw`] renders an `&App`: a pure function of the state, no I/O, no panics on empty data.
//! - [`run`] owns the terminal: a guard (and a panic hook) restore it on every way out; the
//!   signals that end buildwatch end the view first.
//! - [`feed::LiveFeed`] is the view's observer of the run loop ([`crate::observer::Observer`]),
//!   and [`live::run_with_view`] the glue that runs a watch with the view.
//!
//! ```text
//!   watch thread: sensor ─▶ pipeline ─▶ LiveFeed ──UiEvent──▶ run(): App::update ─▶ ui::draw
//!   output readers (cargo's stdout/stderr pipes) ───UiEvent──▶        ▲
//!   terminal input ───────────────────────────────UiEvent (Key)──────┘
//! ```
use std::{collections::BTreeSet, path::PathBuf};

use ratatui::crossterm::event::KeyEvent;

use crate::{
    attribution::{CrateRef, Role},
    command::Status,
    model::Event,
    policy::Finding,
    profile::Vars,
};

mod app;
pub mod attach;
pub mod feed;
pub mod live;
mod log;
mod model;
mod terminal;
pub mod ui;

#[cfg(test)]
mod tests;

pub use app::{App, Pane, Popup, Viewport};
pub use log::{KindFilter, LogFilter};
pub use model::{BuildModel, CrateView, ProcNode};
pub use terminal::run;

/// Everything the view is told, by the run and by the user.
#[derive(Clone, Debug)]
pub enum UiEvent {
    /// The command started (the view takes the terminal only from then on: a run that fails to
    /// start leaves the terminal untouched).
    Started {
        /// The command's pid.
        pid: u32,
    },
    /// An attributed event.
    Event(Box<Event>),
    /// The current merged findings (replaces the previous list).
    Findings(Vec<Finding>),
    /// Every build script that ran and proc-macro that was loaded so far (replaces the previous
    /// list): the crate table lists them even when they did nothing, those without a profile as
    /// `no profile`.
    Seen(Vec<(CrateRef, Role)>),
    /// The profile variables of a crate instance, used when accepting its findings.
    Vars(CrateRef, Box<Vars>),
    /// Digests of program images that became known (image path, digest): the detail pane shows
    /// them beside the programs run.
    Digests(Vec<(String, crate::model::ImageDigest)>),
    /// A line of the build's own output.
    Output(OutputLine),
    /// Records lost outside the event stream (undecodable sensor records). Lost events the
    /// sensor reports arrive as `lost` events.
    Lost(u64),
    /// The run is over: the command exited and the event stream is drained; findings sent
    /// before this are final. None when the command's status could not be had.
    Exited(Option<Status>),
    /// Nothing happened; time passed (redraw the clock).
    Tick,
    /// A key press.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize,
}

pub use crate::command::Stream;

/// A line of the build's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputLine {
    /// Where it was written.
    pub stream: Stream,
    /// The line, without its newline.
    pub text: String,
}

/// What the view needs besides the events.
pub struct TuiContext {
    /// The watched command (shown in the header).
    pub command: Vec<String>,
    /// Where accepted findings are written (`--profiles`).
    pub profiles_dir: PathBuf,
    /// Crates (as [`crate::profile::crate_key`]) that have a profile, the user's or a shipped
    /// one: the others show as `no profile` while the build runs.
    pub profiled: BTreeSet<String>,
    /// Asks the run to stop the build (SIGTERM to its process group, then SIGKILL if it lingers).
    pub stop_build: Box<dyn Fn() + Send>,
    /// The view is attached to a build `buildwatch guard` watches (`buildwatch attach`): it
    /// only watches; quitting, signals and a closed terminal leave the build and the guard
    /// alone, and findings cannot be accepted from it.
    pub attached: bool,
}

/// Why the view ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuitReason {
    /// The user quit after the build ended.
    User,
    /// The user quit while the build was running and asked to stop it.
    StopBuild,
    /// buildwatch got this signal (the watch loop forwards it to the build, and the view asks
    /// for the build to be stopped).
    Signal(i32),
    /// The terminal went away (its window or tmux session closed: the tty hung up). The view
    /// asks for the build to be stopped; nothing more is written to the terminal.
    TerminalGone,
    /// The run ended before the command started (a setup error, reported by the caller).
    NotStarted,
}

/// How the view ended.
#[derive(Debug)]
pub struct TuiOutcome {
    /// Why.
    pub reason: QuitReason,
    /// The build's output captured while the view ran, to print after it (oldest lines may have
    /// been dropped past the cap: see `dropped_output`).
    pub output: Vec<OutputLine>,
    /// Output lines dropped because the capture was full.
    pub dropped_output: u64,
    /// Profiles written by accepting findings.
    pub written: Vec<PathBuf>,
}

impl TuiOutcome {
    /// The user asked to stop the build.
    pub fn stop_requested(&self) -> bool {
        self.reason == QuitReason::StopBuild
    }
}
