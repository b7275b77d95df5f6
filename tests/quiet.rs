//! Quiet directories: a failed read below the toolchain, the system's library trees or the target
//! directory is counted for its process in the kernel instead of sent (no secret lies there), and
//! the counts still reach the report. A probe for a secret through one of those directories
//! (`/usr/../$HOME/.ssh/…`, a relative `../..` from /usr/lib, `.env` in OUT_DIR) is still a
//! finding. The command's LD_LIBRARY_PATH directories are quiet too. With `--events` every
//! failed open is in the stream. Privileged: loads the real eBPF
//! programs (`cargo xtask test`).
mod support;

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use serde_json::Value;
use support::{buildwatch_in, copy_fixture, read_report, real_home_dir, require_root};

/// Quiet failed reads the fixture makes below /usr/lib, and as many below its OUT_DIR.
const QUIET: usize = 400;

struct Watched {
    code: Option<i32>,
    output: String,
    report: Value,
    events: Vec<Value>,
    home: PathBuf,
}

/// `buildwatch ci` of the evasive fixture's quiet-probe crate, with the events file or not.
fn watch(name: &str, with_events: bool) -> Watched {
    require_root();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    copy_fixture("evasive", &dir);
    let home = Path::new("/tmp").join(format!("buildwatch-{name}-home"));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("mkdir home");
    let report = dir.join("report.json").display().to_string();
    let events = dir.join("events.jsonl");
    let events_arg = events.display().to_string();
    let profiles = dir.join("no-profiles").display().to_string();
    let mut args = vec!["ci", "--profiles", &profiles, "--report", &report];
    if with_events {
        args.extend(["--events", &events_arg]);
    }
    args.extend(["--", "cargo", "build", "--offline", "-p", "quiet-probe"]);
    let quiet = QUIET.to_string();
    let (cargo_home, rustup_home) = (
        real_home_dir("CARGO_HOME", ".cargo"),
        real_home_dir("RUSTUP_HOME", ".rustup"),
    );
    let home_text = home.display().to_string();
    // Directories the dynamic loader tries for every library of every program (missing).
    let library_path = format!("{0}/lib-a:{0}/lib-b", dir.display());
    let out = buildwatch_in(
        &dir,
        &args,
        &[
            ("CARGO_HOME", &cargo_home),
            ("RUSTUP_HOME", &rustup_home),
            ("HOME", &home_text),
            ("BW_QUIET_N", &quiet),
            ("LD_LIBRARY_PATH", &library_path),
        ],
    );
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("event is JSON"))
        .collect();
    Watched {
        code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        report: read_report(Path::new(&report)),
        events,
        home,
    }
}

impl Watched {
    /// The sensitive-read findings on quiet-probe's build script, by subject.
    fn secret_probes(&self) -> Vec<String> {
        self.report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| {
                f["code"] == "sensitive-read"
                    && f["crate"]["name"] == "quiet-probe"
                    && f["role"] == "build-script"
            })
            .map(|f| f["subject"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every probe for a secret through a quiet directory is a finding, each with its failed
    /// attempt, and ci fails on them.
    fn assert_probes_found(&self) {
        assert_eq!(self.code, Some(3), "{}", self.output);
        let found = self.secret_probes();
        let home = self.home.display();
        for key in ["id_quiet_missing", "id_quiet_dotdot", "id_quiet_relative"] {
            let subject = format!("{home}/.ssh/{key}");
            assert!(found.contains(&subject), "{subject} in {found:#?}");
        }
        assert!(
            found.iter().any(|s| s.ends_with("/out/.env")),
            "the .env in OUT_DIR: {found:#?}"
        );
    }

    /// Failed-open events (of the events file) whose path `matches`.
    fn failed_opens(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.events
            .iter()
            .filter(|e| {
                e["kind"] == "open"
                    && e["result"].as_i64().is_some_and(|r| r < 0)
                    && e["path"].as_str().is_some_and(&matches)
            })
            .count()
    }

    /// The failed opens the program table counts for the build script (`build-script-build`).
    fn build_script_failures(&self) -> u64 {
        let row = self
            .output
            .lines()
            .find(|l| l.starts_with("build-script-build "))
            .unwrap_or_else(|| panic!("no build-script-build row:\n{}", self.output));
        // program  execs  reads  writes  failed  connect
        row.split_whitespace()
            .nth(4)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad row {row}"))
    }
}

/// The fixture watched twice: without an events file (failed reads counted) and with one.
fn runs() -> &'static (Watched, Watched) {
    static RUNS: OnceLock<(Watched, Watched)> = OnceLock::new();
    RUNS.get_or_init(|| (watch("quiet-counted", false), watch("quiet-recorded", true)))
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn quiet_failures_are_counted_not_sent_and_secret_probes_through_quiet_directories_are_found() {
    let (counted, recorded) = runs();
    counted.assert_probes_found();
    assert_eq!(counted.report["lost_events"], 0, "{}", counted.output);
    // The same build sent fewer opens by the 2 × QUIET failures and by the dynamic loader's
    // failed tries in the LD_LIBRARY_PATH directories...
    let loader = recorded.failed_opens(|p| p.contains("/quiet-recorded/lib-")) as u64;
    assert!(
        loader > 0,
        "the loader tried the LD_LIBRARY_PATH directories"
    );
    let opens = |w: &Watched| w.report["counts"]["open"].as_u64().expect("open count");
    assert!(
        opens(recorded) >= opens(counted) + 2 * QUIET as u64 + loader,
        "{} open events without --events, {} with ({loader} in LD_LIBRARY_PATH): quiet \
         failures were sent",
        opens(counted),
        opens(recorded)
    );
    // ...but counted them, and their count reached the report.
    let failed = counted.build_script_failures();
    assert!(
        failed >= 2 * QUIET as u64,
        "{failed} failed opens counted for the build script\n{}",
        counted.output
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn with_an_events_file_every_failed_open_is_sent() {
    let run = &runs().1;
    run.assert_probes_found();
    assert!(
        run.build_script_failures() >= 2 * QUIET as u64,
        "{}",
        run.output
    );
    let quiet_events = run
        .failed_opens(|p| p.starts_with("/usr/lib/buildwatch-quiet-") || p.contains("/out/quiet-"));
    assert_eq!(quiet_events, 2 * QUIET, "every failed open is an event");
    assert!(
        !run.events.iter().any(|e| e["kind"] == "exit"
            && e["quiet_failed_reads"].as_u64().is_some_and(|n| n > 0)),
        "nothing counted instead of sent"
    );
}
