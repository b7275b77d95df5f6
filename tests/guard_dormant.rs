//! `buildwatch guard` while no build runs: the system call hooks (the raw `sys_enter`/`sys_exit`
//! tracepoints, which slow every system call of the machine) are not attached; a build's
//! process that may run crate code is held at exec until they are, then continued; they are
//! detached again once nothing runs. Checked against the kernel itself (its bpf links), not
//! only against what the guard says.
mod support;

use std::{
    io::{Read as _, Write as _},
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use support::guarded::{Guard, World};

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> i64 {
    // SAFETY: bpf(2) reads and writes at most `attr.len()` bytes of `attr`.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
}

/// The raw tracepoints (`sys_enter`, ...) that programs in `programs` are attached to now, from
/// the kernel's links: `BPF_LINK_GET_NEXT_ID` (31), `BPF_LINK_GET_FD_BY_ID` (30),
/// `BPF_OBJ_GET_INFO_BY_FD` (15) filling a `struct bpf_link_info` (type, id, prog_id, then at 16
/// the raw tracepoint's name pointer and length).
fn raw_tracepoints_of(programs: &[u32]) -> Vec<String> {
    const BPF_LINK_TYPE_RAW_TRACEPOINT: u32 = 1;
    let mut names = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u8; 128];
        attr[..4].copy_from_slice(&id.to_ne_bytes());
        if bpf(31, &mut attr) < 0 {
            break;
        }
        id = u32::from_ne_bytes(attr[4..8].try_into().expect("4 bytes"));
        let mut attr = [0u8; 128];
        attr[..4].copy_from_slice(&id.to_ne_bytes());
        let fd = bpf(30, &mut attr);
        if fd < 0 {
            continue;
        }
        let mut info = [0u8; 64];
        let mut name = [0u8; 64];
        info[16..24].copy_from_slice(&(name.as_mut_ptr() as u64).to_ne_bytes());
        info[24..28].copy_from_slice(&(name.len() as u32).to_ne_bytes());
        let mut attr = [0u8; 128];
        attr[..4].copy_from_slice(&(fd as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
        let ok = bpf(15, &mut attr) == 0;
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd as i32) };
        let kind = u32::from_ne_bytes(info[..4].try_into().expect("4 bytes"));
        let prog = u32::from_ne_bytes(info[8..12].try_into().expect("4 bytes"));
        if ok && kind == BPF_LINK_TYPE_RAW_TRACEPOINT && programs.contains(&prog) {
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            names.push(String::from_utf8_lossy(&name[..end]).into_owned());
        }
    }
    names.sort();
    names
}

fn syscall_hooks(programs: &[u32]) -> Vec<String> {
    raw_tracepoints_of(programs)
        .into_iter()
        .filter(|n| n == "sys_enter" || n == "sys_exit")
        .collect()
}

fn wait_until(what: &str, guard: &Guard, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: not within 60 s\nstatus:\n{}\nguard:\n{}",
            guard.status(),
            guard.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The process's state letter (`T`: stopped).
fn state(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next().map(str::to_owned)
}

/// A rustc compiling what the test writes to its stdin: a crate host that lives until then.
fn start_rustc(world: &World, ws: &Path, wrapper: &str) -> Child {
    world
        .as_user(
            ws,
            &format!("exec {wrapper} rustc --crate-type lib --crate-name probe -"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rustc")
}

fn finish_rustc(mut rustc: Child) {
    rustc
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"pub fn f() {}\n")
        .expect("write source");
    let mut err = String::new();
    let _ = rustc.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(rustc.wait().expect("rustc").success(), "{err}");
}

#[test]
#[ignore = "privileged: creates a user and loads the eBPF programs"]
fn syscall_hooks_are_attached_only_while_crate_code_may_run() {
    let world = World::new();
    let guard = Guard::start_with(world.dir.path(), &["--idle-after", "1"]);
    let programs = guard.ids_after("program ids");
    let ws = world.workspace("ws");

    // 1. No build: nothing on sys_enter/sys_exit, and the status says so.
    wait_until("detached at start", &guard, || {
        guard.status().contains("system call hooks: detached")
    });
    assert_eq!(syscall_hooks(&programs), Vec::<String>::new());
    assert!(
        !raw_tracepoints_of(&programs).is_empty(),
        "the process hooks stay attached (sched_process_fork is a raw tracepoint)"
    );

    // 2. A rustc started by a script (it shares the script's process group): held at exec,
    //    continued once the hooks are attached, and it then runs.
    let rustc = start_rustc(&world, &ws, "");
    let pid = rustc.id();
    wait_until("a held rustc continued", &guard, || {
        guard
            .stderr()
            .contains("system call hooks attached for a build (1 held processes continued)")
    });
    assert_eq!(
        syscall_hooks(&programs),
        vec!["sys_enter".to_owned(), "sys_exit".to_owned()]
    );
    assert!(
        guard.status().contains("system call hooks: attached"),
        "{}",
        guard.status()
    );
    assert_ne!(state(pid).as_deref(), Some("T"), "rustc was continued");
    // It stays attached while rustc lives, past --idle-after.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(syscall_hooks(&programs).len(), 2);
    finish_rustc(rustc);

    // 3. Detached again once nothing runs.
    wait_until("detached after the build", &guard, || {
        syscall_hooks(&programs).is_empty()
    });
    assert!(
        guard
            .stderr()
            .contains("system call hooks detached: nothing that can run crate code"),
        "{}",
        guard.stderr()
    );

    // 4. A rustc that leads its own process group (as a job-control shell starts what is typed
    //    at its prompt, which would show a stopped job as stopped) is not held; the hooks are
    //    attached for it all the same, and a build's findings come as always.
    let rustc = start_rustc(&world, &ws, "setsid -w");
    wait_until("attached for the group leader", &guard, || {
        guard
            .stderr()
            .contains("system call hooks attached for a build (0 held processes continued)")
    });
    finish_rustc(rustc);
    wait_until("detached again", &guard, || {
        syscall_hooks(&programs).is_empty()
    });

    // 5. A hostile build started while dormant: its build script's read is seen, attributed.
    world.run(&ws, "cargo build --offline -p keyscan");
    let found = guard.wait_finding(&ws, "sensitive-read");
    assert!(
        found.iter().any(|f| f["crate"]["name"] == "keyscan"
            && f["crate"]["version"] == "0.1.4"
            && f["role"] == "build-script"
            && f["exact"] == true),
        "{found:#?}"
    );
    assert!(
        guard.status().contains("attached for builds 3 times"),
        "{}",
        guard.status()
    );
}
