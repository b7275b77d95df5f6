//! The view on a real recorded run: `tests/fixtures/streams/hostile.jsonl.gz` (the hostile
//! fixture workspace built under the real sensor; see the README next to it) goes through the
//! real pipeline, and the attributed events and findings feed an [`App`] exactly as the watch
//! loop does. Screens are checked as `TestBackend` snapshots; keys as state changes (and, for
//! accepting, as the profile file written).
use std::{collections::BTreeSet, path::Path, time::Duration};

use ratatui::{
    Terminal,
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
};

use super::{App, OutputLine, Pane, Popup, QuitReason, Stream, UiEvent};
use crate::{
    attribution::{CrateRef, Role},
    command::Status,
    learn,
    model::{Event, EventKind, Lost},
    pipeline::{Pipeline, PipelineOptions},
    replay,
};

fn fixture() -> Vec<Event> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/streams/hostile.jsonl.gz");
    replay::read_events(&path).expect("the recorded stream")
}

/// How much of the recorded run to feed.
enum Upto {
    /// Every event, then the end of the run (final findings, exit status).
    End,
    /// This share of the events (in percent); the build is still running.
    Percent(usize),
}

/// An app fed from the recorded run, through the real pipeline, the way `LiveFeed` feeds it.
fn app_with(upto: Upto, profiles_dir: &Path, extra: Vec<Event>) -> App {
    let mut app = App::new(
        vec!["cargo".into(), "build".into(), "--offline".into()],
        profiles_dir.to_owned(),
        BTreeSet::new(),
    );
    app.update(UiEvent::Started { pid: 28061 });
    let mut pipeline = Pipeline::new(PipelineOptions::default()).expect("pipeline");
    let events = fixture();
    let n = match upto {
        Upto::End => events.len(),
        Upto::Percent(p) => events.len() * p / 100,
    };
    let last_ns = events.get(n.saturating_sub(1)).map_or(0, |e| e.time_ns);
    for mut event in events.into_iter().take(n).chain(extra) {
        if event.time_ns == 0 {
            event.time_ns = last_ns;
        }
        let event = pipeline.process(event).expect("process");
        app.update(UiEvent::Event(Box::new(event)));
    }
    let live: Vec<_> = pipeline.findings().into_iter().cloned().collect();
    let crates: BTreeSet<CrateRef> = live.iter().filter_map(|f| f.krate.clone()).collect();
    for krate in crates {
        let vars = learn::crate_vars(pipeline.attributor(), &krate);
        app.update(UiEvent::Vars(krate, Box::new(vars)));
    }
    app.set_clock(Duration::from_millis(3_400));
    app.update(UiEvent::Seen(
        pipeline.attributor().seen().iter().cloned().collect(),
    ));
    match upto {
        Upto::Percent(_) => app.update(UiEvent::Findings(live)),
        Upto::End => {
            let (report, _) = pipeline.finish().expect("finish");
            app.update(UiEvent::Findings(report.findings));
            app.set_clock(Duration::from_millis(4_600));
            app.update(UiEvent::Exited(Some(Status::Exited(0))));
        }
    }
    app
}

fn finished() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_with(Upto::End, dir.path(), Vec::new());
    (app, dir)
}

