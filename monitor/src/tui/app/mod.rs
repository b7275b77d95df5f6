//! The view's state and what keys do to it.
use std::{
    cell::Cell,
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    path::PathBuf,
    time::Duration,
};

use super::{
    OutputLine, QuitReason, TuiContext, UiEvent,
    log::{EventLog, LogEntry, LogFilter},
    model::{BuildModel, CrateKey, CrateView},
};
use crate::{
    attribution::{CrateRef, Role},
    command::Status,
    learn::{self, ProfileChange},
    policy::{Code, Finding, Severity},
    profile::{Vars, crate_key},
};

mod keys;

/// Output lines kept for the pane and for printing after the view closes.
pub const OUTPUT_CAPACITY: usize = 100_000;

/// The panes, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    /// The crate table.
    Crates,
    /// The selected crate's details.
    Detail,
    /// Every finding.
    Findings,
    /// The event log.
    Log,
    /// The build's own output.
    Output,
}

impl Pane {
    /// Tab order.
    pub const ALL: [Pane; 5] = [
        Pane::Crates,
        Pane::Detail,
        Pane::Findings,
        Pane::Log,
        Pane::Output,
    ];

    /// The pane's title.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Crates => "Crates",
            Pane::Detail => "Detail",
            Pane::Findings => "Findings",
            Pane::Log => "Events",
            Pane::Output => "Build output",
        }
    }

    pub(crate) fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// What the last frame showed, recorded by the renderer as it draws: the rows of content of each
/// pane (0: not shown) and the length of the detail pane. Paging and scroll bounds use it, so
/// that the state needs nothing of the layout or of the renderer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Viewport {
    pub rows: [u16; Pane::ALL.len()],
    pub detail_lines: usize,
}

/// Identifies a finding across updates of the list (the policy merges on this).
pub type FindingKey = (Code, Option<CrateRef>, Option<Role>, String);

/// The key of a finding.
pub fn finding_key(f: &Finding) -> FindingKey {
    (f.code, f.krate.clone(), f.role, f.subject.clone())
}

/// A dialog over the panes; it takes the keys while open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Popup {
    /// The keys.
    Help,
    /// Event log filter toggles.
    Filter,
    /// Typing the log's search text (the previous text, restored on Esc).
    Search {
        /// The text before editing.
        previous: String,
    },
    /// The change accepting a finding would make, waiting for y/n.
    Accept {
        /// The finding.
        finding: FindingKey,
        /// The change.
        change: ProfileChange,
        /// Its diff, as shown.
        diff: String,
        /// First diff line shown.
        scroll: usize,
    },
    /// The build is running: stop it and quit?
    ConfirmQuit,
    /// A finding in full.
    Finding(FindingKey),
    /// A message (errors of accepting, mostly).
    Message {
        /// Title.
        title: String,
        /// Text.
        text: String,
    },
}

/// How a crate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrateStatus {
    /// A finding that is an error.
    Error,
    /// A finding that is a warning.
    Warning,
    /// No profile, nothing else to report.
    NoProfile,
    /// Its findings were all accepted into its profile.
    Accepted,
    /// Within its profile.
    Ok,
}

impl CrateStatus {
    /// As shown in the table.
    pub fn label(self) -> &'static str {
        match self {
            CrateStatus::Error | CrateStatus::Warning => "finding",
            CrateStatus::NoProfile => "no profile",
            CrateStatus::Accepted => "accepted",
            CrateStatus::Ok => "ok",
        }
    }
}

/// One row of the crate table.
#[derive(Debug)]
pub struct CrateRow<'a> {
    /// The crate and role.
    pub key: CrateKey,
    /// What it did (None: only known from findings).
    pub view: Option<&'a CrateView>,
    /// How it stands.
    pub status: CrateStatus,
    /// Findings not accepted (no-profile findings left out).
    pub pending: usize,
}

/// Lines of captured output.
#[derive(Clone, Debug, Default)]
pub struct OutputLog {
    /// The lines.
    pub lines: VecDeque<OutputLine>,
    /// Lines dropped to stay within [`OUTPUT_CAPACITY`].
    pub dropped: u64,
}

