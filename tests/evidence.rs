//! Evidence others can verify (issue 18), end to end: digests of what ran, an in-toto
//! attestation of a real build checked with the in-toto project's own library and its DSSE
//! signature verified by two independent implementations, toolchain drift between `learn` and
//! `ci`, and the GitHub Action run locally.
//!
//! The Python checks run in a virtual environment under target/ (in-toto-attestation and
//! cryptography from PyPI, installed on first use).
mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use buildwatch::model::EventKind;
use support::*;

/// A copy of the learnable fixture with its own HOME.
struct Workspace {
    dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

fn workspace() -> Workspace {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ws");
    std::fs::create_dir(&root).expect("mkdir");
    copy_fixture("learnable", &root);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    Workspace { dir, root, home }
}

impl Workspace {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", self.home.display().to_string()),
            ("CARGO_HOME", real_home_dir("CARGO_HOME", ".cargo")),
            ("RUSTUP_HOME", real_home_dir("RUSTUP_HOME", ".rustup")),
        ]
    }

    /// `buildwatch <args> -- cargo build --release --offline`, after `cargo clean`.
    fn build(&self, args: &[&str]) -> std::process::Output {
        let clean = Command::new("cargo")
            .args(["clean", "-q"])
            .current_dir(&self.root)
            .status()
            .expect("cargo clean");
        assert!(clean.success());
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--", "cargo", "build", "--release", "--offline"]);
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        buildwatch_in(&self.root, &all, &env)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The Python of a virtual environment with in-toto-attestation and cryptography.
fn python() -> PathBuf {
    let venv = repo().join("target/in-toto-venv");
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import in_toto_attestation, cryptography"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(made.success(), "cannot create {}", venv.display());
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "in-toto-attestation", "cryptography"])
            .status()
            .expect("pip");
        assert!(
            pip.success(),
            "pip install in-toto-attestation cryptography failed"
        );
    }
    assert!(ready(&python));
    python
}

fn sha256(path: &Path) -> String {
    buildwatch::digest::sha256_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[ignore = "privileged: loads eBPF programs"]
fn evidence_attestation_of_a_real_build_verifies() {
    let ws = workspace();
    let key = ws.path("key.pem");
    let public = ws.path("pub.pem");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        &key.display().to_string(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &key.display().to_string(),
        "-pubout",
        "-out",
        &public.display().to_string(),
    ]);
    let (events, report, att) = (
        ws.path("events.jsonl"),
        ws.path("report.json"),
        ws.path("att.json"),
    );
    let s = |p: &Path| p.display().to_string();
    let out = ws.build(&[
        "ci",
        "--events",
        &s(&events),
        "--report",
        &s(&report),
        "--attestation",
        &s(&att),
        "--attestation-key",
        &s(&key),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Every exec and macro-lib record carries a digest; those of the build's own programs
    // (build scripts, the proc-macro library) are the files' SHA-256.
    let events = read_events(&events);
    let mut checked = 0;
    for e in &events {
        let (path, digest) = match &e.kind {
            EventKind::Exec(x) => (x.image().to_owned(), x.digest.clone()),
            EventKind::MacroLib(m) => (m.path.clone(), m.digest.clone()),
            _ => continue,
        };
        let digest = digest.unwrap_or_else(|| panic!("no digest on {path}"));
        if path.starts_with(&s(&ws.root)) {
            assert_eq!(
                digest.sha256(),
                Some(sha256(Path::new(&path)).as_str()),
                "{path}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "build scripts and the proc-macro hashed: {checked}"
    );

    // The in-toto library accepts the statement; pyca/cryptography verifies the signature.
    let validate = Command::new(python())
        .arg(repo().join("tests/attestation/validate.py"))
        .arg(&att)
        .arg(&public)
        .output()
        .expect("validate.py");
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&validate.stdout).expect("json");
    assert_eq!(summary["signed"], true);
    let subjects = summary["subjects"].as_object().expect("subjects");
    for name in ["target/release/app", "target/release/libtmpl_macro.so"] {
        let file = ws.root.join(name);
        assert_eq!(subjects[name], sha256(&file), "{name}: {subjects:?}");
    }
    // openssl verifies it too, over the DSSE pre-authentication encoding.
    let envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&att).expect("att")).expect("json");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("b64");
    let sig = b64
        .decode(envelope["signatures"][0]["sig"].as_str().expect("sig"))
        .expect("b64");
    let pae = buildwatch::report::attestation::pae("application/vnd.in-toto+json", &payload);
    std::fs::write(ws.path("pae.bin"), &pae).expect("write");
    std::fs::write(ws.path("sig.bin"), &sig).expect("write");
    openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        &s(&public),
        "-rawin",
        "-in",
        &s(&ws.path("pae.bin")),
        "-sigfile",
        &s(&ws.path("sig.bin")),
    ]);
    let mut forged = pae.clone();
    forged.push(b' ');
    std::fs::write(ws.path("pae.bin"), &forged).expect("write");
    let bad = Command::new("openssl")
        .args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &s(&public),
            "-rawin",
            "-in",
        ])
        .arg(ws.path("pae.bin"))
        .arg("-sigfile")
        .arg(ws.path("sig.bin"))
        .output()
        .expect("openssl");
    assert!(!bad.status.success(), "a changed payload must not verify");

    // Replay keeps the recorded digests: the same images, never re-hashed.
    let replayed = ws.path("replayed.json");
    let out = Command::new(bin())
        .args(["replay", "--report"])
        .arg(&replayed)
        .arg(ws.path("events.jsonl"))
        .output()
        .expect("replay");
    assert!(out.status.success());
    assert_eq!(
        read_report(&replayed)["images"],
        read_report(&report)["images"]
    );
}

