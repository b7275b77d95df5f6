//! `buildwatch guard` end to end: the guard runs as a child of the test (with `--log` to a
//! temporary file, the journal pointed nowhere so that its messages come on stderr), and builds
//! of the hostile fixture are started *beside* it, never under it, by a user of their own with a
//! hard-linked copy of the toolchain (the guard must recognise its cargo and rustc by identity,
//! not by path): a plain `cargo build`, a plain `cargo check` of a workspace with profiles of
//! its own, and an editor stand-in that runs `cargo check --message-format=json` and reads its
//! messages. Their findings must be in the log with exact crate, version and role; a benign
//! build's workspace gets none; SIGTERM leaves the running build alone, reports it unfinished,
//! and leaves no program, map or cgroup behind.
mod support;

use std::{
    io::{BufRead as _, BufReader, Read as _},
    net::TcpListener,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{bin, copy_fixture, require_root};

const USER: &str = "bwguarded";

/// The build user, removed on drop.
struct TestUser {
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(home: &Path) -> Self {
        let _ = Command::new("userdel").arg(USER).output();
        let out = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", "--home-dir"])
            .arg(home)
            .arg(USER)
            .output()
            .expect("run useradd");
        assert!(out.status.success(), "useradd: {out:?}");
        let user = nix::unistd::User::from_name(USER)
            .expect("lookup")
            .expect("the user just created");
        Self {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(USER).output();
    }
}

/// The guard, a child of the test; killed on drop if the test did not stop it.
struct Guard {
    child: Child,
    stderr: PathBuf,
    log: PathBuf,
    socket: PathBuf,
}

impl Guard {
    fn start(dir: &Path) -> Self {
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

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_stderr(&self, text: &str, timeout: Duration) -> String {
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
    fn findings_in(&self, ws: &Path) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let ws = ws.display().to_string();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .filter(|f| f["workspace"].as_str() == Some(ws.as_str()))
            .collect()
    }

    /// Waits until the log has a finding of `ws` with `code` (builds are reported when they end).
    fn wait_finding(&self, ws: &Path, code: &str) -> Vec<Value> {
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

    fn status(&self) -> String {
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
struct World {
    dir: tempfile::TempDir,
    user: TestUser,
    listener: TcpListener,
}

impl World {
    fn new() -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
        std::fs::write(home.join(".ssh/id_rsa"), "FAKE KEY\n").expect("key");
        let user = TestUser::create(&home);
        let sysroot = String::from_utf8(
            Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .expect("rustc --print sysroot")
                .stdout,
        )
        .expect("utf-8");
        // Hard links: the same files (identities) as the toolchain the guard knows, under
        // another path.
        let status = Command::new("cp")
            .arg("-al")
            .arg(sysroot.trim())
            .arg(dir.path().join("toolchain"))
            .status()
            .expect("cp -al");
        assert!(status.success(), "hard-link the toolchain");
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

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A fresh copy of the hostile fixture, owned by the user; its canonical path.
    fn workspace(&self, name: &str) -> PathBuf {
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
    fn as_user(&self, ws: &Path, script: &str) -> Command {
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

    fn run(&self, ws: &Path, script: &str) {
        let out = self.as_user(ws, script).output().expect("run the build");
        assert!(
            out.status.success(),
            "`{script}` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }
}

/// The fixture's crates and their versions.
fn version_of(krate: &str) -> &'static str {
    match krate {
        "keyscan" => "0.1.4",
        "netprobe" => "0.3.1",
        other => panic!("no version known for {other}"),
    }
}

/// The finding of `code` on `krate`, checked to be an error of `role` of `krate` at its
/// version, exact, of a build whose command contains `command`.
fn assert_finding(findings: &[Value], code: &str, krate: &str, role: &str, command: &str) {
    let f = findings
        .iter()
        .find(|f| f["code"] == code && f["crate"]["name"] == krate)
        .unwrap_or_else(|| panic!("no {code} on {krate}: {findings:#?}"));
    assert_eq!(f["crate"]["version"], version_of(krate), "{f:#}");
    assert_eq!(f["role"], role, "{f:#}");
    assert_eq!(f["severity"], "error", "fails ci by default: {f:#}");
    assert_eq!(f["exact"], true, "{f:#}");
    assert_eq!(f["unfinished"], false, "{f:#}");
    let cmd: Vec<&str> = f["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        cmd.join(" ").contains(command),
        "the build's command {cmd:?} is `{command}`: {f:#}"
    );
}

fn ids_after(stderr: &str, label: &str) -> Vec<u32> {
    let start = stderr.find(label).expect(label) + label.len();
    let rest = &stderr[start..];
    let list = &rest[rest.find('[').expect("[") + 1..rest.find(']').expect("]")];
    list.split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Whether the kernel still has the BPF object with `id` (`BPF_PROG_GET_FD_BY_ID` = 13,
/// `BPF_MAP_GET_FD_BY_ID` = 14).
fn bpf_object_exists(cmd: libc::c_long, id: u32) -> bool {
    let mut attr = [0u8; 128];
    attr[..4].copy_from_slice(&id.to_ne_bytes());
    // SAFETY: bpf(2) reads `size` bytes of `attr`, a zeroed buffer holding the id.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if fd >= 0 {
        // SAFETY: closing the descriptor just returned.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
}

#[test]
#[ignore = "privileged: creates a user and loads the eBPF programs"]
fn builds_nobody_asked_to_watch_are_checked_and_shutdown_leaves_nothing() {
    let world = World::new();
    let cgroups_before = buildwatch_cgroups();
    let guard = Guard::start(world.dir.path());
    let started = guard.stderr();
    let programs = ids_after(&started, "program ids");
    let maps = ids_after(&started, "map ids");
    assert!(programs.len() > 10 && !maps.is_empty(), "{started}");
    // A second guard cannot start beside it, and says so loudly.
    let second = Command::new(bin())
        .args(["guard", "--socket"])
        .arg(&guard.socket)
        .arg("--journal-socket")
        .arg(world.path("no-journal"))
        .output()
        .expect("a second guard");
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stderr)
            .contains("not watching builds: another guard is running"),
        "{second:?}"
    );

    // 1. A developer's plain `cargo build`, in a workspace without profiles: shipped profiles
    //    and the default policy.
    let ws_build = world.workspace("ws-build");
    world.run(&ws_build, "cargo build --offline -p keyscan -p netprobe");
    let found = guard.wait_finding(&ws_build, "sensitive-read");
    assert_finding(
        &found,
        "sensitive-read",
        "keyscan",
        "build-script",
        "cargo build",
    );
    let found = guard.wait_finding(&ws_build, "unexpected-network");
    assert_finding(
        &found,
        "unexpected-network",
        "netprobe",
        "build-script",
        "cargo build",
    );

    // 2. A plain `cargo check` in a workspace whose own profile accepts keyscan's read: found
    //    from the build's directory, exactly as ci would use it.
    let ws_check = world.workspace("ws-check");
    std::fs::create_dir_all(ws_check.join(".buildwatch/profiles")).expect("mkdir");
    std::fs::write(
        ws_check.join(".buildwatch/profiles/keyscan.toml"),
        "schema = 1\ncrate = \"keyscan\"\n\n[build-script]\nsensitive-read = [\"${HOME}/.ssh/id_rsa\"]\n",
    )
    .expect("profile");
    world.run(
        &ws_check.join("app"),
        "cargo check --offline -p keyscan -p netprobe",
    );
    let found = guard.wait_finding(&ws_check, "unexpected-network");
    assert_finding(
        &found,
        "unexpected-network",
        "netprobe",
        "build-script",
        "cargo check",
    );
    assert!(
        !found.iter().any(|f| f["code"] == "sensitive-read"),
        "the workspace's profile accepts keyscan's read: {found:#?}"
    );

    // 3. An editor stand-in: starts `cargo check --message-format=json` and reads its
    //    messages, as rust-analyzer does on save.
    let ws_editor = world.workspace("ws-editor");
    let mut editor = world
        .as_user(
            &ws_editor,
            "exec cargo check --offline --message-format=json -p keyscan",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the editor's check");
    let messages: Vec<String> = BufReader::new(editor.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(editor.wait().expect("wait").success());
    assert!(
        messages
            .iter()
            .any(|m| m.contains("\"reason\":\"build-script-executed\"")),
        "the editor saw the build script run: {messages:?}"
    );
    let found = guard.wait_finding(&ws_editor, "sensitive-read");
    assert_finding(
        &found,
        "sensitive-read",
        "keyscan",
        "build-script",
        "--message-format=json",
    );

    // 4. A benign build: no findings for its workspace.
    let ws_benign = world.workspace("ws-benign");
    world.run(
        &ws_benign,
        "cargo build --offline -p benign-bs -p benign-derive",
    );
    // Its end is reported like any other; give it the time the hostile ones took.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        guard.findings_in(&ws_benign),
        Vec::<Value>::new(),
        "a benign build has no findings"
    );

    // 5. SIGTERM while a build runs: a rustc reading its source from a pipe the test holds.
    let mut running = world
        .as_user(
            &ws_benign,
            "exec rustc --crate-type lib --crate-name probe -",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rustc");
    let rustc_pid = running.id();
    let start = Instant::now();
    loop {
        let status = guard.status();
        if status.contains(&format!("pid {rustc_pid} ")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the running build is not in the status:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut guard = guard;
    // SAFETY: kill(2) on the guard, our child.
    unsafe { libc::kill(guard.child.id() as i32, libc::SIGTERM) };
    let status = guard.child.wait().expect("wait for the guard");
    assert_eq!(status.code(), Some(0), "{}", guard.stderr());
    let stderr = guard.stderr();
    assert!(
        stderr.contains(&format!("build {rustc_pid} (`rustc --crate-type lib")),
        "the running build is reported unfinished:\n{stderr}"
    );
    // Not killed: it still compiles what it is given.
    assert!(
        Path::new(&format!("/proc/{rustc_pid}")).exists(),
        "the build was left running"
    );
    {
        let mut stdin = running.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, b"pub fn f() {}\n").expect("write source");
    }
    let mut err = String::new();
    let _ = running
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut err));
    assert!(running.wait().expect("rustc").success(), "{err}");
    assert!(!guard.socket.exists(), "the status socket is removed");

    // Nothing left behind: every program and map freed (the detaching is done by a reaper
    // after the guard exits), and no cgroup made.
    let start = Instant::now();
    loop {
        let left: Vec<u32> = programs
            .iter()
            .copied()
            .filter(|id| bpf_object_exists(13, *id))
            .chain(maps.iter().copied().filter(|id| bpf_object_exists(14, *id)))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "BPF objects left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let pid = guard.child.id();
    let made: Vec<String> = buildwatch_cgroups()
        .into_iter()
        .filter(|c| !cgroups_before.contains(c) && c.contains(&format!("-{pid}-")))
        .collect();
    assert!(made.is_empty(), "cgroups left behind: {made:?}");
}

/// buildwatch's cgroups (`buildwatch-PID-...`) under the cgroup2 mount, if any.
fn buildwatch_cgroups() -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let Some(root) = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"cgroup2"))
        .and_then(|f| f.get(1).map(|s| (*s).to_owned()))
    else {
        return Vec::new();
    };
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("buildwatch-"))
                .collect()
        })
        .unwrap_or_default()
}