/// The whole state of the view.
pub struct App {
    pub(super) command: Vec<String>,
    profiles_dir: PathBuf,
    profiled: BTreeSet<String>,
    pub(super) model: BuildModel,
    findings: Vec<Finding>,
    /// Every build script that ran and proc-macro that was loaded.
    seen: BTreeSet<CrateKey>,
    accepted: BTreeMap<FindingKey, PathBuf>,
    vars: HashMap<CrateRef, Vars>,
    /// The digests of program images, by path (the latest known).
    pub(super) digests: HashMap<String, crate::model::ImageDigest>,
    pub(super) log: EventLog,
    pub(super) output: OutputLog,
    pub(super) pid: Option<u32>,
    clock: Duration,
    pub(super) ended: Option<(Option<Status>, Duration)>,
    pub(super) undecodable: u64,
    rate_samples: VecDeque<(Duration, u64)>,
    /// What the renderer drew last (it writes here; the state only reads).
    pub viewport: Cell<Viewport>,
    pub(super) focus: Pane,
    pub(super) bottom: Pane,
    /// The crate the user selected; None: the top row.
    selected_crate: Option<CrateKey>,
    /// The finding the user selected; None: the first one.
    selected_finding: Option<FindingKey>,
    pub(super) detail_scroll: usize,
    pub(super) log_back: usize,
    pub(super) output_back: usize,
    pub(super) filter: LogFilter,
    pub(super) popup: Option<Popup>,
    pub(super) status: Option<String>,
    quit: Option<QuitReason>,
    stop_pending: bool,
    written: Vec<PathBuf>,
    /// Attached to a build the guard watches (`buildwatch attach`): quitting leaves it alone,
    /// and findings are not accepted from here.
    pub(super) attached: bool,
}

impl App {
    /// A view of `command`, accepting findings into `profiles_dir`; `profiled` are the crates
    /// (as [`crate_key`]) that have a profile.
    pub fn new(command: Vec<String>, profiles_dir: PathBuf, profiled: BTreeSet<String>) -> Self {
        Self {
            command,
            profiles_dir,
            profiled,
            model: BuildModel::default(),
            findings: Vec::new(),
            seen: BTreeSet::new(),
            accepted: BTreeMap::new(),
            vars: HashMap::new(),
            digests: HashMap::new(),
            log: EventLog::default(),
            output: OutputLog::default(),
            pid: None,
            clock: Duration::ZERO,
            ended: None,
            undecodable: 0,
            rate_samples: VecDeque::new(),
            viewport: Cell::default(),
            focus: Pane::Crates,
            bottom: Pane::Detail,
            selected_crate: None,
            selected_finding: None,
            detail_scroll: 0,
            log_back: 0,
            output_back: 0,
            filter: LogFilter::default(),
            popup: None,
            status: None,
            quit: None,
            stop_pending: false,
            written: Vec::new(),
            attached: false,
        }
    }

    /// A view for the run described by `ctx` (its `stop_build` stays with the runner).
    pub fn from_context(ctx: &TuiContext) -> Self {
        let mut app = Self::new(
            ctx.command.clone(),
            ctx.profiles_dir.clone(),
            ctx.profiled.clone(),
        );
        app.attached = ctx.attached;
        app
    }

    /// Whether this view is attached to a guarded build (see [`TuiContext::attached`]).
    pub fn attached(&self) -> bool {
        self.attached
    }

