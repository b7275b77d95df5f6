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
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    bin,
    guarded::{Guard, World},
};

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
    let programs = guard.ids_after("program ids");
    let maps = guard.ids_after("map ids");
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

#[test]
#[ignore = "privileged: creates a user and loads the eBPF programs"]
fn guard_enforce_kills_and_refuses_in_builds_it_did_not_start() {
    let world = World::new();
    let guard = Guard::start_with(world.dir.path(), &["--enforce"]);
    let started = guard.stderr();
    assert!(
        !started.contains("io_uring are not seen"),
        "the socket hooks are on the cgroup2 root: {started}"
    );

    // Kill mode: keyscan's build script opens the user's key and dies before reading it; the
    // build fails.
    let ws_kill = world.workspace("ws-kill");
    let out = world
        .as_user(&ws_kill, "cargo build --offline -p keyscan")
        .output()
        .expect("run the build");
    assert!(!out.status.success(), "the build failed: {out:?}");
    let found = guard.wait_finding(&ws_kill, "sensitive-read");
    let f = found
        .iter()
        .find(|f| f["code"] == "sensitive-read" && f["crate"]["name"] == "keyscan")
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(f["killed"], true, "{f:#}");
    assert!(
        f["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("killed by --enforce"),
        "{f:#}"
    );

    // Network refusal: netprobe's build script connects to the listener and is refused (it
    // ignores the error, so the build succeeds); the listener gets nothing.
    let ws_net = world.workspace("ws-net");
    world.run(&ws_net, "cargo build --offline -p netprobe");
    let found = guard.wait_finding(&ws_net, "unexpected-network");
    let f = found
        .iter()
        .find(|f| f["code"] == "unexpected-network" && f["crate"]["name"] == "netprobe")
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert!(
        f["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("refused by --enforce"),
        "{f:#}"
    );
    assert!(
        matches!(world.listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "netprobe's connection was refused"
    );

    // A benign build is held and let go at each build script's exec, and has no findings.
    let ws_benign = world.workspace("ws-benign");
    world.run(
        &ws_benign,
        "cargo build --offline -p benign-bs -p benign-derive",
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(guard.findings_in(&ws_benign), Vec::<Value>::new());

    // The rest of the machine is not refused: the test itself reaches the listener.
    let addr = world.listener.local_addr().expect("addr");
    std::net::TcpStream::connect(addr).expect("an unwatched process connects");
    let start = Instant::now();
    loop {
        match world.listener.accept() {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept: {e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no connection");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut guard = guard;
    // SAFETY: kill(2) on the guard, our child.
    unsafe { libc::kill(guard.child.id() as i32, libc::SIGTERM) };
    let status = guard.child.wait().expect("wait for the guard");
    assert_eq!(status.code(), Some(0), "{}", guard.stderr());
    assert!(
        !guard.stderr().contains("enforcing:"),
        "no enforcement errors: {}",
        guard.stderr()
    );
}