fn key(app: &mut App, code: KeyCode) {
    app.update(UiEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// The screen as text (one line per row, trailing blanks cut).
fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal
        .draw(|frame| super::ui::draw(frame, app))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

macro_rules! screen {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![
                (r"pid \d+", "pid [PID]"),
                (r"\[\d{2,7}\]", "[PID]"),
                (r"\+\d+\.\d{3}s", "+[T]"),
                (r"/tmp/\.tmp[A-Za-z0-9]+", "[TEMP]"),
                (r"/tmp/bwfix", "[BUILD]"),
            ],
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

fn crate_key(name: &str, role: Role) -> (CrateRef, Role) {
    let version = match name {
        "netprobe" => "0.3.1",
        "keyscan" => "0.1.4",
        "lingerer" => "0.4.0",
        "phone-home" => "1.0.0",
        "peek-macro" => "0.2.0",
        _ => "2.1.0",
    };
    (CrateRef::new(name, Some(version)), role)
}

// ---- screens ----

#[test]
fn screen_empty() {
    let mut app = App::new(
        vec!["cargo".into(), "build".into()],
        "/nonexistent".into(),
        BTreeSet::new(),
    );
    screen!("empty_starting_80x24", render(&mut app, 80, 24));
    app.update(UiEvent::Started { pid: 1 });
    app.set_clock(Duration::from_secs(1));
    screen!("empty_running_80x24", render(&mut app, 80, 24));
    // Every pane of an empty run, and a tiny terminal: nothing to show must not panic.
    for pane in ["3", "4", "5"] {
        keys(&mut app, pane);
        let _ = render(&mut app, 80, 24);
    }
    let _ = render(&mut app, 10, 3);
    let _ = render(&mut app, 1, 1);
    app.update(UiEvent::Exited(None));
    screen!("empty_ended_200x50", render(&mut app, 200, 50));
}

#[test]
fn screen_running_80x24() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = app_with(Upto::Percent(60), dir.path(), Vec::new());
    screen!("running_80x24", render(&mut app, 80, 24));
}

#[test]
fn screen_finished_80x24() {
    let (mut app, _dir) = finished();
    screen!("finished_80x24", render(&mut app, 80, 24));
}

#[test]
fn screen_finished_200x50_with_tool_chain() {
    let (mut app, _dir) = finished();
    app.select_crate(crate_key("lingerer", Role::BuildScript));
    screen!("finished_200x50_lingerer", render(&mut app, 200, 50));
}

#[test]
fn any_size_and_any_dialog_renders_without_panicking() {
    let (mut app, _dir) = finished();
    for keys_typed in ["", "?", "f", "/x", "a", "3\n", "q"] {
        let mut app2 = finished().0;
        for c in keys_typed.chars() {
            match c {
                '\n' => key(&mut app2, KeyCode::Enter),
                c => key(&mut app2, KeyCode::Char(c)),
            }
        }
        for (w, h) in [(1, 1), (10, 3), (40, 10), (79, 23), (120, 36), (300, 100)] {
            let _ = render(&mut app2, w, h);
        }
    }
    for pane in ["1", "2", "3", "4", "5"] {
        keys(&mut app, pane);
        for (w, h) in [(1, 1), (20, 5), (120, 36)] {
            let _ = render(&mut app, w, h);
            key(&mut app, KeyCode::PageDown);
            key(&mut app, KeyCode::End);
            key(&mut app, KeyCode::Home);
        }
    }
}

#[test]
fn screen_finding_selected() {
    let (mut app, _dir) = finished();
    keys(&mut app, "3");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    screen!("finding_selected_80x24", render(&mut app, 80, 24));
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Some(Popup::Finding(_))));
    screen!("finding_popup_80x24", render(&mut app, 80, 24));
}

#[test]
fn screen_lost_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lost = Event {
        time_ns: 0,
        pid: 0,
        tid: 0,
        ppid: 0,
        comm: String::new(),
        actor: None,
        callers: Vec::new(),
        kind: EventKind::Lost(Lost {
            count: 42,
            reason: crate::model::LostReason::RingBufferFull,
        }),
    };
    let mut app = app_with(Upto::Percent(80), dir.path(), vec![lost]);
    app.update(UiEvent::Lost(1));
    assert_eq!(app.lost(), 43);
    keys(&mut app, "4");
    screen!("lost_events_80x24", render(&mut app, 80, 24));
}

#[test]
fn screen_accept_dialog() {
    let (mut app, dir) = finished();
    app.select_crate(crate_key("netprobe", Role::BuildScript));
    key(&mut app, KeyCode::Char('a'));
    assert!(matches!(app.popup, Some(Popup::Accept { .. })));
    assert!(
        !dir.path().join("netprobe.toml").exists(),
        "nothing is written before y"
    );
    screen!("accept_dialog_80x24", render(&mut app, 80, 24));
    screen!("accept_dialog_200x50", render(&mut app, 200, 50));
}

#[test]
fn screen_help() {
    let (mut app, _dir) = finished();
    key(&mut app, KeyCode::Char('?'));
    screen!("help_200x50", render(&mut app, 200, 50));
    screen!("help_80x24", render(&mut app, 80, 24));
}

#[test]
fn screen_filter() {
    let (mut app, _dir) = finished();
    keys(&mut app, "f");
    keys(&mut app, "rpmb");
    screen!("filter_dialog_80x24", render(&mut app, 80, 24));
    key(&mut app, KeyCode::Esc);
    keys(&mut app, "/47123");
    key(&mut app, KeyCode::Enter);
    screen!("filter_applied_80x24", render(&mut app, 80, 24));
}

#[test]
fn screen_build_output() {
    let (mut app, _dir) = finished();
    for line in [
        "   Compiling netprobe v0.3.1 (/tmp/bwfix/ws/netprobe)",
        "   Compiling keyscan v0.1.4 (/tmp/bwfix/ws/keyscan)",
        "warning: unused variable: `x`",
        "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 1.30s",
    ] {
        app.update(UiEvent::Output(OutputLine {
            stream: Stream::Stderr,
            text: line.to_owned(),
        }));
    }
    keys(&mut app, "5");
    screen!("build_output_80x24", render(&mut app, 80, 24));
}

