//! The live view end to end, in a real terminal: tmux runs `buildwatch -- <hostile fixture
//! build>` under the real sensor; keys are sent as a person would type them and the screen is
//! read back. The build is kept running after cargo finishes (a `sleep`), so that quitting asks
//! whether to stop it; answering yes must stop it and end buildwatch with the build's status.
mod support;

use std::{
    io::Read as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use support::{bin, repo, require_root, tmux::Tmux};

fn copy_fixture(name: &str, dst: &Path) {
    let src = repo().join("tests/fixtures").join(name);
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(dst)
        .status()
        .expect("cp");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(dst.join("target"));
}

fn real_home_dir(var: &str, default: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| format!("{}/{default}", std::env::var("HOME").expect("HOME")))
}

fn listen() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let _ = stream.read_to_end(&mut buf);
        }
    });
    port
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn live_view_shows_findings_and_quitting_stops_the_build() {
    require_root();
    let tmux = Tmux::new();
    let port = listen();
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).expect("mkdir");
    copy_fixture("hostile", &ws);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "s3cr3t").expect("secret");
    let status_file: PathBuf = dir.path().join("status");

    // The build, then a long sleep: still running when the user quits.
    let build = format!(
        "cd {ws} && HOME={home} CARGO_HOME={cargo_home} RUSTUP_HOME={rustup_home} \
         BW_PORT={port} BW_SECRET_FILE={secret} cargo build --offline && exec sleep 300",
        ws = ws.display(),
        home = home.display(),
        cargo_home = real_home_dir("CARGO_HOME", ".cargo"),
        rustup_home = real_home_dir("RUSTUP_HOME", ".rustup"),
        secret = secret.display(),
    );
    std::fs::write(dir.path().join("build.sh"), build).expect("build.sh");
    let outer = format!(
        "cd {dir} && {bin} --profiles {dir}/profiles -- sh build.sh; echo $? > {status}; exec sleep 600",
        dir = dir.path().display(),
        bin = bin(),
        status = status_file.display(),
    );
    std::fs::write(dir.path().join("outer.sh"), outer).expect("outer.sh");
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "bw",
        "-x",
        "120",
        "-y",
        "40",
        &format!("sh {}/outer.sh", dir.path().display()),
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");

    // The live view, with the hostile build script's finding.
    let screen = tmux.wait_for(
        "netprobe's network finding",
        Duration::from_secs(180),
        |s| {
            s.contains("buildwatch")
                && s.lines().any(|l| {
                    l.contains("unexpected-network")
                        && l.contains("netprobe")
                        && l.contains(&port.to_string())
                })
        },
    );
    assert!(screen.contains("● running"), "{screen}");
    assert!(screen.contains("Crates"), "{screen}");

    // Cargo's own output is captured in its pane, not written over the view.
    tmux.wait_for(
        "cargo's output in its pane",
        Duration::from_secs(120),
        |s| s.contains("Finished `dev` profile"),
    );

    // Navigate: the findings pane, down to netprobe's finding, open it.
    tmux.keys(&["3"]);
    let screen = tmux.screen();
    let findings: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("warn "))
        .collect();
    let index = findings
        .iter()
        .position(|l| l.contains("netprobe") && l.contains("unexpected-network"))
        .unwrap_or_else(|| panic!("netprobe's finding listed\n{screen}"));
    for _ in 0..index {
        tmux.keys(&["Down"]);
    }
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the finding's details", Duration::from_secs(5), |s| {
        s.contains("Finding") && s.contains("allow in")
    });
    assert!(
        screen.contains("[build-script].network") && screen.contains("netprobe 0.3.1"),
        "{screen}"
    );
    tmux.keys(&["Escape"]);

    // The crate's detail: its build script's process.
    tmux.keys(&["1"]);
    let screen = tmux.screen();
    assert!(screen.contains("build-script-build [pid"), "{screen}");

    // Quit while the build runs: asked first; yes stops it.
    tmux.keys(&["q"]);
    tmux.wait_for("the quit question", Duration::from_secs(5), |s| {
        s.contains("Quit?") && s.contains("stop it")
    });
    tmux.keys(&["y"]);
    let start = Instant::now();
    while !status_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "buildwatch did not exit after stopping the build; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let status = std::fs::read_to_string(&status_file).expect("status");
    let screen = tmux.screen();
    // sh was killed by SIGTERM: buildwatch exits 128 + 15, as it would without the view.
    assert_eq!(status.trim(), "143", "{screen}");
    // After the view: the build's output and the summary, on the normal screen.
    assert!(screen.contains("Compiling netprobe v0.3.1"), "{screen}");
    assert!(screen.contains("killed by signal 15"), "{screen}");
    assert!(
        screen.contains("ERROR unexpected-network: netprobe 0.3.1 build-script"),
        "{screen}"
    );
}

