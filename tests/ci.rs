//! `buildwatch ci` end to end: the exit status matrix and processes that outlive the build.
mod support;

use std::{io::Read as _, net::TcpListener, path::Path};

use support::{
    buildwatch_in, copy_fixture, finding_codes, procs, read_report, real_home_dir, require_root,
};

fn cargo_env() -> Vec<(&'static str, String)> {
    vec![
        ("CARGO_HOME", real_home_dir("CARGO_HOME", ".cargo")),
        ("RUSTUP_HOME", real_home_dir("RUSTUP_HOME", ".rustup")),
    ]
}

fn run_ci(
    dir: &Path,
    extra: &[&str],
    command: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, serde_json::Value) {
    let report = dir.join("report.json");
    let report_arg = report.display().to_string();
    let profiles = dir.join("no-profiles").display().to_string();
    let mut args = vec!["ci", "--profiles", &profiles, "--report", &report_arg];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    let owned = cargo_env();
    let mut all: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(env);
    let out = buildwatch_in(dir, &args, &all);
    let report = if report.exists() {
        read_report(&report)
    } else {
        serde_json::Value::Null
    };
    (out, report)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_clean_build_exits_0() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("../../examples/demo", dir.path());
    let (out, report) = run_ci(dir.path(), &[], &["cargo", "build", "--offline"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let errors: Vec<_> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(
        errors.is_empty(),
        "no error findings on a clean build: {errors:?}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_build_script_connecting_out_exits_3_with_the_finding() {
    require_root();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut s = s;
            let _ = s.read_to_end(&mut Vec::new());
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("hostile", dir.path());
    let (out, report) = run_ci(
        dir.path(),
        &["--sarif", "out.sarif"],
        &["cargo", "build", "--offline"],
        &[("BW_PORT", &port), ("BW_SECRET_FILE", "/etc/hostname")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let codes = finding_codes(&report);
    for krate in ["netprobe", "phone-home", "lingerer"] {
        assert!(
            codes.contains(&("unexpected-network".to_owned(), krate.to_owned())),
            "{krate}: {codes:?}"
        );
    }
    let sarif = std::fs::read_to_string(dir.path().join("out.sarif")).expect("sarif written");
    assert!(
        sarif.contains("netprobe 0.3.1"),
        "the SARIF result names the crate and version"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn lost_events_exit_4() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let procs = procs().display().to_string();
    let (out, report) = run_ci(
        dir.path(),
        &["--ring-buffer-size", "4096"],
        &[&python, &procs, "storm", "200000", "/etc/hostname"],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(report["lost_events"].as_u64().unwrap_or(0) > 0);
    assert!(
        finding_codes(&report)
            .iter()
            .any(|(c, _)| c == "events-lost")
    );
}

/// The command is born in the run's own cgroup (`clone3` into it), where the socket hooks are:
/// its first instruction already runs there.
#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_command_runs_in_the_builds_own_cgroup() {
    require_root();
    let ours = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    if !ours.lines().any(|l| l.starts_with("0::")) {
        eprintln!("no cgroup v2 hierarchy here: the sensor makes no build cgroup");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, _) = run_ci(dir.path(), &[], &["cat", "/proc/self/cgroup"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let v2 = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup v2 line in {text}"));
    let mut parts = v2.rsplit('/');
    assert_eq!(parts.next(), Some("build"), "{v2}");
    assert!(
        parts.next().is_some_and(|p| p.starts_with("buildwatch-")),
        "{v2}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_failing_command_without_findings_keeps_its_status() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, report) = run_ci(dir.path(), &[], &["sh", "-c", "exit 5"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(report["exit_status"], 5);
}

#[test]
fn an_unknown_option_exits_2_and_the_command_does_not_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let out = buildwatch_in(
        dir.path(),
        &[
            "ci",
            "--bogus",
            "--",
            "touch",
            &marker.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--bogus"));
    assert!(!marker.exists());
}

#[test]
fn a_bad_fail_on_code_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = buildwatch_in(
        dir.path(),
        &["ci", "--fail-on", "unexpected-netwrk", "--", "true"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown finding code `unexpected-netwrk`"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_daemon_outliving_the_build_is_reported_and_killed_after_the_grace_period() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("leftover", dir.path());
    // A duration no other process on the machine uses, to find it afterwards.
    let seconds = "297";
    let (out, report) = run_ci(
        dir.path(),
        &["--grace", "1"],
        &["cargo", "build", "--offline"],
        &[("BW_STAY_SECONDS", seconds)],
    );
    let findings = report["findings"].as_array().expect("findings");
    let outlived: Vec<_> = findings
        .iter()
        .filter(|f| f["code"] == "process-outlived-build")
        .collect();
    assert!(!outlived.is_empty(), "{}", stderr(&out));
    let f = outlived
        .iter()
        .find(|f| f["detail"].as_str().unwrap_or_default().contains("sleep"))
        .expect("the sleep");
    assert_eq!(f["crate"]["name"], "stayer");
    assert_eq!(f["role"], "build-script");
    assert!(
        f["detail"].as_str().unwrap_or_default().contains("killed"),
        "{f}"
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep {seconds}")])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "the daemon must be gone: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn enforce_refuses_what_profiles_do_not_allow() {
    require_root();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let received = received.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let mut s = s;
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                received.lock().expect("lock").push(buf);
            }
        });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("hostile", dir.path());
    // netprobe's profile allows the listener; lingerer and phone-home have none.
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).expect("mkdir");
    std::fs::write(
        profiles.join("netprobe.toml"),
        format!(
            "schema = 1\ncrate = \"netprobe\"\n\n[build-script]\nnetwork = [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .expect("profile");
    let port_arg = port.to_string();
    let report = dir.path().join("report.json");
    let report_arg = report.display().to_string();
    let profiles_arg = profiles.display().to_string();
    let owned = cargo_env();
    let mut env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // A HOME with no secrets: under --enforce keyscan's read of ~/.ssh/id_rsa would kill it
    // (and fail the build) on a machine where root has a key; this test is about network.
    let home = dir.path().display().to_string();
    env.extend([
        ("BW_PORT", port_arg.as_str()),
        ("BW_SECRET_FILE", "/etc/hostname"),
        ("HOME", home.as_str()),
    ]);
    let out = buildwatch_in(
        dir.path(),
        &[
            "ci",
            "--enforce",
            "--profiles",
            &profiles_arg,
            "--report",
            &report_arg,
            "--",
            "sh",
            "-c",
            "cargo build --offline && sleep 1",
        ],
        &env,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let report = read_report(&report);
    assert_eq!(
        report["exit_status"],
        0,
        "cargo's own work succeeds\n{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let got = received.lock().expect("lock").clone();
    assert_eq!(
        got,
        ["netprobe"],
        "only the allowed build script got through"
    );
    let refused: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            f["code"] == "unexpected-network"
                && f["detail"].as_str().unwrap_or_default().contains("refused")
        })
        .filter_map(|f| f["crate"]["name"].as_str().map(str::to_owned))
        .collect();
    for krate in ["lingerer", "phone-home"] {
        assert!(
            refused.iter().any(|k| k == krate),
            "{krate} refused: {refused:?}"
        );
    }
    assert!(
        !refused.iter().any(|k| k == "netprobe"),
        "netprobe was allowed"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn offline_build_fetches_first_then_builds_with_the_network_off() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("../../examples/demo", dir.path());
    let (out, report) = run_ci(
        dir.path(),
        &["--offline-build"],
        &[
            "sh",
            "-c",
            "test \"$CARGO_NET_OFFLINE\" = true && cargo build",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        report["exit_status"], 0,
        "the build saw CARGO_NET_OFFLINE=true"
    );
    assert!(
        stderr(&out).contains("--offline-build: cargo fetch"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_failed_offline_build_fetch_exits_2_and_the_build_does_not_run() {
    require_root();
    // No Cargo.toml here: the fetch fails.
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let (out, report) = run_ci(dir.path(), &["--offline-build"], &["sh", "-c", &touch], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`cargo fetch` failed"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists(), "the build did not run");
    assert!(report.is_null(), "no report: nothing was watched");
}

/// `BUILDWATCH_PROGRAM_STATS` (the bench's per-program cost): the dispatchers count the system
/// call programs they tail-call, and only then; without it the verifier drops the counting, so
/// the dispatchers verify at fewer instructions.
#[cfg(target_arch = "x86_64")]
#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn program_stats_count_each_dispatched_program() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let opens = 25;
    let script = format!("for i in $(seq {opens}); do read -r x < /etc/hostname; done");
    let run = |stats: bool| {
        let mut env = vec![("BUILDWATCH_VERIFIER_STATS", "1")];
        if stats {
            env.push(("BUILDWATCH_PROGRAM_STATS", "1"));
        }
        let (out, _) = run_ci(dir.path(), &[], &["sh", "-c", &script], &env);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stderr(&out)
    };
    let verified = |text: &str, program: &str| -> u64 {
        let prefix = format!("verifier: {program}: ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no verifier line for {program}:\n{text}"))
    };
    let runs = |text: &str, line: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|rest| rest.strip_suffix(" runs"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let plain = run(false);
    assert!(!plain.contains("handler: "), "{plain}");
    let counted = run(true);
    let opened = runs(&counted, "handler: raw_sys_exit: sys_exit_open_family: ");
    assert!(opened >= opens, "{opened} opens counted:\n{counted}");
    assert!(
        runs(&counted, "handler: raw_sys_enter: sys_enter_mmap: ") > 0,
        "{counted}"
    );
    for dispatcher in ["raw_sys_enter", "raw_sys_exit"] {
        assert!(
            verified(&plain, dispatcher) < verified(&counted, dispatcher),
            "{dispatcher}: the counting is not dropped without BUILDWATCH_PROGRAM_STATS"
        );
    }
}
