//! Shared helpers for the end-to-end tests: running the real `buildwatch` binary and reading the
//! events it wrote.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use buildwatch::model::{Event, EventKind};

pub mod guarded;
pub mod tmux;

/// A throwaway build user `name` whose HOME is `home`, removed on drop (also when the test
/// fails). Each test binary has a name of its own, so that binaries can run side by side.
pub struct TestUser {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    pub fn create(name: &'static str, home: &Path) -> Self {
        let _ = Command::new("userdel").arg(name).output();
        let out = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", "--home-dir"])
            .arg(home)
            .arg(name)
            .output()
            .expect("run useradd");
        assert!(out.status.success(), "useradd: {out:?}");
        let user = nix::unistd::User::from_name(name)
            .expect("lookup")
            .expect("the user just created");
        Self {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(self.name).output();
    }
}

/// A hard-linked copy of the running toolchain's sysroot at `dst`: a toolchain a test user can
/// run (root's rustup home is not theirs), made of the same files (identities).
pub fn hardlink_toolchain(dst: &Path) {
    let sysroot = String::from_utf8(
        Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .expect("rustc --print sysroot")
            .stdout,
    )
    .expect("utf-8");
    let status = Command::new("cp")
        .arg("-al")
        .arg(sysroot.trim())
        .arg(dst)
        .status()
        .expect("cp -al");
    assert!(status.success(), "hard-link the toolchain");
}

/// The buildwatch binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_buildwatch")
}

/// The repository's top level.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("monitor/ has a parent")
        .to_path_buf()
}

/// The Python helper with the process behaviours.
pub fn procs() -> PathBuf {
    repo().join("tests/support/procs.py")
}

/// Privileged tests load the real eBPF programs: they need root. They are `#[ignore]`d in plain
/// `cargo test` and run by `cargo xtask test`.
pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test loads eBPF programs and needs root: run `cargo xtask test` (as root)"
    );
}

/// A finished buildwatch run.
pub struct Run {
    pub output: Output,
    pub events: Vec<Event>,
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Events of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.kind.name() == kind)
    }

    /// Open events whose path is `path`.
    pub fn opens_of<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a Event> + 'a {
        let path = path.to_string_lossy().into_owned();
        self.events
            .iter()
            .filter(move |e| matches!(&e.kind, EventKind::Open(o) if o.path == path))
    }

    /// The exec events of `program` (by file name of the image).
    pub fn execs_of<'a>(&'a self, program: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| {
            matches!(&e.kind, EventKind::Exec(x) if x.image().rsplit('/').next() == Some(program))
        })
    }

    /// Summary text for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\nstderr:\n{}\n{} events",
            self.code(),
            self.stderr(),
            self.events.len()
        )
    }
}

/// Runs `buildwatch [args] --events <tmp>/events.jsonl -- cmd...` and reads the events back.
pub fn watch(args: &[&str], cmd: &[&str]) -> Run {
    watch_in(tempfile::tempdir().expect("tempdir"), args, cmd)
}

/// As [`watch`], in an existing temporary directory (also the working directory).
pub fn watch_in(dir: tempfile::TempDir, args: &[&str], cmd: &[&str]) -> Run {
    let events = dir.path().join("events.jsonl");
    let output = Command::new(bin())
        .args(args)
        .arg("--no-tui")
        .arg("--events")
        .arg(&events)
        .arg("--")
        .args(cmd)
        .current_dir(dir.path())
        .output()
        .expect("run buildwatch");
    let events = read_events(&events);
    Run {
        output,
        events,
        dir,
    }
}

/// Reads a JSON Lines events file (empty if missing).
pub fn read_events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l}: {e}")))
        .collect()
}

/// Copies a fixture workspace (without any target/) into `dst`; symbolic links (a module shared
/// with another fixture) are copied as the files they point to.
pub fn copy_fixture(name: &str, dst: &Path) {
    let src = repo().join("tests/fixtures").join(name);
    let status = Command::new("cp")
        .arg("-rL")
        .arg(format!("{}/.", src.display()))
        .arg(dst)
        .status()
        .expect("cp");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(dst.join("target"));
}

/// The real CARGO_HOME / RUSTUP_HOME (for builds run with a fake HOME).
pub fn real_home_dir(var: &str, default: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| format!("{}/{default}", std::env::var("HOME").expect("HOME")))
}

/// Runs `buildwatch <args>` (args include the command after `--`) in `dir`, with `env`.
pub fn buildwatch_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run buildwatch")
}

/// The JSON report written by `--report`.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("report {}: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

/// (code, crate) of every finding in a report, sorted.
pub fn finding_codes(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_owned(),
                f["crate"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}
