//! The watch loop's side of the view: what it sends, and the build-stopping request it honours.
//!
//! [`LiveFeed`] is the view's [`Observer`] of the run loop (`watch::run`); the view only ever
//! sees [`UiEvent`]s. Sending never blocks the loop (the channel is unbounded and the view
//! drains it continuously); once the view is gone, sends fail silently, and the build's output
//! goes straight to buildwatch's own stdout/stderr instead.
use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader, Write as _},
    os::fd::OwnedFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{Receiver, Sender, channel},
    },
    thread,
    time::{Duration, Instant},
};

use super::{OutputLine, Stream, UiEvent};
use crate::{
    attribution::{CrateRef, Role},
    command::{Child, Status},
    learn,
    model::Event,
    observer::Observer,
    pipeline::{Pipeline, RunReport},
    profile::Vars,
};

/// How often findings and crate variables are re-sent while events flow.
const SYNC_EVERY: Duration = Duration::from_millis(250);
/// After SIGTERM, how long the build has to end before its process group gets SIGKILL.
const KILL_AFTER: Duration = Duration::from_secs(5);

/// A request to stop the build, shared by the view (which sets it) and the watch loop.
#[derive(Clone, Debug, Default)]
pub struct StopRequest(Arc<AtomicBool>);

impl StopRequest {
    /// Asks for the build to be stopped.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether it was asked.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What the watch loop sends the view.
pub struct LiveFeed {
    tx: Sender<UiEvent>,
    stop: StopRequest,
    child: Option<Arc<Child>>,
    terminated_at: Option<Instant>,
    killed: bool,
    last_sync: Option<Instant>,
    /// (number of findings, total occurrences) last sent: the list changed when this did.
    findings_sent: (usize, u64),
    /// How many crates the view was told ran code ([`UiEvent::Seen`]).
    seen_sent: usize,
    digests_sent: usize,
    vars_sent: HashMap<CrateRef, Vars>,
}

impl LiveFeed {
    /// A feed, the receiver the view reads, and the stop request the view may set.
    pub fn new() -> (Self, Receiver<UiEvent>, StopRequest) {
        let (tx, rx) = channel();
        let stop = StopRequest::default();
        let feed = Self {
            tx,
            stop: stop.clone(),
            child: None,
            terminated_at: None,
            killed: false,
            last_sync: None,
            findings_sent: (0, 0),
            seen_sent: 0,
            digests_sent: 0,
            vars_sent: HashMap::new(),
        };
        (feed, rx, stop)
    }

    fn send(&self, event: UiEvent) {
        // The view may have closed already: the run goes on without it.
        let _ = self.tx.send(event);
    }

    /// Sends the variables of crates whose findings may be accepted, when they changed.
    fn sync_vars(&mut self, pipeline: &Pipeline) {
        let attributor = pipeline.attributor();
        let crates: Vec<CrateRef> = pipeline
            .findings()
            .into_iter()
            .filter(|f| matches!(f.role, Some(Role::BuildScript | Role::ProcMacro)))
            .filter_map(|f| f.krate.clone())
            .collect();
        for krate in crates {
            let vars = learn::crate_vars(attributor, &krate);
            if self.vars_sent.get(&krate) != Some(&vars) {
                self.vars_sent.insert(krate.clone(), vars.clone());
                self.send(UiEvent::Vars(krate, Box::new(vars)));
            }
        }
    }

    /// SIGTERM to the build's process group once asked; SIGKILL if it is still there later.
    fn honour_stop(&mut self) {
        if !self.stop.requested() {
            return;
        }
        let Some(child) = &self.child else { return };
        match self.terminated_at {
            None => {
                child.signal_group(libc::SIGTERM);
                self.terminated_at = Some(Instant::now());
            }
            Some(at) if !self.killed && at.elapsed() >= KILL_AFTER => {
                child.signal_group(libc::SIGKILL);
                self.killed = true;
            }
            Some(_) => {}
        }
    }

    /// Reads the command's output from `fd` line by line into the view (or, once the view is
    /// gone, to buildwatch's own `stream`). The thread ends at end of file.
    fn forward_output(&self, fd: OwnedFd, stream: Stream) -> std::io::Result<()> {
        let tx = self.tx.clone();
        thread::Builder::new()
            .name(format!("{stream:?}").to_lowercase())
            .spawn(move || {
                let mut reader = BufReader::new(std::fs::File::from(fd));
                let mut buf = Vec::new();
                let mut to_view = true;
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if to_view {
                        let text = clean(&buf);
                        let line = OutputLine { stream, text };
                        if let Err(unsent) = tx.send(UiEvent::Output(line)) {
                            to_view = false;
                            if let UiEvent::Output(line) = unsent.0 {
                                print_line(&line);
                            }
                        }
                    } else {
                        write_raw(stream, &buf);
                    }
                }
            })?;
        Ok(())
    }
}

