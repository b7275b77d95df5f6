//! Watching `cargo install` from a directory that is not a cargo project (as CI jobs install
//! their tools): `learn`, then `ci --fail-on all` on the same install, must be quiet, and the
//! learned profiles must hold no absolute temporary paths. There is no `cargo metadata` to tell
//! the target directory here: it comes from the events (rustc's `--out-dir`, the build scripts'
//! `OUT_DIR`), which cargo writes as given (`--target-dir ./t` becomes `/cwd/./t/debug/...`).
//! Real sensor, the `installable` fixture (path dependencies, offline).
mod support;

use std::path::Path;

use support::{
    buildwatch_in, copy_fixture, finding_codes, read_report, real_home_dir, require_root,
};

/// `buildwatch <cmd> ... -- cargo install --path <src>/inst-tool [target]` run in `np`.
fn install(
    dir: &Path,
    cmd: &str,
    extra: &[&str],
    target: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let np = dir.join("np");
    let report = dir.join(format!("{cmd}-report.json"));
    let profiles = dir.join("profiles").display().to_string();
    let report_arg = report.display().to_string();
    let tool = dir.join("src/inst-tool").display().to_string();
    let root = dir.join("root").display().to_string();
    let mut args = vec![
        cmd,
        "--no-tui",
        "--profiles",
        &profiles,
        "--report",
        &report_arg,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--",
        "cargo",
        "install",
        "--offline",
        "--debug",
        "--force",
        "--path",
        &tool,
        "--root",
        &root,
    ]);
    args.extend_from_slice(target);
    let cargo_home = real_home_dir("CARGO_HOME", ".cargo");
    let rustup_home = real_home_dir("RUSTUP_HOME", ".rustup");
    let home = dir.join("home").display().to_string();
    let out = buildwatch_in(
        &np,
        &args,
        &[
            ("HOME", &home),
            ("CARGO_HOME", &cargo_home),
            ("RUSTUP_HOME", &rustup_home),
            ("TMPDIR", "/tmp"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(report.exists(), "no report written\n{stderr}");
    (out, read_report(&report))
}

/// Learns, then checks, the install with the `--target-dir` arguments `target(dir)`.
fn learn_then_check(target: impl Fn(&Path) -> Vec<String>) {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let target = target(dir);
    let target: Vec<&str> = target.iter().map(String::as_str).collect();
    let target = target.as_slice();
    copy_fixture("installable", &dir.join("src"));
    for sub in ["np", "home"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let clean = || {
        let _ = std::fs::remove_dir_all(dir.join("np/tt"));
        let _ = std::fs::remove_dir_all(dir.join("td"));
        let _ = std::fs::remove_dir_all(dir.join("src/target"));
    };
    clean();
    let (out, _) = install(dir, "learn", &[], target);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "learn failed\n{stderr}");
    let tmp = dir.display().to_string();
    for krate in ["inst-derive", "inst-probe"] {
        let path = dir.join("profiles").join(format!("{krate}.toml"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", path.display()));
        buildwatch::profile::parse(&text, &path)
            .unwrap_or_else(|e| panic!("learned profile does not parse: {e}"));
        // Comments name the command learned from (its temporary paths included): entries only.
        let entries: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        for line in entries {
            assert!(
                !line.contains(&tmp) && !line.contains("${TMPDIR}") && !line.contains("/tmp/"),
                "{krate}: an absolute temporary path was learned: {line}\n{text}"
            );
        }
    }
    clean();
    let (out, report) = install(dir, "ci", &["--fail-on", "all"], target);
    assert_eq!(
        finding_codes(&report),
        Vec::<(String, String)>::new(),
        "after learning, the same install must be quiet\n{}\n{report:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn install_with_a_relative_target_dir_is_quiet_after_learning() {
    learn_then_check(|_| vec!["--target-dir".into(), "./tt".into()]);
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn install_with_an_absolute_target_dir_is_quiet_after_learning() {
    // With `..`: cargo passes it on unresolved too.
    learn_then_check(|dir| vec!["--target-dir".into(), format!("{}/np/../td", dir.display())]);
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn install_with_its_own_target_dir_is_quiet_after_learning() {
    learn_then_check(|_| Vec::new());
}
