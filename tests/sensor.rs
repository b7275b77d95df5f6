//! The sensor end to end: real eBPF programs, real processes, the real `buildwatch` binary.
//!
//! Privileged tests are `#[ignore]`d in plain `cargo test` (they need root) and run by
//! `cargo xtask test`, single-threaded.
mod support;

use std::{
    collections::HashSet,
    io::Read as _,
    net::TcpListener,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use buildwatch::model::{EventKind, Open, SocketFamily};
use support::{bin, procs, require_root, watch, watch_in};

fn open_kind(e: &buildwatch::model::Event) -> &Open {
    match &e.kind {
        EventKind::Open(o) => o,
        other => panic!("not an open: {other:?}"),
    }
}

/// The real Python interpreter (not a pyenv shim, whose bash scripts would fork and exec on
/// their own).
fn python_exe() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed by the sensor tests");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn python(run_args: &[&str]) -> Vec<String> {
    let mut v = vec![python_exe(), procs().display().to_string()];
    v.extend(run_args.iter().map(|s| s.to_string()));
    v
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn shell_running_cat_sees_exec_and_open_with_the_absolute_path() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let known = dir.path().join("known.txt");
    std::fs::write(&known, "hello").expect("write");
    // A relative path from the working directory: the event must carry the absolute path.
    let run = watch_in(dir, &[], &["sh", "-c", "cat known.txt > /dev/null"]);
    assert_eq!(run.code(), Some(0), "{}", run.describe());

    let cat = run
        .execs_of("cat")
        .next()
        .unwrap_or_else(|| panic!("no exec of cat\n{}", run.describe()));
    let EventKind::Exec(exec) = &cat.kind else {
        unreachable!()
    };
    assert_eq!(exec.argv, ["cat", "known.txt"]);
    let sh = run
        .events
        .iter()
        .find(|e| e.kind.name() == "exec")
        .expect("first exec");
    assert_eq!(cat.ppid, sh.pid, "cat's parent is the shell");

    let known = known.canonicalize().expect("canonical");
    let open = run
        .opens_of(&known)
        .next()
        .unwrap_or_else(|| panic!("no open of {}\n{}", known.display(), run.describe()));
    let o = open_kind(open);
    assert_eq!(open.pid, cat.pid, "opened by cat");
    assert!(o.result >= 0, "successful open: {o:?}");
    assert_eq!(o.requested.as_deref(), Some("known.txt"));
    assert!(
        run.of_kind("open").all(|e| !open_kind(e).path.is_empty()),
        "an empty path is a bug"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn failed_open_has_a_negative_result() {
    require_root();
    let run = watch(&[], &["cat", "/nonexistent-buildwatch/file"]);
    assert_eq!(
        run.code(),
        Some(1),
        "cat's own status passes through\n{}",
        run.describe()
    );
    let open = run
        .opens_of(Path::new("/nonexistent-buildwatch/file"))
        .next()
        .unwrap_or_else(|| panic!("no failed open\n{}", run.describe()));
    let o = open_kind(open);
    assert_eq!(o.result, -2);
    assert_eq!(o.error.as_deref(), Some("ENOENT"));
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn connect_to_a_loopback_listener_has_address_and_port() {
    require_root();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let accept = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf
    });
    let cmd = python(&["connect", "127.0.0.1", &port.to_string()]);
    let run = watch(&[], &as_strs(&cmd));
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert_eq!(accept.join().expect("listener"), b"hello");
    let connect = run
        .of_kind("connect")
        .find_map(|e| match &e.kind {
            EventKind::Connect(c) if c.family == SocketFamily::Inet && c.port == port => Some(c),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no connect to port {port}\n{}", run.describe()));
    assert_eq!(connect.addr, "127.0.0.1");
    // Python connects with a timeout, i.e. non-blocking: EINPROGRESS, then poll.
    assert!(
        connect.result == 0 || connect.error.as_deref() == Some("EINPROGRESS"),
        "{connect:?}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn double_forked_grandchild_keeps_its_original_ancestry() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("grandchild-was-here");
    std::fs::write(&marker, "").expect("write");
    let marker = marker.canonicalize().expect("canonical");
    let cmd = python(&["double-fork", &marker.display().to_string(), "0.3"]);
    let run = watch_in(dir, &[], &as_strs(&cmd));
    assert_eq!(run.code(), Some(0), "{}", run.describe());

    let top = run
        .of_kind("exec")
        .next()
        .map(|e| e.pid)
        .unwrap_or_else(|| panic!("no exec\n{}", run.describe()));
    let forks: Vec<(u32, u32)> = run
        .of_kind("fork")
        .filter_map(|e| match &e.kind {
            EventKind::Fork(f) => Some((e.pid, f.child_pid)),
            _ => None,
        })
        .collect();
    let child = forks
        .iter()
        .find(|(parent, _)| *parent == top)
        .map(|(_, c)| *c)
        .expect("top forked a child");
    let grandchild = forks
        .iter()
        .find(|(parent, _)| *parent == child)
        .map(|(_, c)| *c)
        .expect("child forked");
    let open = run
        .opens_of(&marker)
        .next()
        .unwrap_or_else(|| panic!("grandchild's open missing\n{}", run.describe()));
    assert_eq!(open.pid, grandchild);
    assert_eq!(
        open.ppid, child,
        "ancestry recorded at fork, not the re-parented one"
    );
    // The intermediate child really was gone when the grandchild opened the file.
    let child_exit = run
        .of_kind("exit")
        .find(|e| e.pid == child)
        .expect("child exit");
    assert!(
        child_exit.time_ns < open.time_ns,
        "the grandchild outlived its parent"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn threads_are_not_mistaken_for_processes() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("shared.txt");
    std::fs::write(&file, "x").expect("write");
    let file = file.canonicalize().expect("canonical");
    let cmd = python(&["threads", "8", &file.display().to_string()]);
    let run = watch_in(dir, &[], &as_strs(&cmd));
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let opens: Vec<_> = run.opens_of(&file).collect();
    assert_eq!(opens.len(), 40, "8 threads x 5 opens\n{}", run.describe());
    let pids: HashSet<u32> = opens.iter().map(|e| e.pid).collect();
    let tids: HashSet<u32> = opens.iter().map(|e| e.tid).collect();
    assert_eq!(pids.len(), 1, "one process");
    assert!(tids.len() >= 8, "eight threads, got tids {tids:?}");
    assert!(
        !tids.contains(&opens[0].pid),
        "the opens came from the worker threads"
    );
    assert_eq!(
        run.of_kind("fork").count(),
        0,
        "no thread is reported as a fork"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn processes_outside_the_tree_are_not_reported() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside-marker");
    std::fs::write(&outside, "x").expect("write");
    let outside = outside.canonicalize().expect("canonical");
    // A busy process that is not a descendant of the watched command.
    let mut busy = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while :; do cat {} >/dev/null; done",
            outside.display()
        ))
        .spawn()
        .expect("spawn outsider");
    let run = watch_in(
        dir,
        &[],
        &["sh", "-c", "sleep 0.5; cat /etc/hostname > /dev/null"],
    );
    let _ = busy.kill();
    let _ = busy.wait();
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert!(
        run.opens_of(Path::new("/etc/hostname")).next().is_some(),
        "inside event present\n{}",
        run.describe()
    );
    assert_eq!(
        run.opens_of(&outside).count(),
        0,
        "an outsider's open leaked into the events"
    );
    let pids: HashSet<u32> = run.events.iter().map(|e| e.pid).collect();
    assert!(!pids.contains(&busy.id()), "the outsider's pid appears");
    assert!(
        !pids.contains(&std::process::id()),
        "the test's pid appears"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_tiny_ring_buffer_under_an_open_storm_reports_lost_events() {
    require_root();
    let cmd = python(&["storm", "200000", "/etc/hostname"]);
    let run = watch(&["--ring-buffer-size", "4096"], &as_strs(&cmd));
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    let lost: u64 = run
        .of_kind("lost")
        .map(|e| match &e.kind {
            EventKind::Lost(l) => l.count,
            _ => 0,
        })
        .sum();
    assert!(lost > 0, "expected lost events\n{}", run.describe());
    assert!(
        run.stderr().contains("LOST EVENTS"),
        "summary says so\n{}",
        run.stderr()
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn exit_status_and_signals_pass_through() {
    require_root();
    let run = watch(&[], &["sh", "-c", "exit 7"]);
    assert_eq!(run.code(), Some(7));
    let run = watch(&[], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(run.code(), Some(128 + 15));

    // SIGTERM to buildwatch reaches the command, whose status comes back.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(bin())
        .args(["--no-tui", "--", "sleep", "30"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Once the command runs (before that, buildwatch is still loading its sensor and has no
    // handler yet: on a loaded machine that takes seconds).
    let waiting = std::time::Instant::now();
    while !has_child(child.id(), "sleep") {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "sleep never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let started = std::time::Instant::now();
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "sleep killed by the forwarded SIGTERM"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_command_runs_as_the_sudo_user_not_as_root() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = dir.path().join("id.txt");
    let script = format!("echo $(id -u) $(id -g) $HOME > {}", out.display());
    let events = dir.path().join("events.jsonl");
    let output = Command::new(bin())
        .args(["--no-tui", "--events"])
        .arg(&events)
        .args(["--", "sh", "-c", &script])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = std::fs::read_to_string(&out).expect("id output");
    let nobody = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(65534))
        .expect("lookup")
        .expect("nobody");
    assert_eq!(id.trim(), format!("65534 65534 {}", nobody.dir.display()));
    // The events file written as root belongs to the invoking user.
    let meta = std::fs::metadata(&events).expect("events file");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn without_capabilities_it_exits_2_and_never_runs_the_command() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    // Root, but with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN dropped from the bounding set.
    let output = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-bpf,-perfmon,-sys_admin",
            "--inh-caps",
            "-bpf,-perfmon,-sys_admin",
        ])
        .arg(bin())
        .args(["--no-tui", "--", "touch"])
        .arg(&marker)
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CAP_BPF") && stderr.contains("sudo"),
        "names the cause and the fix: {stderr}"
    );
    assert!(!marker.exists(), "the command must not run unmonitored");
}

#[test]
fn an_unknown_option_is_a_usage_error_and_the_command_does_not_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let output = Command::new(bin())
        .args(["--bogus", "--", "touch"])
        .arg(&marker)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unexpected argument '--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage:"), "{stderr}");
    assert!(!marker.exists());
}

#[test]
fn a_missing_command_is_required() {
    let output = Command::new(bin()).arg("--no-tui").output().expect("run");
    assert_eq!(output.status.code(), Some(2));
}

/// Whether process `parent` has a child whose `comm` is `comm`.
fn has_child(parent: u32, comm: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let name = head.split_once(" (").map(|(_, n)| n);
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        name == Some(comm) && ppid == Some(parent)
    })
}
