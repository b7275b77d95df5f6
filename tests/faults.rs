//! Faults: what buildwatch does when the machine lacks a piece it needs, when its outputs
//! cannot be written, when it is stopped or killed, and when the build (as root) turns on it.
//! Each fault is made for one run only, in a mount namespace of its own (`unshare -m`) where
//! a path is hidden or a small tmpfs is full; nothing outside the test is changed.
mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use support::{bin, procs, read_events, require_root};

/// Runs `buildwatch <args>` in a private mount namespace after `setup` (shell commands), in
/// `dir`.
fn in_namespace(dir: &Path, setup: &str, args: &[&str]) -> Output {
    namespace_command(dir, setup, args)
        .output()
        .expect("run unshare")
}

fn namespace_command(dir: &Path, setup: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("{setup} && exec \"$0\" \"$@\""))
        .arg(bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A setup error: exit status 2, the message names `piece` and says what to do (`fix`), no
/// panic, and the command did not run.
fn assert_setup_error(out: &Output, ran: &Path, piece: &str, fix: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(piece), "names {piece}: {text}");
    assert!(text.contains(fix), "says {fix}: {text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!ran.exists(), "the command must not run: {text}");
}

/// The cgroup v2 mount point, if any.
fn cgroup2() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
    })
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn no_tracefs_is_a_setup_error() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = dir.path().join("ran");
    // An empty read-only /sys/kernel: no tracefs, and nowhere to mount one.
    let out = in_namespace(
        dir.path(),
        "mount -t tmpfs -o ro,size=4k none /sys/kernel",
        &[
            "ci",
            "--no-tui",
            "--",
            "touch",
            ran.to_str().expect("utf-8"),
        ],
    );
    assert_setup_error(&out, &ran, "tracefs", "mount -t tracefs");
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn no_btf_is_a_setup_error() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = dir.path().join("ran");
    let out = in_namespace(
        dir.path(),
        "mount -t tmpfs -o ro,size=4k none /sys/kernel/btf",
        &[
            "ci",
            "--no-tui",
            "--",
            "touch",
            ran.to_str().expect("utf-8"),
        ],
    );
    assert_setup_error(
        &out,
        &ran,
        "/sys/kernel/btf/vmlinux",
        "CONFIG_DEBUG_INFO_BTF=y",
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn no_cgroup_v2_is_a_gap_and_an_error_with_enforce() {
    require_root();
    let Some(root) = cgroup2() else {
        eprintln!("skipped: this machine has no cgroup v2 to hide");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let hide = format!("umount -l {}", root.display());
    let ran = dir.path().join("ran");
    let out = in_namespace(
        dir.path(),
        &hide,
        &[
            "ci",
            "--no-tui",
            "--enforce",
            "--",
            "touch",
            ran.to_str().expect("utf-8"),
        ],
    );
    assert_setup_error(&out, &ran, "cgroup v2", "run without --enforce");

    // Without --enforce the run goes on, and says what it cannot see.
    let report = dir.path().join("report.json");
    let out = in_namespace(
        dir.path(),
        &hide,
        &[
            "ci",
            "--no-tui",
            "--report",
            report.to_str().expect("utf-8"),
            "--",
            "sh",
            "-c",
            "exit 6",
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "the command's status: {text}");
    assert!(text.contains("no cgroup v2 hierarchy"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let gaps = report["coverage_gaps"].to_string();
    assert!(gaps.contains("cgroup v2"), "{gaps}");
}

/// A namespace setup that mounts a `size` tmpfs at `dir/full`.
fn small_tmpfs(dir: &Path, size: &str) -> String {
    let full = dir.join("full");
    std::fs::create_dir_all(&full).expect("mkdir");
    format!("mount -t tmpfs -o size={size} none {}", full.display())
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_full_disk_for_events_fails_ci_but_keeps_the_report() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = small_tmpfs(dir.path(), "64k");
    let target = dir.path().join("opened");
    std::fs::write(&target, "x").expect("target");
    let report = dir.path().join("report.json");
    let out = in_namespace(
        dir.path(),
        &setup,
        &[
            "ci",
            "--no-tui",
            "--no-metadata",
            "--events",
            "full/events.jsonl",
            "--report",
            report.to_str().expect("utf-8"),
            "--",
            "python3",
            procs().to_str().expect("utf-8"),
            "storm",
            "5000",
            target.to_str().expect("utf-8"),
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "ci does not pass: {text}");
    assert!(
        text.contains("--events") && text.contains("No space left on device"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    // The report is whole: every open counted, though the events file stopped early.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let opens = report["counts"]["open"].as_u64().unwrap_or(0);
    assert!(opens >= 5000, "all opens counted ({opens}): {report}");
    assert_eq!(report["lost_events"], 0);
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_full_disk_for_the_report_fails_ci_and_leaves_no_partial_report() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    // The tmpfs is filled before buildwatch starts.
    let setup = format!(
        "{} && (dd if=/dev/zero of=full/filler bs=4k 2>/dev/null; true)",
        small_tmpfs(dir.path(), "16k")
    );
    let listing = dir.path().join("listing");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "{setup} && \"$0\" \"$@\"; code=$?; ls full > {listing}; exit $code",
            listing = listing.display()
        ))
        .arg(bin())
        .args([
            "ci",
            "--no-tui",
            "--no-metadata",
            "--report",
            "full/report.json",
            "--",
            "true",
        ])
        .current_dir(dir.path());
    let out = cmd.output().expect("run unshare");
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "ci does not pass: {text}");
    assert!(
        text.contains("cannot write full/report.json") && text.contains("the disk is full"),
        "{text}"
    );
    let left = std::fs::read_to_string(&listing).expect("listing");
    assert!(!left.contains("report.json"), "no partial report: {left}");
}

/// Waits until `path` has at least `lines` lines, written by the build that `child` (buildwatch)
/// watches; panics with buildwatch's output if it ends first or after `timeout`.
fn wait_lines(child: &mut Child, path: &Path, lines: usize, timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let got: Vec<String> = text.lines().map(str::to_owned).collect();
        if got.len() >= lines {
            return got;
        }
        let ended = child.try_wait().ok().flatten().is_some();
        if ended || start.elapsed() > timeout {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            panic!(
                "the build did not write {} ({}); buildwatch said:\n{err}",
                path.display(),
                if ended {
                    "buildwatch ended"
                } else {
                    "timed out"
                }
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: only its parent has yet to collect it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until none of `pids` runs; panics with the survivors after `timeout`.
fn wait_dead(pids: &[u32], timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if survivors.is_empty() {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            for p in &survivors {
                // SAFETY: kill(2): the test cleans up what it started.
                unsafe { libc::kill(*p as i32, libc::SIGKILL) };
            }
            panic!("still running after {timeout:?}: {survivors:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A build that spreads out: a child in the process group, one in a session of its own
/// (setsid), a double-forked daemon; each writes its pid to `pids`, then all wait.
fn spreading_build(pids: &Path) -> String {
    format!(
        "sleep 300 & echo $! >> {p}; setsid sleep 300 & echo $! >> {p}; \
         python3 -c 'import os,time\nif os.fork()==0:\n  if os.fork()==0:\n    \
         open(\"{p}\",\"a\").write(\"%d\\n\" % os.getpid()); time.sleep(300)\n' ; \
         echo $$ >> {p}; wait",
        p = pids.display()
    )
}

/// SIGKILLs the buildwatch `child` once the build has written 4 pids; the build must die
/// with it.
fn kill_and_check(mut child: Child, pids: &Path) -> Duration {
    let lines = wait_lines(&mut child, pids, 4, Duration::from_secs(60));
    let pids: Vec<u32> = lines.iter().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(pids.len(), 4, "{lines:?}");
    assert!(pids.iter().all(|p| alive(*p)), "the build runs: {pids:?}");
    child.kill().expect("SIGKILL buildwatch");
    let _ = child.wait();
    wait_dead(&pids, Duration::from_secs(5))
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_build_dies_when_buildwatch_is_killed() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let child = Command::new(bin())
        .args(["ci", "--no-tui", "--no-metadata", "--", "sh", "-c"])
        .arg(spreading_build(&pids))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start buildwatch");
    let took = kill_and_check(child, &pids);
    eprintln!("the build died {} ms after buildwatch", took.as_millis());
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_build_dies_when_buildwatch_is_killed_without_cgroup_v2() {
    require_root();
    let Some(root) = cgroup2() else {
        eprintln!("skipped: covered by the_build_dies_when_buildwatch_is_killed");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let script = spreading_build(&pids);
    let child = namespace_command(
        dir.path(),
        &format!("umount -l {}", root.display()),
        &["ci", "--no-tui", "--no-metadata", "--", "sh", "-c", &script],
    )
    .stdout(Stdio::null())
    .spawn()
    .expect("start buildwatch");
    let took = kill_and_check(child, &pids);
    eprintln!(
        "without cgroup v2, the build died {} ms after buildwatch",
        took.as_millis()
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_stopped_buildwatch_counts_the_loss_and_ci_exits_4() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("opened");
    std::fs::write(&target, "x").expect("target");
    let started = dir.path().join("started");
    let report = dir.path().join("report.json");
    // The storm begins once the test has stopped buildwatch (it waits for the file `go`).
    let script = format!(
        "echo started > {started}; while [ ! -e go ]; do sleep 0.02; done; python3 {procs} storm 100000 {target}",
        started = started.display(),
        procs = procs().display(),
        target = target.display(),
    );
    let child = Command::new(bin())
        .args([
            "ci",
            "--no-tui",
            "--no-metadata",
            "--ring-buffer-size",
            "64K",
            "--report",
        ])
        .arg(&report)
        .args(["--", "sh", "-c", &script])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start buildwatch");
    let mut child = child;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    wait_lines(&mut child, &started, 1, Duration::from_secs(60));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    std::fs::write(dir.path().join("go"), "").expect("go");
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    let out = child.wait_with_output().expect("wait");
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let lost = report["lost_events"].as_u64().unwrap_or(0);
    assert!(lost > 0, "the loss is counted: {report}");
    eprintln!("stopped 2 s during a storm: {lost} records lost and counted");
}

/// `ci --user root` of `script`, which finds buildwatch as its parent ($PPID).
fn root_build(dir: &Path, script: &str, events: &Path) -> Child {
    Command::new(bin())
        .args([
            "ci",
            "--no-tui",
            "--no-metadata",
            "--user",
            "root",
            "--events",
        ])
        .arg(events)
        .args(["--", "sh", "-c", script])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start buildwatch")
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_root_build_that_kills_buildwatch_dies_with_it() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 300 & echo $! >> {p}; setsid sleep 300 & echo $! >> {p}; echo $$ >> {p}; \
         sleep 0.3; kill -9 $PPID; sleep 300",
        p = pids.display()
    );
    let mut child = root_build(dir.path(), &script, &dir.path().join("events.jsonl"));
    let lines = wait_lines(&mut child, &pids, 3, Duration::from_secs(60));
    let pids: Vec<u32> = lines.iter().filter_map(|l| l.trim().parse().ok()).collect();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "buildwatch was killed: {}",
        stderr(&out)
    );
    let took = wait_dead(&pids, Duration::from_secs(5));
    eprintln!(
        "root build killed buildwatch: the build died {} ms later",
        took.as_millis()
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_root_build_that_kills_the_watchdog_is_stopped_and_ci_exits_4() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 300 & echo $! >> {p}; echo $$ >> {p}; \
         for c in /proc/[0-9]*; do \
           if [ \"$(cat $c/comm 2>/dev/null)\" = bw-watchdog ] && \
              grep -q \"^PPid:[[:space:]]*$PPID\\$\" $c/status 2>/dev/null; then \
             kill -9 ${{c#/proc/}}; fi; \
         done; sleep 300",
        p = pids.display()
    );
    let start = Instant::now();
    let mut child = root_build(dir.path(), &script, &dir.path().join("events.jsonl"));
    let lines = wait_lines(&mut child, &pids, 2, Duration::from_secs(60));
    let pids: Vec<u32> = lines.iter().filter_map(|l| l.trim().parse().ok()).collect();
    let out = child.wait_with_output().expect("wait");
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("watchdog") && text.contains("was killed"),
        "{text}"
    );
    wait_dead(&pids, Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(30), "{text}");
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_root_build_that_ptraces_buildwatch_fails_ci() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    // Attach, wait for the stop, detach and let it go on (SIGCONT: the attach stopped every
    // thread of buildwatch).
    let tracer = "import ctypes,os,signal\n\
        libc=ctypes.CDLL(None,use_errno=True)\n\
        p=os.getppid()\n\
        assert libc.ptrace(16,p,0,0)==0, ctypes.get_errno()\n\
        os.waitpid(p,0)\n\
        libc.ptrace(17,p,0,0)\n\
        os.kill(p,signal.SIGCONT)\n";
    let script = format!("exec python3 -c '{tracer}'");
    let child = root_build(dir.path(), &script, &events);
    let out = child.wait_with_output().expect("wait");
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("PTRACE_ATTACH") && text.contains("at buildwatch itself"),
        "{text}"
    );
    let tamper = read_events(&events)
        .into_iter()
        .filter(|e| e.kind.name() == "tamper")
        .count();
    assert!(tamper >= 1, "the attach is in the events");
}

/// A memory cgroup of the test's own with a 256 MiB limit, and the file to write a pid into
/// to join it; None when this machine has no memory controller to use.
fn memory_cgroup() -> Option<(PathBuf, &'static str)> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let name = format!("buildwatch-faults-{}", std::process::id());
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dir), Some(kind), Some(opts)) = (f.get(1), f.get(2), f.get(3)) else {
            continue;
        };
        let (dir, limit_file) = match *kind {
            "cgroup" if opts.split(',').any(|o| o == "memory") => {
                (Path::new(dir).join(&name), "memory.limit_in_bytes")
            }
            "cgroup2" => (Path::new(dir).join(&name), "memory.max"),
            _ => continue,
        };
        if std::fs::create_dir(&dir).is_err() {
            continue;
        }
        if std::fs::write(dir.join(limit_file), "268435456").is_ok() {
            return Some((dir, "cgroup.procs"));
        }
        let _ = std::fs::remove_dir(&dir);
    }
    None
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_map_that_cannot_be_created_is_a_setup_error() {
    require_root();
    let Some((cgroup, procs_file)) = memory_cgroup() else {
        eprintln!("skipped: no memory controller to limit this run's memory with");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = dir.path().join("ran");
    // A 1 GiB ring buffer under a 256 MiB memory limit.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec \"$0\" \"$@\"",
            cgroup.join(procs_file).display()
        ))
        .arg(bin())
        .args([
            "ci",
            "--no-tui",
            "--no-metadata",
            "--ring-buffer-size",
            "1G",
            "--",
            "touch",
            ran.to_str().expect("utf-8"),
        ])
        .output()
        .expect("run buildwatch");
    let _ = std::fs::remove_dir(&cgroup);
    assert_setup_error(&out, &ran, "map `EVENTS`", "lower --ring-buffer-size");
    assert!(stderr(&out).contains("os error 12"), "{}", stderr(&out));
}