/// Reads a pid written by the test's scripts, waiting for it.
fn read_pid(path: &Path, timeout: Duration) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(start.elapsed() < timeout, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` runs (a zombie has ended: only its parent has yet to collect it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Waits until none of `pids` runs; panics (killing the survivors) after `timeout`.
fn wait_gone(pids: &[u32], timeout: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            for p in &left {
                // SAFETY: kill(2): the test cleans up what it started.
                unsafe { libc::kill(*p as i32, libc::SIGKILL) };
            }
            panic!("{what}: still running after {timeout:?}: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The live view of `build` (a shell script) in a tmux session `bw`: `launch` goes before
/// buildwatch (`exec`; `exec setsid -w` for a buildwatch outside the terminal's session, which
/// gets no SIGHUP when the terminal goes) and `after` after it (what the pane runs once
/// buildwatch is done). Returns buildwatch's and the build's pids once the view shows `ready`.
fn live_view(
    tmux: &Tmux,
    dir: &Path,
    (launch, after): (&str, &str),
    build: &str,
    ready: &str,
) -> (u32, u32) {
    // The build's parent is buildwatch.
    std::fs::write(
        dir.join("build.sh"),
        format!(
            "echo $PPID > {d}/bw.pid; echo $$ > {d}/build.pid\n{build}\n",
            d = dir.display()
        ),
    )
    .expect("build.sh");
    let outer = format!(
        "cd {dir} && {launch} {bin} --profiles {dir}/profiles -- sh build.sh{after}",
        dir = dir.display(),
        bin = bin(),
    );
    std::fs::write(dir.join("outer.sh"), outer).expect("outer.sh");
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "bw",
        "-x",
        "120",
        "-y",
        "40",
        &format!("sh {}/outer.sh", dir.display()),
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");
    let build = read_pid(&dir.join("build.pid"), Duration::from_secs(30));
    let watcher = read_pid(&dir.join("bw.pid"), Duration::from_secs(5));
    tmux.wait_for(ready, Duration::from_secs(30), |s| {
        s.contains("buildwatch") && s.contains(ready)
    });
    (watcher, build)
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn closing_the_terminal_ends_the_live_view_and_the_running_build() {
    require_root();
    let tmux = Tmux::new();
    let dir = tempfile::tempdir().expect("tempdir");
    // Outside the terminal's session: no SIGHUP comes, only the hung-up terminal tells.
    let (watcher, build) = live_view(
        &tmux,
        dir.path(),
        ("exec setsid -w", ""),
        "exec sleep 300",
        "● running",
    );
    let closed = tmux.cmd(&["kill-session", "-t", "bw"]);
    assert!(closed.status.success(), "{closed:?}");
    let took = wait_gone(&[watcher, build], Duration::from_secs(8), "terminal closed");
    eprintln!(
        "terminal closed while building: all gone in {} ms",
        took.as_millis()
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn closing_the_terminal_after_the_build_ended_ends_the_live_view() {
    require_root();
    let tmux = Tmux::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (watcher, _) = live_view(&tmux, dir.path(), ("exec", ""), "exit 3", "✘ exit 3");
    let closed = tmux.cmd(&["kill-session", "-t", "bw"]);
    assert!(closed.status.success(), "{closed:?}");
    let took = wait_gone(&[watcher], Duration::from_secs(5), "terminal closed");
    eprintln!(
        "terminal closed after the build: gone in {} ms",
        took.as_millis()
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn sigterm_ends_the_live_view_restores_the_terminal_and_stops_the_build() {
    require_root();
    let tmux = Tmux::new();
    let dir = tempfile::tempdir().expect("tempdir");
    // The build ignores SIGTERM: it is killed after the grace period. The pane's shell goes
    // on after buildwatch, showing the normal screen.
    let (watcher, build) = live_view(
        &tmux,
        dir.path(),
        ("", "; exec sleep 600"),
        &format!(
            "trap '' TERM HUP; sleep 300; echo survived > {}/survived",
            dir.path().display()
        ),
        "● running",
    );
    // SAFETY: kill(2) on the buildwatch this test started.
    unsafe { libc::kill(watcher as i32, libc::SIGTERM) };
    let took = wait_gone(&[watcher, build], Duration::from_secs(10), "SIGTERM");
    eprintln!(
        "SIGTERM while building: all gone in {} ms",
        took.as_millis()
    );
    let screen = tmux.wait_for(
        "the summary on the normal screen",
        Duration::from_secs(5),
        |s| s.contains("ended after") && s.contains("findings"),
    );
    assert!(!screen.contains("● running"), "the view is gone: {screen}");
    assert!(!dir.path().join("survived").exists());
}