#[test]
fn screen_confirm_quit_while_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = app_with(Upto::Percent(30), dir.path(), Vec::new());
    key(&mut app, KeyCode::Char('q'));
    screen!("confirm_quit_80x24", render(&mut app, 80, 24));
}

// ---- keys ----

#[test]
fn navigation_moves_the_crate_selection_in_table_order() {
    let (mut app, _dir) = finished();
    let order: Vec<String> = app
        .crate_rows()
        .iter()
        .map(|r| format!("{} {} {}", r.key.0.name, r.key.1, r.status.label()))
        .collect();
    // Findings first (errors, by name, then warnings), then crates without a profile.
    assert_eq!(
        order,
        [
            "keyscan build-script finding",
            "lingerer build-script finding",
            "netprobe build-script finding",
            "phone-home proc-macro finding",
            "peek-macro proc-macro finding",
            "benign-bs build-script no profile",
            "benign-derive proc-macro no profile",
        ]
    );
    let selected = |app: &App| app.selected_crate().map(|k| k.0.name.clone());
    assert_eq!(selected(&app).as_deref(), Some("keyscan"));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(selected(&app).as_deref(), Some("netprobe"));
    key(&mut app, KeyCode::Up);
    assert_eq!(selected(&app).as_deref(), Some("lingerer"));
    key(&mut app, KeyCode::End);
    assert_eq!(selected(&app).as_deref(), Some("benign-derive"));
    key(&mut app, KeyCode::Down);
    assert_eq!(
        selected(&app).as_deref(),
        Some("benign-derive"),
        "stays at the end"
    );
    key(&mut app, KeyCode::Home);
    assert_eq!(selected(&app).as_deref(), Some("keyscan"));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.focus, Pane::Detail);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.focus, Pane::Crates);
}

#[test]
fn selection_follows_the_crate_when_rows_reorder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = app_with(Upto::Percent(30), dir.path(), Vec::new());
    key(&mut app, KeyCode::Down);
    let before = app.selected_crate();
    assert!(before.is_some());
    let (full, _dir) = finished();
    app.update(UiEvent::Findings(full.findings().to_vec()));
    assert_eq!(app.selected_crate(), before);
}

#[test]
fn tab_cycles_the_panes() {
    let (mut app, _dir) = finished();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(app.focus);
        key(&mut app, KeyCode::Tab);
    }
    assert_eq!(seen, Pane::ALL);
    assert_eq!(app.focus, Pane::Crates);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus, Pane::Output);
    assert_eq!(app.bottom, Pane::Output, "the stacked layout shows it");
    keys(&mut app, "3");
    assert_eq!(app.focus, Pane::Findings);
}

#[test]
fn filter_toggles_kinds_and_searches() {
    let (mut app, _dir) = finished();
    let shown = |app: &App| {
        let selected = app.selected_crate();
        app.log.filtered(&app.filter, selected.as_ref()).count()
    };
    let all = shown(&app);
    assert_eq!(all, app.log.len());
    keys(&mut app, "f");
    assert_eq!(app.popup, Some(Popup::Filter));
    keys(&mut app, "r");
    let without_reads = shown(&app);
    assert!(without_reads < all);
    keys(&mut app, "r");
    assert_eq!(shown(&app), all);
    keys(&mut app, "ewpmlr");
    // Only network and writes left.
    assert!(app.log.filtered(&app.filter, None).all(|e| matches!(
        e.kind,
        super::log::LogKind::Network | super::log::LogKind::Write
    )));
    keys(&mut app, "x");
    assert!(app.filter.is_default());
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);

    keys(&mut app, "/4712");
    assert_eq!(app.focus, Pane::Log);
    keys(&mut app, "3");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.filter.text, "47123");
    assert_eq!(
        shown(&app),
        4,
        "the three connects to the listener, and the command line that set BW_PORT"
    );
    keys(&mut app, "/zz");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.filter.text, "47123", "Esc restores the search");
    keys(&mut app, "/");
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.filter.text, "4712");

    // Only the selected crate.
    app.filter = super::LogFilter::default();
    app.select_crate(crate_key("netprobe", Role::BuildScript));
    keys(&mut app, "fs");
    key(&mut app, KeyCode::Esc);
    assert!(shown(&app) > 0);
    let selected = app.selected_crate();
    assert!(
        app.log.filtered(&app.filter, selected.as_ref()).all(|e| e
            .krate
            .as_ref()
            .map(|k| k.0.name.as_str())
            == Some("netprobe"))
    );
}