#[test]
#[ignore = "privileged: loads eBPF programs"]
fn evidence_a_changed_toolchain_program_fails_ci() {
    let ws = workspace();
    let profiles = ws.root.join(".buildwatch/profiles");
    let profiles = profiles.display().to_string();
    let out = ws.build(&["learn", "--profiles", &profiles]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = ws.root.join(".buildwatch/toolchain.toml");
    let text = std::fs::read_to_string(&file).expect("learn wrote toolchain.toml");
    assert!(text.contains("/bin/rustc\" = \""), "{text}");
    // Unchanged: ci passes.
    let report = ws.path("r.json").display().to_string();
    let ci = |ws: &Workspace| ws.build(&["ci", "--profiles", &profiles, "--report", &report]);
    let out = ci(&ws);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // rustc's recorded digest replaced, as if the binary had changed since learn.
    let changed: String = text
        .lines()
        .map(|l| {
            if l.contains("/bin/rustc\" = \"") {
                let (k, _) = l.split_once(" = ").expect("entry");
                format!("{k} = \"{}\"\n", "0".repeat(64))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&file, changed).expect("write");
    let out = ci(&ws);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes = finding_codes(&read_report(Path::new(&report)));
    assert!(
        codes.iter().any(|(c, _)| c == "toolchain-changed"),
        "{codes:?}"
    );
    // A malformed file stops ci before the build, naming file and line.
    std::fs::write(
        &file,
        "version = 1\n[toolchain.\"x\".programs]\n\"/usr/bin/cc\" = 3\n",
    )
    .expect("write");
    let out = ci(&ws);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("toolchain.toml:3:"), "{stderr}");
}

/// Runs action.yml through tests/action/run_action.py; its JSON result.
fn run_action(ws: &Workspace, inputs: &[String]) -> serde_json::Value {
    let temp = ws.path("runner-temp");
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).expect("mkdir");
    // The cache restores this build of buildwatch.
    let bin_dir = ws.home.join(".buildwatch-action/bin");
    std::fs::create_dir_all(&bin_dir).expect("mkdir");
    let _ = std::os::unix::fs::symlink(bin(), bin_dir.join("buildwatch"));
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("tests/action/run_action.py"))
        .arg(repo().join("action.yml"))
        .arg(&ws.root)
        .arg("--temp")
        .arg(&temp)
        .current_dir(&ws.root);
    for input in inputs {
        cmd.arg("--input").arg(input);
    }
    for (k, v) in ws.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run_action.py");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
#[ignore = "privileged: loads eBPF programs"]
fn evidence_the_action_runs_locally() {
    let ws = workspace();
    let result = run_action(&ws, &["command=cargo build --release --offline".to_owned()]);
    assert_eq!(result["failed"], false, "{result:#}");
    let outputs = &result["outputs"];
    assert_eq!(outputs["exit-code"], "0");
    for key in ["report", "sarif", "attestation"] {
        let path = outputs[key].as_str().expect(key);
        assert!(Path::new(path).is_file(), "{key}: {path}");
    }
    let uploads = result["uploads"].as_array().expect("uploads");
    assert_eq!(uploads[0]["sarif"], outputs["sarif"]);
    assert_eq!(
        uploads[1]["paths"],
        serde_json::json!([outputs["report"], outputs["attestation"]])
    );
    let summary = result["summary"].as_str().expect("summary");
    assert!(
        summary.contains("buildwatch") && summary.contains("In-toto attestation"),
        "{summary}"
    );
    // The build fails: the uploads still run and the action fails with the build's status.
    let result = run_action(
        &ws,
        &["command=false".to_owned(), "attestation=false".to_owned()],
    );
    assert_eq!(result["failed"], true);
    assert_eq!(result["outputs"]["exit-code"], "1");
    assert_eq!(result["outputs"]["attestation"], "");
    assert!(result["uploads"][0]["sarif"].is_string(), "{result:#}");
}