/// The view follows the run loop: the command's output, its events, the findings and crate
/// variables as they change, the end of the run; every turn honours a stop request.
impl Observer for LiveFeed {
    fn takes_output(&self) -> bool {
        true
    }

    fn started(
        &mut self,
        child: &Arc<Child>,
        output: Vec<(OwnedFd, Stream)>,
    ) -> std::io::Result<()> {
        self.send(UiEvent::Started { pid: child.pid });
        self.child = Some(child.clone());
        for (fd, stream) in output {
            self.forward_output(fd, stream)?;
        }
        Ok(())
    }

    fn event(&mut self, event: &Event, pipeline: &Pipeline) {
        self.send(UiEvent::Event(Box::new(event.clone())));
        self.tick(pipeline);
    }

    fn undecodable(&mut self) -> bool {
        self.send(UiEvent::Lost(1));
        true
    }

    /// New findings and crate variables to the view (at most every [`SYNC_EVERY`]), and the
    /// stop request.
    fn tick(&mut self, pipeline: &Pipeline) {
        self.honour_stop();
        if self.last_sync.is_some_and(|t| t.elapsed() < SYNC_EVERY) {
            return;
        }
        self.last_sync = Some(Instant::now());
        let findings = pipeline.findings();
        let signature = (findings.len(), findings.iter().map(|f| f.count).sum());
        if signature != self.findings_sent {
            self.findings_sent = signature;
            self.send(UiEvent::Findings(findings.into_iter().cloned().collect()));
        }
        let seen = pipeline.attributor().seen();
        if seen.len() != self.seen_sent {
            self.seen_sent = seen.len();
            self.send(UiEvent::Seen(seen.iter().cloned().collect()));
        }
        let digests = pipeline.digests_since(self.digests_sent);
        if !digests.is_empty() {
            self.digests_sent += digests.len();
            self.send(UiEvent::Digests(digests.to_vec()));
        }
        self.sync_vars(pipeline);
    }

    /// Sends what changed now, however recent the last sync.
    fn finishing(&mut self, pipeline: &Pipeline) {
        self.last_sync = None;
        self.tick(pipeline);
    }

    /// The final findings, then the command's status.
    fn finished(&mut self, report: &RunReport, status: Option<Status>) {
        self.send(UiEvent::Seen(report.seen.iter().cloned().collect()));
        self.send(UiEvent::Findings(report.findings.clone()));
        let digests = report
            .images
            .iter()
            .filter_map(|i| Some((i.path.clone(), i.digest.clone()?)))
            .collect();
        self.send(UiEvent::Digests(digests));
        self.send(UiEvent::Exited(status));
    }
}

/// A line as the view shows it: valid UTF-8, no line end, tabs expanded, colour sequences
/// (`ESC [ ... m`, which cargo and compilers print) dropped, and every other control character or
/// escape sequence shown as an escape (`\e[2K`, `\u{202e}`): a build script's `cargo:warning`
/// must not move the cursor, erase lines or reorder text on the screen.
pub fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r']);
    // A carriage return redraws the line (progress bars): keep what was drawn last.
    let text = text
        .rsplit('\r')
        .next()
        .unwrap_or(text)
        .replace('\t', "    ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('\u{1b}') {
        out.push_str(&crate::model::shown(&rest[..at]));
        rest = &rest[at..];
        let sgr = rest
            .strip_prefix("\u{1b}[")
            .map(|p| p.find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':')))
            .and_then(|end| end.filter(|&e| rest.as_bytes().get(e + 2) == Some(&b'm')));
        match sgr {
            Some(end) => rest = &rest[end + 3..],
            None => {
                out.push_str("\\e");
                rest = &rest[1..];
            }
        }
    }
    out.push_str(&crate::model::shown(rest));
    out
}

/// Writes a captured line where it would have gone without the view.
pub fn print_line(line: &OutputLine) {
    let mut bytes = line.text.clone().into_bytes();
    bytes.push(b'\n');
    write_raw(line.stream, &bytes);
}

fn write_raw(stream: Stream, bytes: &[u8]) {
    let _ = match stream {
        Stream::Stdout => std::io::stdout().lock().write_all(bytes),
        Stream::Stderr => std::io::stderr().lock().write_all(bytes),
    };
}
