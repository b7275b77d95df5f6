//! Learning end to end: learn on a fixture workspace, clean, check the same build (zero
//! findings), then change one build script to do something new: exactly that finding, on that
//! crate. Real sensor, real cargo builds (offline, path dependencies only).
mod support;

use std::path::{Path, PathBuf};

use support::{
    buildwatch_in, copy_fixture, finding_codes, read_report, real_home_dir, require_root,
};

struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    profiles: PathBuf,
}

fn workspace() -> Workspace {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ws");
    std::fs::create_dir(&root).expect("mkdir");
    copy_fixture("learnable", &root);
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    std::fs::write(home.join(".ssh/id_rsa"), "-----BEGIN FAKE KEY-----\n").expect("key");
    let profiles = dir.path().join("profiles");
    Workspace {
        _dir: dir,
        root,
        home,
        profiles,
    }
}

impl Workspace {
    /// Runs `buildwatch <cmd> --profiles <dir> [extra] -- cargo build --offline` (after
    /// `cargo clean`), with the fake HOME.
    fn run(&self, cmd: &str, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
        let clean = std::process::Command::new("cargo")
            .args(["clean", "-q"])
            .current_dir(&self.root)
            .status()
            .expect("cargo clean");
        assert!(clean.success());
        let report = self.root.join("report.json");
        let profiles = self.profiles.display().to_string();
        let report_arg = report.display().to_string();
        let mut args = vec![
            cmd,
            "--no-tui",
            "--profiles",
            &profiles,
            "--report",
            &report_arg,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "cargo", "build", "--offline"]);
        let cargo_home = real_home_dir("CARGO_HOME", ".cargo");
        let rustup_home = real_home_dir("RUSTUP_HOME", ".rustup");
        let home = self.home.display().to_string();
        let out = buildwatch_in(
            &self.root,
            &args,
            &[
                ("HOME", &home),
                ("CARGO_HOME", &cargo_home),
                ("RUSTUP_HOME", &rustup_home),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(report.exists(), "no report written\n{stderr}");
        (out, read_report(&report))
    }

    fn edit_build_script(&self, krate: &str, code: &str) {
        let path = self.root.join(krate).join("build.rs");
        let text = std::fs::read_to_string(&path).expect("build.rs");
        assert!(
            text.contains("// BUILDWATCH-TEST-MARKER"),
            "fixture marker missing in {}",
            path.display()
        );
        std::fs::write(&path, text.replace("// BUILDWATCH-TEST-MARKER", code))
            .expect("write build.rs");
    }
}

fn learn_then_check(ws: &Workspace) {
    let (out, _) = ws.run("learn", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "learn failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for krate in ["gen-code", "probe-tool", "tmpl-macro"] {
        let path = ws.profiles.join(format!("{krate}.toml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        buildwatch::profile::parse(&text, &path)
            .unwrap_or_else(|e| panic!("learned profile does not parse: {e}"));
    }
    let (out, report) = ws.run("ci", &[]);
    assert_eq!(
        finding_codes(&report),
        Vec::<(String, String)>::new(),
        "the learned profiles must make the same build quiet\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn learned_profiles_make_the_same_build_quiet_and_catch_a_new_secret_read() {
    let ws = workspace();
    learn_then_check(&ws);
    let learned = std::fs::read_to_string(ws.profiles.join("gen-code.toml")).expect("profile");
    assert!(learned.contains("uname"), "gen-code runs uname: {learned}");
    let probe = std::fs::read_to_string(ws.profiles.join("probe-tool.toml")).expect("profile");
    assert!(
        probe.contains("\"sh\""),
        "probe-tool runs sh, by its requested name: {probe}"
    );

    ws.edit_build_script(
        "gen-code",
        r#"let _ = std::fs::read(format!("{}/.ssh/id_rsa", std::env::var("HOME").unwrap_or_default()));"#,
    );
    let (out, report) = ws.run("ci", &[]);
    assert_eq!(
        finding_codes(&report),
        [("sensitive-read".to_owned(), "gen-code".to_owned())],
        "exactly the new behaviour\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finding = &report["findings"][0];
    assert_eq!(finding["role"], "build-script");
    assert_eq!(finding["crate"]["version"], "1.0.0");
    let key = Path::new(&ws.home)
        .join(".ssh/id_rsa")
        .canonicalize()
        .expect("key path");
    assert!(
        finding["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&key.display().to_string())
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "sensitive-read fails ci by default"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn learned_profiles_catch_a_dropped_binary() {
    let ws = workspace();
    learn_then_check(&ws);
    ws.edit_build_script(
        "gen-code",
        r##"{
        use std::os::unix::fs::PermissionsExt;
        let dropped = format!("{}/helper.sh", std::env::var("OUT_DIR").unwrap());
        std::fs::write(&dropped, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&dropped, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::process::Command::new(&dropped).status();
    }"##,
    );
    // A program the build script wrote and ran: dropped-exec, which fails ci by default.
    let (out, report) = ws.run("ci", &[]);
    assert_eq!(
        finding_codes(&report),
        [("dropped-exec".to_owned(), "gen-code".to_owned())],
        "exactly the dropped binary\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let subject = report["findings"][0]["subject"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        subject.ends_with("/out/helper.sh"),
        "the script itself is named: {subject}"
    );
    assert_eq!(out.status.code(), Some(3));
}