    /// Applies one event.
    pub fn update(&mut self, event: UiEvent) {
        match event {
            UiEvent::Started { pid } => self.pid = Some(pid),
            UiEvent::Event(event) => {
                self.model.record(&event);
                let entry = LogEntry::from_event(&event);
                if self.log_back > 0 {
                    let selected = if self.filter.selected_only {
                        self.selected_crate()
                    } else {
                        None
                    };
                    if self.filter.matches(&entry, selected.as_ref()) {
                        // Keep a paused view still.
                        self.log_back += 1;
                    }
                }
                self.log.push(entry);
            }
            UiEvent::Findings(findings) => {
                self.findings = findings
                    .into_iter()
                    .filter(|f| f.code != Code::UnusedAllow)
                    .collect();
            }
            UiEvent::Seen(seen) => self.seen = seen.into_iter().collect(),
            UiEvent::Vars(krate, vars) => {
                self.vars.insert(krate, *vars);
            }
            UiEvent::Digests(digests) => self.digests.extend(digests),
            UiEvent::Output(line) => {
                if self.output.lines.len() == OUTPUT_CAPACITY {
                    self.output.lines.pop_front();
                    self.output.dropped += 1;
                }
                self.output.lines.push_back(line);
                if self.output_back > 0 {
                    self.output_back += 1;
                }
            }
            UiEvent::Lost(n) => self.undecodable += n,
            UiEvent::Exited(status) => {
                if self.ended.is_none() {
                    self.ended = Some((status, self.clock));
                }
                if self.popup == Some(Popup::ConfirmQuit) {
                    self.popup = None;
                    self.status = Some("the build ended; q quits".to_owned());
                }
            }
            UiEvent::Tick | UiEvent::Resize => {}
            UiEvent::Key(key) => self.key(key),
        }
    }

    /// Sets the time since the run started.
    pub fn set_clock(&mut self, clock: Duration) {
        self.clock = clock;
        let stale = self
            .rate_samples
            .back()
            .is_none_or(|(t, _)| clock.saturating_sub(*t) >= Duration::from_millis(500));
        if stale {
            self.rate_samples.push_back((clock, self.model.events));
        }
        while self
            .rate_samples
            .front()
            .is_some_and(|(t, _)| clock.saturating_sub(*t) > Duration::from_secs(3))
        {
            self.rate_samples.pop_front();
        }
    }

    /// Rows of content `pane` showed in the last frame (10 before the first frame, or when it
    /// is not shown).
    pub(super) fn pane_height(&self, pane: Pane) -> usize {
        let rows = self.viewport.get().rows[pane.index()];
        if rows == 0 { 10 } else { rows as usize }
    }

    /// Time since the run started (frozen when it ended).
    pub fn elapsed(&self) -> Duration {
        self.ended.map(|(_, at)| at).unwrap_or(self.clock)
    }

    /// Events per second over the last seconds (over the whole run once it ended).
    pub fn events_per_sec(&self) -> u64 {
        if self.ended.is_some() {
            let secs = self.elapsed().as_secs_f64();
            return if secs > 0.0 {
                (self.model.events as f64 / secs) as u64
            } else {
                0
            };
        }
        match self.rate_samples.front() {
            Some((t, n)) if self.clock > *t => {
                let dt = (self.clock - *t).as_secs_f64();
                ((self.model.events - n) as f64 / dt) as u64
            }
            _ => 0,
        }
    }

    /// Records lost, from the sensor and undecodable.
    pub fn lost(&self) -> u64 {
        self.model.lost + self.undecodable
    }

    /// Why the view should close, once it should.
    pub fn quit_reason(&self) -> Option<QuitReason> {
        self.quit
    }

    /// Closes the view now (a signal, or the run ending before it started).
    pub fn quit_now(&mut self, reason: QuitReason) {
        self.quit = Some(reason);
    }

    /// Whether the user asked to stop the build since the last call.
    pub fn take_stop_request(&mut self) -> bool {
        std::mem::take(&mut self.stop_pending)
    }

    /// The build is still running.
    pub fn running(&self) -> bool {
        self.ended.is_none()
    }

    /// The findings shown (unused-allow left out).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Where a finding was accepted into.
    pub fn accepted(&self, f: &Finding) -> Option<&PathBuf> {
        self.accepted.get(&finding_key(f))
    }

    /// The profile variables known for a crate instance.
    pub fn vars_of(&self, krate: &CrateRef) -> Option<&Vars> {
        self.vars.get(krate)
    }

    /// Profiles written by accepting findings.
    pub fn written(&self) -> &[PathBuf] {
        &self.written
    }

    /// Output captured, oldest first.
    pub fn take_output(&mut self) -> (Vec<OutputLine>, u64) {
        (
            std::mem::take(&mut self.output.lines).into(),
            self.output.dropped,
        )
    }

