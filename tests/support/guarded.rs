//! The world of the guard's tests: a build user of its own, the guard as a child of the test
//! (`--log` to a temporary file, the journal pointed nowhere so that its messages come on
//! stderr), a hard-linked copy of the toolchain (the guard must recognise its cargo and rustc by
//! identity, not by path), copies of the hostile fixture owned by the user, and builds started
//! *beside* the guard as that user, never under it.
use std::{
    net::TcpListener,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{bin, copy_fixture, hardlink_toolchain, require_root};

pub const USER: &str = "bwguarded";

pub use super::TestUser;

/// The guard, a child of the test; killed on drop if the test did not stop it.
pub struct Guard {
    pub child: Child,
    pub stderr: PathBuf,
    pub log: PathBuf,
    pub socket: PathBuf,
}

impl Guard {
    /// The ids the guard printed at start after `label` (`program ids`, `map ids`).
    pub fn ids_after(&self, label: &str) -> Vec<u32> {
        let stderr = self.stderr();
        let start = stderr.find(label).expect(label) + label.len();
        let rest = &stderr[start..];
        let list = &rest[rest.find('[').expect("[") + 1..rest.find(']').expect("]")];
        list.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// The guard with `extra` options.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let stderr = dir.join("guard.stderr");
        let log = dir.join("guard.jsonl");
        let socket = dir.join("guard.sock");
        let child = Command::new(bin())
            .args(["guard", "--no-notify", "--grace", "5", "--log"])
            .arg(&log)
            .arg("--socket")
            .arg(&socket)
            .arg("--journal-socket")
            .arg(dir.join("no-journal"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start the guard");
        let guard = Self {
            child,
            stderr,
            log,
            socket,
        };
        guard.wait_stderr("watching every build", Duration::from_secs(120));
        guard
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn wait_stderr(&self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.stderr();
            if s.contains(text) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "the guard did not say `{text}`:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The log's findings of builds in `ws`.
    pub fn findings_in(&self, ws: &Path) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let ws = ws.display().to_string();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .filter(|f| f["workspace"].as_str() == Some(ws.as_str()))
            .collect()
    }

    /// Waits until the log has a finding of `ws` with `code` (builds are reported when they end).
    pub fn wait_finding(&self, ws: &Path, code: &str) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let found = self.findings_in(ws);
            if found.iter().any(|f| f["code"] == code) {
                return found;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {code} finding for {} in the log; its findings: {found:#?}\nguard:\n{}",
                ws.display(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn status(&self) -> String {
        let out = Command::new(bin())
            .args(["guard", "--status", "--socket"])
            .arg(&self.socket)
            .output()
            .expect("guard --status");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's world: a user, its home with a fake key, a hard-linked toolchain, a listener.
pub struct World {
    pub dir: tempfile::TempDir,
    pub user: TestUser,
    pub listener: TcpListener,
}

impl World {
    pub fn new() -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
        std::fs::write(home.join(".ssh/id_rsa"), "FAKE KEY\n").expect("key");
        let user = TestUser::create(USER, &home);
        // Hard links: the same files (identities) as the toolchain the guard knows, under
        // another path.
        hardlink_toolchain(&dir.path().join("toolchain"));
        let status = Command::new("chown")
            .args(["-R", &format!("{USER}:")])
            .arg(&home)
            .status()
            .expect("chown");
        assert!(status.success());
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        listener.set_nonblocking(true).expect("nonblocking");
        Self {
            dir,
            user,
            listener,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A fresh copy of the hostile fixture, owned by the user; its canonical path.
    pub fn workspace(&self, name: &str) -> PathBuf {
        let ws = self.path(name);
        std::fs::create_dir_all(&ws).expect("mkdir");
        copy_fixture("hostile", &ws);
        let status = Command::new("chown")
            .args(["-R", &format!("{USER}:")])
            .arg(&ws)
            .status()
            .expect("chown");
        assert!(status.success());
        ws.canonicalize().expect("canonical")
    }

    /// `sh -c script` in `ws` as the user, with the hard-linked toolchain first on PATH; not
    /// started by buildwatch in any way.
    pub fn as_user(&self, ws: &Path, script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .current_dir(ws)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("toolchain/bin").display()),
            )
            .env("HOME", self.path("home"))
            .env("CARGO_HOME", self.path("home/.cargo"))
            .env("BW_PORT", self.port().to_string())
            .env("CARGO_TERM_COLOR", "never")
            .uid(self.user.uid)
            .gid(self.user.gid);
        cmd
    }

    pub fn run(&self, ws: &Path, script: &str) {
        let out = self.as_user(ws, script).output().expect("run the build");
        assert!(
            out.status.success(),
            "`{script}` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }
}
