//! The profiles shipped in profiles/: a real workspace depending on every shipped crate
//! (tests/fixtures/popular, fetched from crates.io at the versions its Cargo.lock pins) builds
//! under `buildwatch ci` with no user profiles and zero findings.
mod support;

use support::{buildwatch_in, copy_fixture, read_report, real_home_dir, require_root};

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_popular_workspace_is_quiet_with_the_shipped_profiles() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("popular", dir.path());
    let cargo_home = real_home_dir("CARGO_HOME", ".cargo");
    let rustup_home = real_home_dir("RUSTUP_HOME", ".rustup");
    // Fetching is cargo's own network and allowed; --locked keeps the versions the profiles
    // were learned on.
    let out = buildwatch_in(
        dir.path(),
        &[
            "ci",
            "--profiles",
            "no-user-profiles",
            "--report",
            "report.json",
            "--",
            "cargo",
            "build",
            "--locked",
        ],
        &[("CARGO_HOME", &cargo_home), ("RUSTUP_HOME", &rustup_home)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = read_report(&dir.path().join("report.json"));
    let findings = report["findings"].as_array().expect("findings");
    assert!(
        findings.is_empty(),
        "zero findings expected, got {}:\n{stderr}",
        serde_json::to_string_pretty(findings).unwrap_or_default()
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Every shipped profile's crate really ran in this build (the test covers them all).
    let ran: std::collections::BTreeSet<String> = report["crates"]
        .as_array()
        .expect("crates")
        .iter()
        .filter(|c| {
            c["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r == "build-script" || r == "proc-macro"))
        })
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    for (name, _, _) in buildwatch::shipped::SHIPPED {
        assert!(
            ran.contains(*name),
            "shipped profile {name} is not exercised by the popular workspace: {ran:?}"
        );
    }
    assert!(buildwatch::shipped::SHIPPED.len() >= 25);
}
