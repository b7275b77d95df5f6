//! A watching run with the live view: the watch loop on a thread, the view on the calling one.
//!
//! The build is never left running unwatched: quitting the view while it runs either stops it
//! (SIGTERM to its process group, SIGKILL after a grace period) and goes on draining its events,
//! or does not quit. The build's output captured by the view is printed once the terminal is
//! back, followed by whatever it writes after that; the caller then prints the summary as
//! without the view.
use std::{
    collections::BTreeSet,
    path::Path,
    sync::mpsc::{Receiver, RecvTimeoutError},
    thread,
    time::Duration,
};

use super::{QuitReason, TuiContext, UiEvent, feed, feed::LiveFeed};
use crate::{
    profile::crate_key,
    watch::{self, Outcome, SetupError, WatchOptions},
};

/// Runs `options` with the view; `profiles_dir` is where accepted findings go.
pub fn run_with_view(options: &WatchOptions, profiles_dir: &Path) -> Result<Outcome, SetupError> {
    let (mut live, rx, stop) = LiveFeed::new();
    let profiled: BTreeSet<String> = options
        .profiles
        .iter()
        .map(|p| crate_key(&p.krate))
        .collect();
    let ctx = TuiContext {
        command: options.command.clone(),
        profiles_dir: profiles_dir.to_owned(),
        profiled,
        stop_build: Box::new({
            let stop = stop.clone();
            move || stop.request()
        }),
        attached: false,
    };
    let (result, written) = thread::scope(|scope| {
        let run = thread::Builder::new()
            .name("watch".into())
            .spawn_scoped(scope, move || watch::run(options, &mut [&mut live]));
        let run = match run {
            Ok(run) => run,
            Err(e) => {
                let error = crate::command::SpawnError::Sys(format!("cannot start watching: {e}"));
                return (Err(error.into()), Vec::new());
            }
        };
        let mut written = Vec::new();
        let result = super::run(&rx, ctx);
        // With the terminal gone (a hang-up: reads end, writes fail with EIO), buildwatch's
        // own output would fail too: it goes to /dev/null from here on.
        // Nobody can answer the view any more: the build is not left running for it.
        if super::terminal::hung_up() {
            super::terminal::detach();
            stop.request();
        }
        match result {
            Ok(outcome) => {
                for line in &outcome.output {
                    feed::print_line(line);
                }
                if outcome.dropped_output > 0 {
                    eprintln!(
                        "buildwatch: ({} earlier lines of the build's output were not kept)",
                        outcome.dropped_output
                    );
                }
                match outcome.reason {
                    QuitReason::StopBuild => eprintln!("buildwatch: stopping the build"),
                    QuitReason::Signal(_)
                    | QuitReason::TerminalGone
                    | QuitReason::User
                    | QuitReason::NotStarted => {}
                }
                written = outcome.written;
            }
            Err(e) => {
                eprintln!("buildwatch: the live view failed ({e}); watching on without it");
            }
        }
        drain_output(&rx, || run.is_finished());
        let result = run.join().unwrap_or_else(|_| {
            Err(crate::command::SpawnError::Sys("the watch thread panicked".to_owned()).into())
        });
        drain_output(&rx, || true);
        (result, written)
    });
    if let Ok(outcome) = &result {
        for path in &written {
            watch::give_to_user(path, &outcome.user);
            if let Some(dir) = path.parent() {
                watch::give_to_user(dir, &outcome.user);
            }
            eprintln!(
                "buildwatch: accepted findings written to {}",
                path.display()
            );
        }
    }
    result
}

/// Prints the build's output that arrives after the view closed, until `done`.
fn drain_output(rx: &Receiver<UiEvent>, done: impl Fn() -> bool) {
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(UiEvent::Output(line)) => feed::print_line(&line),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                if done() {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
