//! `buildwatch attach [PID]`: the live view of a build `buildwatch guard` is watching. The guard
//! streams the build's attributed events and findings on its socket (see
//! [`crate::guard::attach`]); they become the view's [`UiEvent`]s, so the view is the one
//! `buildwatch -- cargo build` shows, from the moment of attaching (with the findings so far).
//! The view only watches: quitting, a signal or a closed terminal end the view, never the build
//! or the guard. Without a terminal, the findings are printed as they come.
use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader, IsTerminal as _},
    os::unix::net::UnixStream,
    path::Path,
    sync::{
        Arc, Mutex,
        mpsc::{Sender, channel},
    },
    thread,
};

use super::{OutputLine, QuitReason, Stream, TuiContext, UiEvent, terminal};
use crate::{
    command::Status,
    guard::{
        attach::{BuildFacts, Message, Request},
        status,
    },
    model::{Exit, Shown},
    policy::{Code, Finding, Severity},
};

/// Exit status when the view could not attach.
const EXIT_SETUP: i32 = 2;

/// What the view learned by the time it closed.
#[derive(Default)]
struct Learned {
    findings: Vec<Finding>,
    /// The build's end: (how its root exited, whether the guard stopped first).
    ended: Option<(Option<Exit>, bool)>,
    /// The guard closed the stream without saying the build ended.
    cut: bool,
}

/// Attaches to the guard on `socket` for the build with process `pid` (or the caller's only
/// build); returns the exit status (0, or 2 when refused or no guard answers).
pub fn run(socket: &Path, pid: Option<u32>) -> i32 {
    let stream = match status::connect(socket, &Request::Attach { pid }) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("buildwatch: error: {e}");
            return EXIT_SETUP;
        }
    };
    let mut reader = BufReader::new(stream);
    let facts = match next(&mut reader) {
        Some(Ok(Message::Attached(facts))) => facts,
        Some(Ok(Message::Error(e))) => {
            eprintln!("buildwatch: error: {e}");
            return EXIT_SETUP;
        }
        Some(Ok(other)) => {
            eprintln!("buildwatch: error: the guard answered out of turn ({other:?})");
            return EXIT_SETUP;
        }
        Some(Err(e)) => {
            eprintln!("buildwatch: error: the guard's answer is not understood ({e})");
            return EXIT_SETUP;
        }
        None => {
            eprintln!(
                "buildwatch: error: the guard on {} closed the connection without answering",
                socket.display()
            );
            return EXIT_SETUP;
        }
    };
    let learned = Arc::new(Mutex::new(Learned::default()));
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return plain(&facts, reader, &learned);
    }
    view(facts, reader, learned)
}

/// The live view, until the user quits (or a signal, or the terminal goes).
fn view(facts: BuildFacts, reader: BufReader<UnixStream>, learned: Arc<Mutex<Learned>>) -> i32 {
    let (tx, rx) = channel();
    let note = |text: String| {
        UiEvent::Output(OutputLine {
            stream: Stream::Stderr,
            text,
        })
    };
    let _ = tx.send(note(format!(
        "buildwatch: attached to build {} ({}), watched by buildwatch guard; its own output \
         goes where its user sees it, not here",
        facts.root,
        Shown(&status::shorten(&facts.command.join(" ")))
    )));
    let _ = tx.send(UiEvent::Started { pid: facts.root });
    let ctx = TuiContext {
        command: facts.command.clone(),
        profiles_dir: facts
            .workspace
            .as_deref()
            .unwrap_or(Path::new("."))
            .join(".buildwatch/profiles"),
        profiled: facts.profiled.iter().cloned().collect::<BTreeSet<String>>(),
        // Nothing here may touch the build.
        stop_build: Box::new(|| {}),
        attached: true,
    };
    let follower = {
        let learned = learned.clone();
        thread::Builder::new()
            .name("attach".into())
            .spawn(move || follow(reader, &learned, &tx))
    };
    if let Err(e) = follower {
        eprintln!("buildwatch: error: cannot read the guard's stream: {e}");
        return EXIT_SETUP;
    }
    let result = super::run(&rx, ctx);
    if terminal::hung_up() {
        terminal::detach();
        return 0;
    }
    match result {
        Ok(outcome) => {
            if let QuitReason::Signal(sig) = outcome.reason {
                eprintln!("buildwatch: detached (signal {sig})");
            }
        }
        Err(e) => {
            eprintln!("buildwatch: error: the live view failed: {e}");
            return EXIT_SETUP;
        }
    }
    summary(&facts, &learned);
    0
}

