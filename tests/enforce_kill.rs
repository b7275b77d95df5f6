//! Kill mode (`ci --enforce`), end to end, with `tests/fixtures/enforce-kill` built by a user the
//! test creates (and removes), in a throwaway HOME holding an SSH key, a `.bashrc`, a `.profile`
//! and an autostart directory:
//! - a build script and a proc-macro that read `~/.ssh/id_rsa` and send it to a loopback
//!   listener the test runs are killed when the open returns: the listener receives nothing,
//!   the findings say `killed`, cargo's error output names both crates, `ci` exits 3;
//! - an append to `~/.bashrc` leaves it unchanged; what the open itself does before the kill is
//!   measured: `O_TRUNC` empties `~/.profile`, `O_CREAT` leaves an empty autostart entry
//!   (docs/evasion.md);
//! - a program run from a memfd never runs its payload;
//! - a benign build (a build script running rustc and writing OUT_DIR, a derive) completes with
//!   no kill.
//!
//! The build user cannot reach root's toolchain (/root is private), so the test gives it a
//! hard-linked copy of the sysroot in its throwaway directory.
mod support;

use std::{
    io::Read as _,
    net::TcpListener,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use serde_json::Value;
use support::{TestUser, bin, copy_fixture, hardlink_toolchain, read_report, require_root};

const USER: &str = "bwkill";

/// The fixture workspace `which`, a toolchain the user can run, and its HOME.
struct Setup {
    dir: tempfile::TempDir,
    _user: TestUser,
}

impl Setup {
    fn new(which: &str, prepare_home: impl FnOnce(&Path)) -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let home = dir.path().join("home");
        let user = TestUser::create(USER, &home);
        hardlink_toolchain(&dir.path().join("toolchain"));
        let ws = dir.path().join("ws");
        for d in [&home, &ws] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        copy_fixture(&format!("enforce-kill/{which}"), &ws);
        prepare_home(&home);
        let status = Command::new("chown")
            .args(["-R", &format!("{USER}:")])
            .args([&home, &ws])
            .status()
            .expect("chown");
        assert!(status.success());
        Self { dir, _user: user }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `buildwatch ci --enforce --user bwkill -- cargo build --offline --keep-going`.
    fn ci(&self, env: &[(&str, String)]) -> Output {
        let path = |s: &str| self.path(s).display().to_string();
        let args = [
            "ci",
            "--no-tui",
            "--enforce",
            "--user",
            USER,
            "--profiles",
            &path("no-profiles"),
            "--report",
            &path("report.json"),
            "--summary",
            &path("summary.md"),
            "--sarif",
            &path("report.sarif"),
            "--events",
            &path("events.jsonl"),
            "--",
            "cargo",
            "build",
            "--offline",
            "--keep-going",
        ];
        let toolchain_bin = self.path("toolchain/bin");
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(self.path("ws"))
            .env("PATH", format!("{}:/usr/bin:/bin", toolchain_bin.display()))
            .env("CARGO_HOME", self.path("home/.cargo"))
            .env_remove("RUSTUP_HOME")
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("SUDO_UID")
            .env_remove("GITHUB_ENV")
            .env_remove("GITHUB_STEP_SUMMARY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run buildwatch")
    }
}

/// A loopback listener that keeps every byte any connection sends.
fn listener() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = l.local_addr().expect("addr").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let mut bytes = Vec::new();
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = (&stream).read_to_end(&mut bytes);
            // Connecting at all counts: a marker byte even for an empty send.
            let mut all = sink.lock().expect("lock");
            all.push(b'#');
            all.extend(bytes);
        }
    });
    (port, got)
}

/// The finding `code` on `krate`, which must be an error that says it was killed.
fn killed_finding<'a>(report: &'a Value, code: &str, krate: &str, stderr: &str) -> &'a Value {
    let f = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == code && f["crate"]["name"] == krate)
        .unwrap_or_else(|| {
            panic!(
                "no {code} finding on {krate}: {:#}\n{stderr}",
                report["findings"]
            )
        });
    assert_eq!(f["severity"], "error", "{f:#}");
    assert_eq!(f["killed"], true, "{f:#}");
    let detail = f["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("killed by --enforce"), "{detail}");
    f
}

const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nbuildwatch-kill-test-key\n";

