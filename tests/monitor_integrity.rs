//! The monitor itself: a buildwatch whose programs are detached during the run says so and `ci`
//! exits 4 (monitoring incomplete). Here the test, as root (as a build that became root would),
//! finds buildwatch's cgroup links by the build's cgroup and detaches one with BPF_LINK_DETACH.
mod support;

use std::{
    os::{fd::FromRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{bin, read_report, require_root};

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
const BPF_LINK_DETACH: libc::c_long = 34;
const BPF_LINK_TYPE_CGROUP: u32 = 3;

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> i64 {
    // SAFETY: bpf(2) with a zeroed attr the kernel reads and writes within its 128 bytes.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128u32) }
}

/// Every link of the machine that is attached to the cgroup with id `cgroup_id`: (link id,
/// its descriptor).
fn cgroup_links(cgroup_id: u64) -> Vec<(u32, std::os::fd::OwnedFd)> {
    let mut found = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u64; 16];
        attr[0] = u64::from(id);
        if bpf(BPF_LINK_GET_NEXT_ID, &mut attr) < 0 {
            break;
        }
        id = (attr[0] >> 32) as u32;
        let mut attr = [0u64; 16];
        attr[0] = u64::from(id);
        let fd = bpf(BPF_LINK_GET_FD_BY_ID, &mut attr);
        if fd < 0 {
            continue;
        }
        // SAFETY: a descriptor bpf(2) just returned, owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
        // struct bpf_link_info: type @0, id @4, prog_id @8, then cgroup.cgroup_id @16.
        let mut info = [0u64; 32];
        let mut attr = [0u64; 16];
        attr[0] = u64::from(std::os::fd::AsRawFd::as_raw_fd(&fd) as u32)
            | (u64::from(size_of_val(&info) as u32) << 32);
        attr[1] = info.as_mut_ptr() as u64;
        if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) < 0 {
            continue;
        }
        if info[0] as u32 == BPF_LINK_TYPE_CGROUP && info[2] == cgroup_id {
            found.push((id, fd));
        }
    }
    found
}

/// The cgroup v2 mount point.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"cgroup2"))
        .map(|f| PathBuf::from(f[1]))
        .expect("a cgroup2 mount")
}

/// The id (inode) of process `pid`'s cgroup v2.
fn cgroup_id_of(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read its cgroup");
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line");
    let dir = cgroup2_root().join(rel.trim_start_matches('/'));
    std::fs::metadata(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .ino()
}

fn wait_for(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_detached_program_makes_the_run_incomplete() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let go_file = dir.path().join("go");
    let report = dir.path().join("report.json");
    // The build says where it is (its pid, hence its cgroup), then runs on until the test has
    // detached a link, and two seconds more: at least one periodic check falls after the detach.
    let script = format!(
        "echo $$ > {pid}; while [ ! -e {go} ]; do sleep 0.05; done; sleep 2",
        pid = pid_file.display(),
        go = go_file.display()
    );
    let child = Command::new(bin())
        .args(["ci", "--no-metadata", "--report"])
        .arg(&report)
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start buildwatch");
    let pid: u32 = wait_for(&pid_file).trim().parse().expect("pid");
    let links = cgroup_links(cgroup_id_of(pid));
    assert!(
        links.len() >= 5,
        "buildwatch's cgroup links (connect4/6, sendmsg4/6, sock_create): {:?}",
        links.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    let (id, fd) = &links[0];
    let mut attr = [0u64; 16];
    attr[0] = u64::from(std::os::fd::AsRawFd::as_raw_fd(fd) as u32);
    assert_eq!(
        bpf(BPF_LINK_DETACH, &mut attr),
        0,
        "detach link {id}: {}",
        std::io::Error::last_os_error()
    );
    std::fs::write(&go_file, "").expect("go");
    let out = child.wait_with_output().expect("wait for buildwatch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "exit 4 (monitoring incomplete)\n{stderr}"
    );
    assert!(
        stderr.contains("is no longer attached to the build's cgroup")
            && stderr.contains("Monitoring is incomplete"),
        "{stderr}"
    );
    let report = read_report(&report);
    let gaps = report["coverage_gaps"].to_string();
    assert!(
        gaps.contains("no longer attached"),
        "in the report's coverage gaps: {gaps}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_process_moved_out_of_the_builds_cgroup_makes_the_run_incomplete() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let go_file = dir.path().join("go");
    let script = format!(
        "echo $$ > {pid}; while [ ! -e {go} ]; do sleep 0.05; done; sleep 2",
        pid = pid_file.display(),
        go = go_file.display()
    );
    let child = Command::new(bin())
        .args(["ci", "--no-metadata", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start buildwatch");
    let pid: u32 = wait_for(&pid_file).trim().parse().expect("pid");
    // As a root process the sensor does not watch would: into the root cgroup, out of reach of
    // the build's cgroup hooks.
    std::fs::write(cgroup2_root().join("cgroup.procs"), pid.to_string())
        .expect("move the build's shell to the root cgroup");
    std::fs::write(&go_file, "").expect("go");
    let out = child.wait_with_output().expect("wait for buildwatch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "exit 4 (monitoring incomplete)\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "process {pid} of the build is no longer in the build's cgroup"
        )),
        "{stderr}"
    );
}
