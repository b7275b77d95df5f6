//! `buildwatch attach` end to end: the guard runs beside a hostile fixture build started by a
//! user of its own (see `support::guarded`); the live view attaches to it in a real terminal
//! (tmux), as root by pid and as the build's user without one. The build is held at netprobe's
//! compilation (a `RUSTC_WRAPPER` that waits for a gate file) so that the view attaches while
//! it runs: keyscan's finding is there from the start, netprobe's arrives live once the gate
//! opens. Who may attach is checked with a user that does not own the build.
mod support;

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    bin,
    guarded::{Guard, World},
    tmux::Tmux,
};

/// nobody: a user who owns no build.
const NOBODY: u32 = 65534;

/// `buildwatch ARGS` as `uid` (root when 0); its status and stderr.
fn buildwatch_as(uid: u32, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(bin())
        .args(args)
        .stdin(Stdio::null());
    let out = cmd.output().expect("run buildwatch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits for `path` to hold a line, returns it.
fn read_when_there(path: &Path, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(
            start.elapsed() < timeout,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `buildwatch attach ARGS` as `uid` in a new tmux session `bw`, which records its pid in
/// `dir/attach.pid` and its exit status in `dir/attach.status`.
fn attach_in_tmux(tmux: &Tmux, dir: &Path, uid: u32, args: &str) {
    let _ = std::fs::remove_file(dir.join("attach.status"));
    let _ = std::fs::remove_file(dir.join("attach.pid"));
    let _ = tmux.cmd(&["kill-session", "-t", "bw"]);
    let script = format!(
        "sh -c 'echo $$ > {d}/attach.pid; exec setpriv --reuid={uid} --regid={uid} \
         --clear-groups {bin} attach {args}'; echo $? > {d}/attach.status; exec sleep 600",
        d = dir.display(),
        bin = bin(),
    );
    std::fs::write(dir.join("attach.sh"), script).expect("attach.sh");
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "bw",
        "-x",
        "160",
        "-y",
        "45",
        &format!("sh {}/attach.sh", dir.display()),
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");
}

#[test]
#[ignore = "privileged: creates a user and loads the eBPF programs"]
fn attached_view_follows_a_guarded_build_and_leaves_it_alone() {
    let world = World::new();
    let tmux = Tmux::new();
    let guard = Guard::start(world.dir.path());
    let socket = guard.socket.display().to_string();
    let dir = world.dir.path();

    // The build, held before netprobe's compilation until the gate exists.
    let gate = dir.join("gate");
    let wrapper = dir.join("wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$*\" in *netprobe*) while [ ! -e {} ]; do sleep 0.1; done;; esac\n\
             exec \"$@\"\n",
            gate.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ws = world.workspace("ws-attach");
    let mut build = world
        .as_user(&ws, "exec cargo build --offline -p keyscan -p netprobe")
        .env("RUSTC_WRAPPER", &wrapper)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the build");
    // `exec`: the shell's pid is cargo's, the build's root.
    let cargo = build.id();
    let user = world.user.uid;

    // Its user finds it in the status, with keyscan's finding so far.
    let start = Instant::now();
    loop {
        let (code, status, err) = buildwatch_as(user, &["guard", "--status", "--socket", &socket]);
        assert_eq!(code, Some(0), "{err}");
        if status
            .lines()
            .any(|l| l.contains(&format!("pid {cargo} ")) && !l.contains("(0 findings"))
        {
            assert!(
                status.contains("builds being watched (yours): 1"),
                "{status}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the build and its first finding are not in the user's status:\n{status}\nguard:\n{}",
            guard.stderr()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Someone else may neither attach to it nor see it.
    let (code, _, err) =
        buildwatch_as(NOBODY, &["attach", &cargo.to_string(), "--socket", &socket]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("permission denied: build") && err.contains(&format!("uid {user}")),
        "{err}"
    );
    let (code, _, err) = buildwatch_as(NOBODY, &["attach", "--socket", &socket]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("no build of yours (uid {NOBODY})")),
        "{err}"
    );
    let (_, status, _) = buildwatch_as(NOBODY, &["guard", "--status", "--socket", &socket]);
    assert!(
        !status.contains(&format!("pid {cargo} ")) && status.contains("(yours): 0"),
        "{status}"
    );
    // No such build; no guard.
    let (code, _, err) = buildwatch_as(0, &["attach", "1", "--socket", &socket]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no build being watched has a process 1"),
        "{err}"
    );
    let missing = dir.join("missing.sock").display().to_string();
    let (code, _, err) = buildwatch_as(user, &["attach", "--socket", &missing]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no guard answers on"), "{err}");

    // 1. Root attaches by pid: the view shows the findings so far; SIGTERM ends the view only.
    attach_in_tmux(&tmux, dir, 0, &format!("{cargo} --socket {socket}"));
    let screen = tmux.wait_for("keyscan's finding so far", Duration::from_secs(30), |s| {
        s.contains(&format!("attached to {cargo}"))
            && s.lines()
                .any(|l| l.contains("sensitive-read") && l.contains("keyscan"))
    });
    assert!(screen.contains("● running"), "{screen}");
    let viewer: i32 = read_when_there(&dir.join("attach.pid"), Duration::from_secs(5))
        .parse()
        .expect("pid");
    // SAFETY: kill(2) on the view the test started.
    unsafe { libc::kill(viewer, libc::SIGTERM) };
    let status = read_when_there(&dir.join("attach.status"), Duration::from_secs(10));
    assert_eq!(status, "0", "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        screen.contains(&format!(
            "detached from build {cargo}; the guard goes on watching it"
        )),
        "{screen}"
    );
    assert!(
        build.try_wait().expect("try_wait").is_none(),
        "the build goes on"
    );

    // 2. Its user attaches without a pid (their only build); the gate opens; netprobe's
    //    finding arrives live; the build ends; q closes the view.
    attach_in_tmux(&tmux, dir, user, &format!("--socket {socket}"));
    tmux.wait_for("the user's view", Duration::from_secs(30), |s| {
        s.contains(&format!("attached to {cargo}")) && s.contains("keyscan")
    });
    std::fs::write(&gate, "").expect("open the gate");
    let screen = tmux.wait_for(
        "netprobe's finding, live, and the end",
        Duration::from_secs(120),
        |s| {
            s.contains("✔ exit 0")
                && s.lines().any(|l| {
                    l.contains("unexpected-network")
                        && l.contains("netprobe")
                        && l.contains(&world.port().to_string())
                })
        },
    );
    assert!(screen.contains("Crates"), "{screen}");
    assert!(build.wait().expect("wait").success());
    tmux.keys(&["q"]);
    let status = read_when_there(&dir.join("attach.status"), Duration::from_secs(10));
    assert_eq!(status, "0", "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        screen.contains(&format!("build {cargo} ended; findings:")),
        "{screen}"
    );
    assert!(
        screen.contains("ERROR unexpected-network: netprobe 0.3.1 build-script")
            && screen.contains("ERROR sensitive-read: keyscan 0.1.4 build-script"),
        "{screen}"
    );

    // The guard was not affected: it reported the build as usual and still answers.
    let found = guard.wait_finding(&ws, "unexpected-network");
    assert!(
        found.iter().any(|f| f["code"] == "sensitive-read"),
        "{found:#?}"
    );
    assert!(guard.status().contains("builds ended"));
}