#[test]
fn accept_writes_the_profile_change_after_yes() {
    let (mut app, dir) = finished();
    let path = dir.path().join("netprobe.toml");
    // In the findings pane, the netprobe network finding.
    keys(&mut app, "3");
    let index = app
        .findings()
        .iter()
        .position(|f| {
            f.krate.as_ref().map(|k| k.name.as_str()) == Some("netprobe")
                && f.code == crate::policy::Code::UnexpectedNetwork
        })
        .expect("netprobe's network finding");
    for _ in 0..index {
        key(&mut app, KeyCode::Down);
    }
    // n: nothing written.
    keys(&mut app, "a");
    let Some(Popup::Accept { diff, .. }) = &app.popup else {
        panic!("no accept dialog: {:?}", app.popup);
    };
    assert!(diff.contains("+     \"127.0.0.1:47123\","), "{diff}");
    keys(&mut app, "n");
    assert_eq!(app.popup, None);
    assert!(!path.exists());

    // y: written, and the finding shows as accepted.
    keys(&mut app, "ay");
    assert_eq!(app.popup, None);
    let text = std::fs::read_to_string(&path).expect("profile written");
    assert_eq!(
        text,
        "\
# Profile started by accepting a buildwatch finding; review it.

schema = 1
crate = \"netprobe\"
versions = \"=0.3.1\"

[build-script]
network = [
    \"127.0.0.1:47123\",  # accepted unexpected-network finding
]
"
    );
    crate::profile::parse(&text, &path).expect("a valid profile");
    let f = &app.findings()[index];
    assert_eq!(app.accepted(f), Some(&path));
    assert_eq!(app.written(), std::slice::from_ref(&path));

    // Again: nothing to do.
    keys(&mut app, "a");
    assert_eq!(app.popup, None);
    assert!(
        app.status
            .as_deref()
            .unwrap_or("")
            .contains("already accepted")
    );
    let rows = app.crate_rows();
    let netprobe = rows
        .iter()
        .find(|r| r.key.0.name == "netprobe")
        .expect("netprobe row");
    assert_eq!(netprobe.status, super::app::CrateStatus::Accepted);
}

#[test]
fn accept_from_the_crate_table_takes_the_crates_finding() {
    let (mut app, dir) = finished();
    app.select_crate(crate_key("keyscan", Role::BuildScript));
    keys(&mut app, "ay");
    let text = std::fs::read_to_string(dir.path().join("keyscan.toml")).expect("profile");
    assert!(
        text.contains("sensitive-read = [\n    \"/home/bwfixture/.ssh/id_rsa\","),
        "{text}"
    );
}

#[test]
fn accepting_what_cannot_be_accepted_explains_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lost = Event {
        time_ns: 0,
        pid: 0,
        tid: 0,
        ppid: 0,
        comm: String::new(),
        actor: None,
        callers: Vec::new(),
        kind: EventKind::Lost(Lost {
            count: 1,
            reason: crate::model::LostReason::RingBufferFull,
        }),
    };
    let mut app = app_with(Upto::End, dir.path(), vec![lost]);
    keys(&mut app, "3");
    let index = app
        .findings()
        .iter()
        .position(|f| f.code == crate::policy::Code::EventsLost)
        .expect("events-lost finding");
    for _ in 0..index {
        key(&mut app, KeyCode::Down);
    }
    keys(&mut app, "a");
    assert!(
        matches!(&app.popup, Some(Popup::Message { .. })),
        "{:?}",
        app.popup
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn quitting_while_the_build_runs_asks_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = app_with(Upto::Percent(30), dir.path(), Vec::new());
    keys(&mut app, "q");
    assert_eq!(app.popup, Some(Popup::ConfirmQuit));
    keys(&mut app, "n");
    assert_eq!(app.quit_reason(), None);
    assert!(!app.take_stop_request());
    // Ctrl-C, then y: stop the build.
    app.update(UiEvent::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(app.popup, Some(Popup::ConfirmQuit));
    keys(&mut app, "y");
    assert_eq!(app.quit_reason(), Some(QuitReason::StopBuild));
    assert!(app.take_stop_request());
    assert!(!app.take_stop_request(), "asked once");
}

#[test]
fn an_attached_view_detaches_without_touching_the_build_and_accepts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = app_with(Upto::Percent(100), dir.path(), Vec::new());
    app.attached = true;
    assert!(app.running());
    keys(&mut app, "3a");
    assert!(app.popup.is_none(), "{:?}", app.popup);
    assert!(
        app.status
            .as_deref()
            .is_some_and(|s| s.starts_with("attached")),
        "{:?}",
        app.status
    );
    keys(&mut app, "q");
    assert_eq!(app.popup, None, "no question: the build is not stopped");
    assert_eq!(app.quit_reason(), Some(QuitReason::User));
    assert!(!app.take_stop_request());
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn quitting_after_the_build_ended_needs_no_confirmation() {
    let (mut app, _dir) = finished();
    keys(&mut app, "?");
    keys(&mut app, "q");
    assert_eq!(app.quit_reason(), None, "q closes the help first");
    keys(&mut app, "q");
    assert_eq!(app.quit_reason(), Some(QuitReason::User));
    assert!(!app.take_stop_request());
}

#[test]
fn scrolling_the_log_pauses_and_end_follows() {
    let (mut app, _dir) = finished();
    keys(&mut app, "4");
    assert_eq!(app.log_back, 0);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::PageUp);
    assert!(app.log_back > 1);
    let back = app.log_back;
    // New events keep a paused view where it is.
    app.update(UiEvent::Event(Box::new(Event {
        time_ns: 1,
        pid: 1,
        tid: 1,
        ppid: 0,
        comm: "x".into(),
        actor: None,
        callers: Vec::new(),
        kind: EventKind::Exit(crate::model::Exit {
            code: Some(0),
            signal: None,
            quiet_failed_reads: 0,
        }),
    })));
    assert_eq!(app.log_back, back + 1);
    key(&mut app, KeyCode::Home);
    let top = app.log_back;
    assert!(top <= app.log.len());
    key(&mut app, KeyCode::End);
    assert_eq!(app.log_back, 0);
}