    /// Crate table rows, findings first.
    pub fn crate_rows(&self) -> Vec<CrateRow<'_>> {
        let mut keys: BTreeSet<CrateKey> = self.model.crates.keys().cloned().collect();
        keys.extend(self.seen.iter().cloned());
        for f in &self.findings {
            if let (Some(k), Some(r @ (Role::BuildScript | Role::ProcMacro))) = (&f.krate, f.role) {
                keys.insert((k.clone(), r));
            }
        }
        let mut rows: Vec<CrateRow<'_>> = keys
            .into_iter()
            .map(|key| {
                let (status, pending) = self.crate_status(&key);
                CrateRow {
                    view: self.model.crates.get(&key),
                    key,
                    status,
                    pending,
                }
            })
            .collect();
        rows.sort_by(|a, b| (a.status, &a.key).cmp(&(b.status, &b.key)));
        rows
    }

    /// The findings of one crate and role.
    pub fn crate_findings(&self, key: &CrateKey) -> impl Iterator<Item = &Finding> + '_ {
        let key = key.clone();
        self.findings
            .iter()
            .filter(move |f| f.krate.as_ref() == Some(&key.0) && f.role == Some(key.1))
    }

    fn crate_status(&self, key: &CrateKey) -> (CrateStatus, usize) {
        let mut pending = 0;
        let mut worst = None;
        let mut accepted = false;
        let no_profile = !self.profiled.contains(&crate_key(&key.0.name));
        for f in self.crate_findings(key) {
            if self.accepted.contains_key(&finding_key(f)) {
                accepted = true;
                continue;
            }
            pending += 1;
            worst = Some(worst.map_or(f.severity, |w: Severity| w.min(f.severity)));
        }
        let status = match worst {
            Some(Severity::Error) => CrateStatus::Error,
            Some(Severity::Warning) => CrateStatus::Warning,
            None if no_profile && !accepted => CrateStatus::NoProfile,
            None if accepted => CrateStatus::Accepted,
            None => CrateStatus::Ok,
        };
        (status, pending)
    }

    /// The crate selected in the table: the user's choice, else the top row (which changes
    /// as findings arrive).
    pub fn selected_crate(&self) -> Option<CrateKey> {
        match &self.selected_crate {
            Some(key) => Some(key.clone()),
            None => self.crate_rows().first().map(|r| r.key.clone()),
        }
    }

    /// Its row index among `rows` ([`App::crate_rows`]).
    pub fn selected_crate_index(&self, rows: &[CrateRow<'_>]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        match &self.selected_crate {
            Some(key) => rows.iter().position(|r| &r.key == key),
            None => Some(0),
        }
    }

    /// The finding selected in the findings pane: the user's choice, else the first.
    pub fn selected_finding_index(&self) -> Option<usize> {
        if self.findings.is_empty() {
            return None;
        }
        match &self.selected_finding {
            Some(key) => self
                .findings
                .iter()
                .position(|f| &finding_key(f) == key)
                .or(Some(0)),
            None => Some(0),
        }
    }

    /// The finding `a` acts on: the findings pane's selection there, else the selected crate's
    /// first finding not yet accepted.
    pub fn current_finding(&self) -> Option<&Finding> {
        match self.focus {
            Pane::Crates | Pane::Detail => {
                let key = self.selected_crate()?;
                let mut fs = self.crate_findings(&key);
                let first = self.crate_findings(&key).next();
                fs.find(|f| !self.accepted.contains_key(&finding_key(f)))
                    .or(first)
            }
            _ => self.selected_finding_index().map(|i| &self.findings[i]),
        }
    }

    /// A finding by key.
    pub fn finding(&self, key: &FindingKey) -> Option<&Finding> {
        self.findings.iter().find(|f| &finding_key(f) == key)
    }

    /// Selects the crate `key` (tests, and jumping from a finding).
    pub fn select_crate(&mut self, key: CrateKey) {
        self.selected_crate = Some(key);
        self.detail_scroll = 0;
    }
}
