//! The profiles shipped in profiles/, on a subset that keeps the default suite short: two real
//! workspaces (tests/fixtures/popular, and tests/fixtures/system-libs for the crates that need a
//! system library; fetched from crates.io at the versions their Cargo.lock pins) build under
//! `buildwatch ci` with no user profiles and zero findings, and `buildwatch profiles` said
//! beforehand that a shipped profile covers every crate that then ran. `cargo xtask
//! profiles-check` builds the workloads that use every shipped profile.
mod support;

use std::collections::BTreeSet;

use support::{buildwatch_in, copy_fixture, read_report, real_home_dir, require_root};

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_fixture_workspaces_are_quiet_with_the_shipped_profiles() {
    require_root();
    let mut ran = quiet_build("popular", "");
    ran.extend(quiet_build(
        "system-libs",
        " (it needs OpenSSL's headers and pkg-config: apt install libssl-dev pkg-config)",
    ));
    // The subset is real: dozens of shipped profiles were used.
    assert!(ran.len() >= 30, "{ran:?}");
    assert!(buildwatch::shipped::SHIPPED.len() >= 150);
}

/// Builds `fixture` under `buildwatch ci` with no user profiles, asserts a clean run with zero
/// findings, and returns the crates whose build script or proc-macro ran.
fn quiet_build(fixture: &str, hint: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture(fixture, dir.path());
    let cargo_home = real_home_dir("CARGO_HOME", ".cargo");
    let rustup_home = real_home_dir("RUSTUP_HOME", ".rustup");
    let env = [("CARGO_HOME", &*cargo_home), ("RUSTUP_HOME", &*rustup_home)];
    // Before building: which crates will run code, and which profile covers each.
    let out = buildwatch_in(
        dir.path(),
        &["profiles", "--profiles", "no-user-profiles", "--json"],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let survey: serde_json::Value = serde_json::from_slice(&out.stdout).expect("survey JSON");
    let listed: BTreeSet<String> = survey["crates"]
        .as_array()
        .expect("crates")
        .iter()
        .map(|c| {
            assert_eq!(
                (&c["coverage"]["status"], &c["coverage"]["origin"]),
                (&"covered".into(), &"shipped".into()),
                "{fixture}: {c:#}"
            );
            c["name"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
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
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = read_report(&dir.path().join("report.json"));
    let findings = report["findings"].as_array().expect("findings");
    assert!(
        findings.is_empty(),
        "{fixture}: zero findings expected, got {}:\n{stderr}",
        serde_json::to_string_pretty(findings).unwrap_or_default()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{fixture} did not build{hint}:\n{stderr}"
    );
    let ran: BTreeSet<String> = report["crates"]
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
    // What the survey listed is what ran (cc and the like run no code of their own; a
    // proc-macro that is a dependency but never loaded is listed and may not run).
    let unlisted: Vec<&String> = ran.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "{fixture}: ran but not listed by `buildwatch profiles`: {unlisted:?}"
    );
    ran
}