#[test]
#[ignore = "needs root: creates a user and loads the eBPF programs"]
fn hostile_build_code_is_killed_before_its_act_takes_effect() {
    let setup = Setup::new("hostile", |home| {
        std::fs::write(home.join(".buildwatch-kill"), "armed\n").expect("marker");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir .ssh");
        std::fs::write(home.join(".ssh/id_rsa"), KEY).expect("key");
        std::fs::set_permissions(
            home.join(".ssh/id_rsa"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod key");
        std::fs::write(home.join(".bashrc"), "original bashrc\n").expect("bashrc");
        std::fs::write(home.join(".profile"), "original profile\n").expect("profile");
        std::fs::create_dir_all(home.join(".config/autostart")).expect("mkdir autostart");
    });
    let (port, received) = listener();
    let out = setup.ci(&[("KILL_PORT", port.to_string())]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = read_report(&setup.path("report.json"));
    assert_eq!(out.status.code(), Some(3), "findings fail ci:\n{stderr}");
    assert_eq!(report["lost_events"], 0, "no events lost");

    // Nothing reached the listener: neither the build script nor the proc-macro got the key.
    thread::sleep(Duration::from_millis(300));
    let got = received.lock().expect("lock").clone();
    assert!(
        got.is_empty(),
        "the listener received {:?}\n{stderr}",
        String::from_utf8_lossy(&got)
    );

    let bs = killed_finding(&report, "sensitive-read", "secret-bs", &stderr);
    assert_eq!(bs["role"], "build-script", "{bs:#}");
    let pm = killed_finding(&report, "sensitive-read", "secret-pm", &stderr);
    assert_eq!(pm["role"], "proc-macro", "{pm:#}");
    // cargo's own error output names both: the build script's crate, and the proc-macro on the
    // command line of the rustc that died.
    assert!(
        stderr.contains("failed to run custom build command for `secret-bs"),
        "{stderr}"
    );
    assert!(stderr.contains("could not compile `uses-pm`"), "{stderr}");
    assert!(stderr.contains("secret_pm"), "{stderr}");

    // The append never happened.
    killed_finding(&report, "persistence-write", "rc-append", &stderr);
    let home = setup.path("home");
    assert_eq!(
        std::fs::read_to_string(home.join(".bashrc")).expect("bashrc"),
        "original bashrc\n"
    );
    // What the open itself does before the kill (measured for docs/evasion.md): O_TRUNC
    // truncated, O_CREAT created, and nothing was written after.
    killed_finding(&report, "persistence-write", "profile-trunc", &stderr);
    assert_eq!(
        std::fs::read_to_string(home.join(".profile")).expect("profile"),
        "",
        "O_TRUNC happens in the open, before the kill"
    );
    killed_finding(&report, "persistence-write", "autostart-create", &stderr);
    assert_eq!(
        std::fs::metadata(home.join(".config/autostart/evil.desktop"))
            .expect("O_CREAT happens in the open, before the kill")
            .len(),
        0
    );

    // The program run from memory never ran its payload.
    let memfd = killed_finding(&report, "fileless-exec", "memfd-exec", &stderr);
    assert_eq!(memfd["role"], "build-script", "{memfd:#}");
    assert!(!home.join("memfd-ran").exists(), "the memfd payload ran");

    // Every output says so.
    let sarif = read_report(&setup.path("report.sarif"));
    let killed_results = sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["properties"]["killed"] == true)
        .count();
    assert!(killed_results >= 6, "{sarif:#}");
    let summary = std::fs::read_to_string(setup.path("summary.md")).expect("summary");
    assert!(summary.contains("killed by --enforce"), "{summary}");
    assert!(stderr.contains("killed by --enforce"), "{stderr}");
    // The kernel's own word on each kill.
    let events = std::fs::read_to_string(setup.path("events.jsonl")).expect("events");
    let kills = events
        .lines()
        .filter(|l| l.contains("\"kind\":\"killed\""))
        .count();
    assert!(kills >= 6, "{kills} killed events");
}

#[test]
#[ignore = "needs root: creates a user and loads the eBPF programs"]
fn a_benign_build_completes_with_no_kill() {
    let setup = Setup::new("benign", |home| {
        std::fs::write(home.join(".buildwatch-kill"), "armed\n").expect("marker");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir .ssh");
        std::fs::write(home.join(".ssh/id_rsa"), KEY).expect("key");
        std::fs::write(home.join(".bashrc"), "original bashrc\n").expect("bashrc");
    });
    let out = setup.ci(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = read_report(&setup.path("report.json"));
    assert_eq!(report["exit_status"], 0, "the build completed\n{stderr}");
    let killed: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["killed"] == true)
        .collect();
    assert!(killed.is_empty(), "{killed:#?}");
    let events = std::fs::read_to_string(setup.path("events.jsonl")).expect("events");
    assert!(
        !events.contains("\"kind\":\"killed\""),
        "a kill in a benign build"
    );
}