#[test]
fn output_lines_are_kept_for_printing_after_exit() {
    let (mut app, _dir) = finished();
    for i in 0..3 {
        app.update(UiEvent::Output(OutputLine {
            stream: if i == 1 {
                Stream::Stdout
            } else {
                Stream::Stderr
            },
            text: format!("line {i}"),
        }));
    }
    let (lines, dropped) = app.take_output();
    assert_eq!(dropped, 0);
    assert_eq!(
        lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        ["line 0", "line 1", "line 2"]
    );
    assert_eq!(lines[1].stream, Stream::Stdout);
}

#[test]
fn output_is_cleaned_of_control_characters() {
    use super::feed::clean;
    assert_eq!(clean(b"a\tb\r\n"), "a    b");
    assert_eq!(clean(b"\x1b[1m\x1b[32mCompiling\x1b[0m x\n"), "Compiling x");
    assert_eq!(clean(b"progress 1\rprogress 2\n"), "progress 2");
    assert_eq!(clean(b"bad \xff byte"), "bad \u{fffd} byte");
    // Anything but colour is shown, not obeyed: a build script's `cargo:warning` cannot erase
    // lines, move the cursor, retitle the terminal or reorder text.
    assert_eq!(
        clean(b"warning: x\x1b[2K\x1b[1A\x1b[32mfindings: none\x1b[0m\n"),
        "warning: x\\e[2K\\e[1Afindings: none"
    );
    assert_eq!(
        clean(b"\x1b]0;title\x07 C:\\temp"),
        "\\e]0;title\\x07 C:\\temp"
    );
    assert_eq!(clean("a\u{202e}b".as_bytes()), "a\\u{202e}b");
    assert_eq!(clean(b"\x1b[31"), "\\e[31");
}

#[test]
fn the_detail_pane_shows_what_ran_by_digest() {
    use crate::model::ImageDigest;
    let (mut app, _dir) = finished();
    let (key, program) = app
        .model
        .crates
        .iter()
        .find_map(|(k, v)| Some((k.clone(), v.programs.keys().next()?.clone())))
        .expect("a crate ran a program");
    app.select_crate(key);
    let text = |app: &App| {
        crate::tui::ui::detail::lines(app)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!text(&app).contains("sha256:"));
    let sha = "0123456789abcdef".repeat(4);
    app.update(UiEvent::Digests(vec![(
        program.clone(),
        ImageDigest::Hashed {
            sha256: sha,
            size: 1,
        },
    )]));
    let shown = text(&app);
    let line = shown
        .lines()
        .find(|l| l.contains("sha256:"))
        .expect("a digest shown");
    assert!(
        line.contains("sha256:0123456789abcdef") && !line.contains("01234567890123456789"),
        "{line}"
    );
    app.update(UiEvent::Digests(vec![(
        program,
        ImageDigest::Changed {
            detail: "modified 0.5s after it ran".into(),
        },
    )]));
    assert!(
        text(&app).contains("changed before it could be hashed"),
        "{}",
        text(&app)
    );
}
