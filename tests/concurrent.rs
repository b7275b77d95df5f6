//! Several watched builds at once on one machine: each loads its own sensor, gets its own cgroup
//! (with the socket hooks), sees only its own process tree, and ends with its own status. Also
//! what a run leaves behind: nothing (its cgroup is removed) once it has ended.
mod support;

use std::{
    collections::BTreeSet,
    io::Read as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use buildwatch::model::EventKind;
use support::{bin, procs, read_events, require_root};

/// How many runs start together.
const RUNS: usize = 5;

/// A loopback listener that reads and drops whatever it is sent; its port.
fn listen() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    });
    port
}

struct Started {
    child: Child,
    dir: tempfile::TempDir,
    marker: PathBuf,
    port: u16,
    code: i32,
}

/// `buildwatch ci` of a small build of its own: read a marker file of its own, connect to a
/// listener of its own (through the cgroup hooks too), stay a while so that every run overlaps
/// every other, then exit with a status of its own.
fn start(index: usize, code: i32) -> Started {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join(format!("marker-{index}"));
    std::fs::write(&marker, "x").expect("marker");
    let port = listen();
    let script = format!(
        "cat {marker} > /dev/null && python3 {procs} connect 127.0.0.1 {port} && sleep 2 && \
         exit {code}",
        marker = marker.display(),
        procs = procs().display(),
    );
    let child = Command::new(bin())
        .args(["ci", "--no-tui", "--no-metadata", "--events"])
        .arg(dir.path().join("events.jsonl"))
        .arg("--report")
        .arg(dir.path().join("report.json"))
        .arg("--profiles")
        .arg(dir.path().join("profiles"))
        .args(["--", "sh", "-c", &script])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start buildwatch");
    Started {
        child,
        dir,
        marker,
        port,
        code,
    }
}

/// The cgroup v2 mount, if any (the per-run cgroups live there).
fn cgroup2() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
    })
}

fn cgroups_of(root: &Path, pid: u32) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("buildwatch-{pid}-")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn concurrent_runs_each_see_only_their_own_build() {
    require_root();
    let codes = [0, 1, 5, 7, 9, 0, 6, 8];
    let started = Instant::now();
    let runs: Vec<Started> = (0..RUNS).map(|i| start(i, codes[i])).collect();
    let pids: Vec<u32> = runs.iter().map(|r| r.child.id()).collect();
    let mut finished = Vec::new();
    for run in runs {
        let Started {
            child,
            dir,
            marker,
            port,
            code,
        } = run;
        let output = child.wait_with_output().expect("wait buildwatch");
        finished.push((output, dir, marker, port, code));
    }
    let elapsed = started.elapsed();
    eprintln!("{RUNS} concurrent runs took {:.1}s", elapsed.as_secs_f64());

    let mut trees: Vec<BTreeSet<u32>> = Vec::new();
    let markers: Vec<PathBuf> = finished.iter().map(|f| f.2.clone()).collect();
    let ports: Vec<u16> = finished.iter().map(|f| f.3).collect();
    for (i, (output, dir, marker, port, code)) in finished.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(*code),
            "run {i}: the command's own status\n{stderr}"
        );
        assert!(
            !stderr.contains("error"),
            "run {i}: no setup error or lost events\n{stderr}"
        );
        let events = read_events(&dir.path().join("events.jsonl"));
        // Its own marker, and no other run's.
        let opened: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Open(o) => Some(o.path.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            opened.contains(marker.to_str().expect("utf-8 path")),
            "run {i} saw its own marker read: {opened:?}"
        );
        for (j, other) in markers.iter().enumerate() {
            assert!(
                j == i || !opened.contains(other.to_str().expect("utf-8 path")),
                "run {i} saw run {j}'s marker read"
            );
        }
        // Its own connection (by the syscall and by its cgroup's hook), and no other run's.
        let reached: BTreeSet<u16> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Connect(c) if c.addr == "127.0.0.1" => Some(c.port),
                _ => None,
            })
            .collect();
        assert_eq!(
            reached,
            BTreeSet::from([*port]),
            "run {i} reached only its own listener (others: {ports:?})"
        );
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("report.json")).expect("report"),
        )
        .expect("report JSON");
        assert_eq!(report["lost_events"], 0, "run {i}: nothing lost");
        let tree: BTreeSet<u32> = events.iter().map(|e| e.pid).collect();
        assert!(
            !tree.contains(&pids[i]),
            "buildwatch's own activity is not reported"
        );
        trees.push(tree);
    }
    // No process shows in two runs.
    for i in 0..trees.len() {
        for j in i + 1..trees.len() {
            let shared: Vec<_> = trees[i].intersection(&trees[j]).collect();
            assert!(shared.is_empty(), "runs {i} and {j} both saw {shared:?}");
        }
    }
    // Each run removed its own cgroup.
    if let Some(root) = cgroup2() {
        for pid in &pids {
            assert_eq!(cgroups_of(&root, *pid), Vec::<String>::new(), "run {pid}");
        }
    }
    assert!(
        elapsed < Duration::from_secs(60),
        "concurrent runs took {elapsed:?}"
    );
}