/// Without a terminal: each finding once, as it comes, then how the build ended.
fn plain(facts: &BuildFacts, reader: BufReader<UnixStream>, learned: &Mutex<Learned>) -> i32 {
    eprintln!(
        "buildwatch: attached to build {} ({})",
        facts.root,
        Shown(&status::shorten(&facts.command.join(" ")))
    );
    let (tx, rx) = channel();
    let printer = thread::spawn(move || {
        let mut shown = BTreeSet::new();
        for event in rx {
            if let UiEvent::Findings(findings) = event {
                for f in findings.iter().filter(|f| shown_finding(f)) {
                    let line = format!("  {} {}", tag(f), f.headline());
                    if shown.insert(line.clone()) {
                        println!("{line}");
                    }
                }
            }
        }
    });
    follow(reader, learned, &tx);
    drop(tx);
    let _ = printer.join();
    summary(facts, learned);
    0
}

/// Reads the guard's stream into the view until it ends; keeps what the summary needs.
fn follow(mut reader: BufReader<UnixStream>, learned: &Mutex<Learned>, tx: &Sender<UiEvent>) {
    let keep = |f: &mut dyn FnMut(&mut Learned)| {
        if let Ok(mut l) = learned.lock() {
            f(&mut l);
        }
    };
    loop {
        let event = match next(&mut reader) {
            None => {
                keep(&mut |l| l.cut = l.ended.is_none());
                let _ = tx.send(UiEvent::Output(OutputLine {
                    stream: Stream::Stderr,
                    text: "buildwatch: the guard closed the stream (it stopped?): this view \
                           shows no more of the build"
                        .to_owned(),
                }));
                let _ = tx.send(UiEvent::Exited(None));
                return;
            }
            Some(Err(_)) => UiEvent::Lost(1),
            Some(Ok(message)) => match message {
                Message::Event(e) => UiEvent::Event(e),
                Message::Findings(findings) => {
                    keep(&mut |l| l.findings.clone_from(&findings));
                    UiEvent::Findings(findings)
                }
                Message::Seen(seen) => UiEvent::Seen(seen),
                Message::Lost(n) => UiEvent::Lost(n),
                Message::Ended { exit, unfinished } => {
                    keep(&mut |l| l.ended = Some((exit.clone(), unfinished)));
                    if unfinished {
                        let _ = tx.send(UiEvent::Output(OutputLine {
                            stream: Stream::Stderr,
                            text: "buildwatch: the guard stopped before the build ended".to_owned(),
                        }));
                    }
                    let status = exit.and_then(|e| match (e.code, e.signal) {
                        (Some(code), _) => Some(Status::Exited(code)),
                        (None, Some(sig)) => Some(Status::Signaled(sig)),
                        (None, None) => None,
                    });
                    let _ = tx.send(UiEvent::Exited(status));
                    return;
                }
                // Only ever the first line.
                Message::Attached(_) | Message::Error(_) => UiEvent::Lost(1),
            },
        };
        if tx.send(event).is_err() {
            // The view closed.
            return;
        }
    }
}

/// The next message; None at the end of the stream.
fn next(reader: &mut BufReader<UnixStream>) -> Option<Result<Message, String>> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => None,
        Ok(_) => Some(serde_json::from_str(&line).map_err(|e| e.to_string())),
        Err(e) => Some(Err(e.to_string())),
    }
}

/// After the view: how the build stood, and its findings once it ended.
fn summary(facts: &BuildFacts, learned: &Mutex<Learned>) {
    let Ok(l) = learned.lock() else { return };
    match &l.ended {
        None if l.cut => eprintln!(
            "buildwatch: the guard stopped streaming build {} before it ended",
            facts.root
        ),
        None => eprintln!(
            "buildwatch: detached from build {}; the guard goes on watching it",
            facts.root
        ),
        Some((_, unfinished)) => {
            let how = if *unfinished {
                "was still running when the guard stopped"
            } else {
                "ended"
            };
            let shown: Vec<&Finding> = l.findings.iter().filter(|f| shown_finding(f)).collect();
            println!("build {} {how}; findings: {}", facts.root, shown.len());
            for f in shown {
                println!("  {} {}", tag(f), f.headline());
            }
        }
    }
}

/// As the text summary tags a finding.
fn tag(f: &Finding) -> &'static str {
    match f.severity {
        Severity::Error => "ERROR",
        Severity::Warning => "warn ",
    }
}

/// Findings the summaries list (an allow entry that matched nothing is the profile's affair).
fn shown_finding(f: &Finding) -> bool {
    f.code != Code::UnusedAllow
}
