//! Nothing missed by a trick: each crate of `tests/fixtures/evasive` goes around syscall-tracepoint
//! monitoring in one way (see its README), and each test here asserts that buildwatch still saw the
//! action, produced the finding, and attributed it to that crate and role. The tricks really happen:
//! every network test also checks that its loopback listener received the payload, so a trick that
//! silently did nothing fails the test instead of passing it.
//!
//! One watched `cargo build` of the fixture (as `buildwatch ci`) serves the per-technique tests;
//! `--enforce` and the ring-buffer flood have builds of their own.
mod support;

use std::{
    io::Read as _,
    net::{TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::Output,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use serde_json::Value;
use support::{buildwatch_in, copy_fixture, read_report, real_home_dir, require_root};

/// The DNS "resolver" of the shared build: a loopback address of its own, port 53 (each build has
/// its own, as listener threads live as long as the test process).
const DNS_ADDR: &str = "127.0.0.77";
const VERSION: &str = "0.1.0";

/// What the listeners received: ("tcp" | "udp" | "dns", payload).
type Received = Vec<(&'static str, Vec<u8>)>;

/// Loopback listeners recording what they received.
struct Listeners {
    dns_addr: &'static str,
    tcp_port: u16,
    udp_port: u16,
    received: Arc<Mutex<Received>>,
}

impl Listeners {
    fn start(dns_addr: &'static str) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let dns = UdpSocket::bind((dns_addr, 53))
            .unwrap_or_else(|e| panic!("bind {dns_addr}:53 (needs root): {e}"));
        let tcp_port = tcp.local_addr().expect("addr").port();
        let udp_port = udp.local_addr().expect("addr").port();
        {
            let received = received.clone();
            std::thread::spawn(move || {
                for stream in tcp.incoming().flatten() {
                    let mut stream = stream;
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = Vec::new();
                    let _ = stream.read_to_end(&mut buf);
                    received.lock().expect("lock").push(("tcp", buf));
                }
            });
        }
        for (socket, proto) in [(udp, "udp"), (dns, "dns")] {
            let received = received.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while let Ok((n, _)) = socket.recv_from(&mut buf) {
                    received
                        .lock()
                        .expect("lock")
                        .push((proto, buf[..n].to_vec()));
                }
            });
        }
        Self {
            dns_addr,
            tcp_port,
            udp_port,
            received,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BW_ADDR", "127.0.0.1".to_owned()),
            ("BW_TCP_PORT", self.tcp_port.to_string()),
            ("BW_UDP_PORT", self.udp_port.to_string()),
            ("BW_DNS_ADDR", self.dns_addr.to_owned()),
        ]
    }

    /// Everything received so far, after a moment for in-flight data.
    fn received(&self) -> Received {
        std::thread::sleep(Duration::from_millis(300));
        self.received.lock().expect("lock").clone()
    }
}

/// A watched build of the evasive fixture and what came of it.
struct Build {
    out: Output,
    report: Value,
    events: Vec<Value>,
    home: PathBuf,
    tcp_port: u16,
    udp_port: u16,
    received: Received,
}

impl Build {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn home(&self, rel: &str) -> String {
        self.home.join(rel).display().to_string()
    }

    /// Findings with `code` on `krate`.
    fn findings(&self, code: &str, krate: &str) -> Vec<&Value> {
        self.report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["code"] == code && f["crate"]["name"] == krate)
            .collect()
    }

    /// The one finding with `code` on `krate` whose subject is `subject`, checked to be attributed
    /// exactly to `role` of `krate` 0.1.0.
    fn finding(&self, code: &str, krate: &str, role: &str, subject: &str) -> &Value {
        let all = self.findings(code, krate);
        let found = all
            .iter()
            .find(|f| f["subject"] == subject)
            .unwrap_or_else(|| {
                panic!(
                    "no {code} finding on {krate} for {subject}; {krate}'s: {all:#?}\n{}",
                    self.stderr()
                )
            });
        assert_exact(found, krate, role);
        found
    }

    /// Events of `kind` attributed to `krate`.
    fn events_of<'a>(&'a self, kind: &'a str, krate: &'a str) -> impl Iterator<Item = &'a Value> {
        self.events
            .iter()
            .filter(move |e| e["kind"] == kind && e["actor"]["crate"] == krate)
    }

    fn got(&self, proto: &str, payload: &[u8]) -> bool {
        self.received
            .iter()
            .any(|(p, d)| *p == proto && d.as_slice() == payload)
    }
}

fn assert_exact(finding: &Value, krate: &str, role: &str) {
    assert_eq!(finding["crate"]["name"], krate, "{finding:#}");
    assert_eq!(finding["crate"]["version"], VERSION, "{finding:#}");
    assert_eq!(finding["role"], role, "{finding:#}");
    let candidates = finding["candidates"].as_array().map_or(0, Vec::len);
    assert_eq!(candidates, 0, "attribution is exact: {finding:#}");
}

/// A fresh directory (removed first: a previous run's leftovers would hide a rebuild).
fn fresh_dir(path: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(path);
    std::fs::create_dir_all(path).expect("mkdir");
    path.to_path_buf()
}

/// The fake HOME (the fixtures act only on a HOME under /tmp/) with the files they read.
fn fake_home(name: &str) -> PathBuf {
    let home = fresh_dir(&Path::new("/tmp").join(name));
    for (rel, text) in [
        (".ssh/id_rsa", "FAKE PRIVATE KEY\n"),
        (".cargo/credentials.toml", "[registry]\ntoken = \"fake\"\n"),
        (".aws/credentials", "[default]\naws_access_key_id = FAKE\n"),
        (".config/forker-marker", "forker marker\n"),
        (".config/forker-late", "forker late\n"),
    ] {
        let path = home.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    home
}

/// `buildwatch ci <extra> --report … --events … -- sh -c "<build> && sleep 1"` in a fresh copy of
/// the fixture, with the listeners' addresses and the fake home in the environment.
fn watch_fixture(
    name: &str,
    dns_addr: &'static str,
    extra: &[&str],
    build: &str,
    more_env: &[(&str, &str)],
) -> (Listeners, Build) {
    require_root();
    let listeners = Listeners::start(dns_addr);
    let dir = fresh_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join(name));
    copy_fixture("evasive", &dir);
    let home = fake_home(&format!("buildwatch-{name}-home"));
    let report = dir.join("report.json");
    let events = dir.join("events.jsonl");
    let profiles = dir.join("no-profiles");
    let (report_arg, events_arg, profiles_arg) = (
        report.display().to_string(),
        events.display().to_string(),
        profiles.display().to_string(),
    );
    let mut args = vec!["ci", "--profiles", &profiles_arg, "--report", &report_arg];
    args.extend(["--events", &events_arg]);
    args.extend_from_slice(extra);
    // forker's grandchild outlives its build script by ~300 ms: keep watching a little.
    let script = format!("{build} && sleep 1");
    args.extend(["--", "sh", "-c", &script]);
    let owned = [
        ("CARGO_HOME", real_home_dir("CARGO_HOME", ".cargo")),
        ("RUSTUP_HOME", real_home_dir("RUSTUP_HOME", ".rustup")),
        ("HOME", home.display().to_string()),
    ];
    let listener_env = listeners.env();
    let mut env: Vec<(&str, &str)> = owned
        .iter()
        .chain(&listener_env)
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    env.extend_from_slice(more_env);
    let out = buildwatch_in(&dir, &args, &env);
    let report = if report.exists() {
        read_report(&report)
    } else {
        Value::Null
    };
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("event is JSON"))
        .collect();
    let received = listeners.received();
    let build = Build {
        out,
        report,
        events,
        home,
        tcp_port: listeners.tcp_port,
        udp_port: listeners.udp_port,
        received,
    };
    (listeners, build)
}

/// The shared watched build (made by the first test that needs it; tests run one at a time).
fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let (_listeners, build) = watch_fixture(
            "evasive-watched",
            DNS_ADDR,
            &[],
            "cargo build --offline",
            &[],
        );
        assert_eq!(
            build.report["exit_status"],
            0,
            "the fixture builds\n{}",
            build.stderr()
        );
        build
    })
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_evasive_build_fails_ci_with_exit_3() {
    let b = build();
    assert_eq!(b.out.status.code(), Some(3), "{}", b.stderr());
    assert_eq!(b.report["lost_events"], 0, "no events lost");
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn udp_sendto_without_connect() {
    let b = build();
    assert!(b.got("udp", b"udp-sender"), "the datagram was sent");
    let dest = format!("127.0.0.1:{}", b.udp_port);
    b.finding("unexpected-network", "udp-sender", "build-script", &dest);
    assert!(
        b.events_of("connect", "udp-sender")
            .any(|e| e["syscall"] == "sendto" && e["port"] == b.udp_port),
        "a sendto event with the destination"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn udp_sendmsg_with_the_address_in_the_msghdr() {
    let b = build();
    assert!(b.got("udp", b"udp-sendmsg"), "the datagram was sent");
    let dest = format!("127.0.0.1:{}", b.udp_port);
    b.finding("unexpected-network", "udp-sendmsg", "build-script", &dest);
    assert!(
        b.events_of("connect", "udp-sendmsg")
            .any(|e| e["syscall"] == "sendmsg" && e["port"] == b.udp_port)
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn tcp_fast_open_without_connect() {
    let b = build();
    assert!(b.got("tcp", b"fastopen"), "the connection was made");
    let dest = format!("127.0.0.1:{}", b.tcp_port);
    let f = b.finding("unexpected-network", "fastopen", "build-script", &dest);
    assert!(
        f["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Fast Open"),
        "{f:#}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn io_uring_connect_and_send_are_seen_by_the_cgroup_hook() {
    let b = build();
    assert!(b.got("tcp", b"uring-net"), "the connection was made");
    let dest = format!("127.0.0.1:{}", b.tcp_port);
    b.finding("unexpected-network", "uring-net", "build-script", &dest);
    assert!(
        b.events_of("connect", "uring-net")
            .any(|e| e["syscall"] == "io_uring"),
        "the connect came from the cgroup hook, not a syscall"
    );
    let ops: Vec<&str> = b
        .events_of("io-uring", "uring-net")
        .filter_map(|e| e["op"].as_str())
        .collect();
    assert!(
        ops.contains(&"setup") && ops.contains(&"CONNECT"),
        "{ops:?}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn io_uring_file_access_is_an_io_uring_use_finding() {
    let b = build();
    let uses = b.findings("io-uring-use", "uring-open");
    for f in &uses {
        assert_exact(f, "uring-open", "build-script");
    }
    let subjects: Vec<&str> = uses.iter().filter_map(|f| f["subject"].as_str()).collect();
    assert!(
        subjects.iter().any(|s| s.contains("setup"))
            && subjects.iter().any(|s| s.contains("OPENAT")),
        "ring setup and the OPENAT submission: {subjects:?}\n{}",
        b.stderr()
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn memfd_execveat_is_a_fileless_exec() {
    let b = build();
    let f = b.findings("fileless-exec", "memfd-exec");
    assert_eq!(f.len(), 1, "{f:#?}\n{}", b.stderr());
    assert_exact(f[0], "memfd-exec", "build-script");
    assert!(
        f[0]["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("memfd:payload"),
        "{:#}",
        f[0]
    );
    assert!(
        b.events_of("exec", "memfd-exec")
            .any(|e| e["exe"] == "/memfd:payload" && e["deleted"] == true)
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn open_by_handle_at_is_a_sensitive_read() {
    let b = build();
    let key = b.home(".ssh/id_rsa");
    b.finding("sensitive-read", "handle-open", "build-script", &key);
    assert!(
        b.events_of("open", "handle-open")
            .any(|e| e["syscall"] == "open_by_handle_at" && e["path"] == key.as_str()),
        "the handle resolved to the key's path"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn open_openat2_and_creat_are_seen() {
    let b = build();
    for (syscall, rel, code) in [
        ("open", ".cargo/credentials.toml", "sensitive-read"),
        ("openat2", ".aws/credentials", "sensitive-read"),
        (
            "creat",
            ".config/systemd/user/buildwatch-test.service",
            "persistence-write",
        ),
    ] {
        let path = b.home(rel);
        b.finding(code, "legacy-open", "build-script", &path);
        assert!(
            b.events_of("open", "legacy-open")
                .any(|e| e["syscall"] == syscall && e["path"] == path.as_str()),
            "{syscall} of {path}"
        );
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn int_0x80_system_calls_are_seen() {
    let b = build();
    assert!(
        b.got("tcp", b"int80:FAKE PRIVATE KEY\n"),
        "the key went out: {:?}",
        b.received
    );
    let key = b.home(".ssh/id_rsa");
    b.finding("sensitive-read", "int80", "build-script", &key);
    assert!(
        b.events_of("open", "int80")
            .any(|e| e["path"] == key.as_str() && e["compat"] == true),
        "the 32-bit open is an open event like any other, flagged compat"
    );
    for call in ["open", "read", "socket", "connect", "write"] {
        b.finding(
            "compat-syscall",
            "int80",
            "build-script",
            &format!("int 0x80 {call}"),
        );
    }
    let dest = format!("127.0.0.1:{}", b.tcp_port);
    b.finding("unexpected-network", "int80", "build-script", &dest);
    assert!(
        b.events_of("connect", "int80")
            .any(|e| e["syscall"] == "int80-connect"),
        "the cgroup hook saw the 32-bit connect"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_secret_read_through_a_hard_link_is_a_sensitive_read() {
    let b = build();
    let key = b.home(".ssh/id_rsa");
    let finding = b.finding("sensitive-read", "hardlink", "build-script", &key);
    assert!(
        finding["detail"]
            .as_str()
            .is_some_and(|d| d.contains("hard-linked")),
        "{finding:#}"
    );
    assert!(
        b.events_of("open", "hardlink")
            .any(|e| e["syscall"] == "link-source" && e["path"] == key.as_str()),
        "the link's old name is reported"
    );
    assert!(
        b.stderr().contains("hardlink: read 17 bytes"),
        "the trick worked: {}",
        b.stderr()
    );
    // The read through the new name is known by the inode.
    assert!(
        b.events_of("open", "hardlink").any(|e| e["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/out/k"))
            && e["protected"]["path"] == key.as_str()
            && e["protected"]["category"] == "ssh-key"),
        "the read through the link names the protected file"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_bind_mount_in_a_private_namespace_is_a_sensitive_read_by_inode() {
    let b = build();
    assert!(
        b.stderr()
            .contains("nsbind: read 17 bytes through the bind mount"),
        "the trick worked: {}",
        b.stderr()
    );
    b.finding(
        "namespace-use",
        "nsbind",
        "build-script",
        "unshare CLONE_NEWUSER|CLONE_NEWNS",
    );
    // The key was read as $OUT_DIR/mnt/id_rsa; the kernel knew the inode.
    let key = b.home(".ssh/id_rsa");
    let finding = b.finding("sensitive-read", "nsbind", "build-script", &key);
    assert!(
        finding["detail"]
            .as_str()
            .is_some_and(|d| d.contains("/mnt/id_rsa") && d.contains("recognised by its inode")),
        "{finding:#}"
    );
    assert!(
        b.events_of("open", "nsbind").any(|e| e["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/out/mnt/id_rsa"))
            && e["protected"]["path"] == key.as_str()),
        "the open through the bind mount names the protected file"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn vfork_clone3_posix_spawn_and_a_setsid_grandchild_stay_attributed() {
    let b = build();
    let programs: Vec<&str> = b
        .events_of("exec", "forker")
        .filter(|e| e["actor"]["role"] == "build-script")
        .filter_map(|e| e["path"].as_str())
        .collect();
    let trues = programs.iter().filter(|p| **p == "/bin/true").count();
    assert_eq!(
        trues, 2,
        "vfork and posix_spawn each ran /bin/true: {programs:?}"
    );
    assert!(
        programs.contains(&"/bin/cat"),
        "clone3 ran cat: {programs:?}"
    );
    // The grandchild (fork, setsid, fork: re-parented away from the build script) opens this
    // after the build script has exited.
    let late = b.home(".config/forker-late");
    let open = b
        .events_of("open", "forker")
        .find(|e| e["path"] == late.as_str())
        .unwrap_or_else(|| panic!("the grandchild's open of {late}\n{}", b.stderr()));
    assert_eq!(open["actor"]["role"], "build-script");
    let script_pid = b
        .events_of("exec", "forker")
        .find(|e| e["path"] == "/bin/true")
        .map(|e| e["ppid"].clone())
        .expect("forker's children");
    let script_exit = b
        .events
        .iter()
        .find(|e| e["kind"] == "exit" && e["pid"] == script_pid)
        .expect("the build script's exit");
    assert!(
        open["time_ns"].as_u64() > script_exit["time_ns"].as_u64(),
        "the open came after the build script exited"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn dns_queries_are_reported_with_the_name() {
    let b = build();
    assert!(
        b.received.iter().any(|(p, _)| *p == "dns"),
        "the query reached the test's resolver"
    );
    let name = "exfil-data.buildwatch.test";
    assert!(
        b.events_of("dns", "dns-query")
            .any(|e| e["name"] == name && e["qtype"] == "A" && e["server"] == DNS_ADDR),
        "a dns event with the queried name"
    );
    b.finding(
        "unexpected-network",
        "dns-query",
        "build-script",
        &format!("dns:{name}"),
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn ptrace_process_vm_writev_readv_proc_mem_and_pidfd_getfd_are_process_tampering() {
    let b = build();
    let details: Vec<&str> = b
        .findings("process-tamper", "tamperer")
        .into_iter()
        .inspect(|f| assert_exact(f, "tamperer", "build-script"))
        .filter_map(|f| f["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("ptrace PTRACE_ATTACH")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("process_vm_writev")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("process_vm_readv")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("opened /proc/") && d.contains("/mem for reading")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("pidfd_getfd: took a copy of fd 0")),
        "{details:?}"
    );
    assert!(
        !b.stderr().contains("tamperer: pidfd_getfd"),
        "the descriptor was really taken: {}",
        b.stderr()
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn persistence_writes_including_by_rename() {
    let b = build();
    for rel in [
        ".bashrc",
        ".ssh/authorized_keys",
        ".cargo/config.toml",
        ".profile",
    ] {
        b.finding(
            "persistence-write",
            "persister",
            "build-script",
            &b.home(rel),
        );
    }
    let profile = b.home(".profile");
    assert!(
        b.events_of("open", "persister")
            .any(|e| e["syscall"] == "rename" && e["path"] == profile.as_str()),
        ".profile was planted by rename"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_proc_macro_sending_udp_is_attributed_exactly() {
    let b = build();
    assert!(b.got("udp", b"pm-udp"), "the datagram was sent");
    let dest = format!("127.0.0.1:{}", b.udp_port);
    let f = b.finding("unexpected-network", "pm-udp", "proc-macro", &dest);
    assert_eq!(f["role"], "proc-macro");
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_proc_macro_using_io_uring_is_attributed_exactly() {
    let b = build();
    let uses = b.findings("io-uring-use", "pm-uring");
    assert!(!uses.is_empty(), "{}", b.stderr());
    for f in &uses {
        assert_exact(f, "pm-uring", "proc-macro");
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn enforce_refuses_every_network_trick() {
    // --keep-going: the crates kill mode stops (int80's 32-bit calls, the namespace, ptrace and
    // memfd tricks) fail their build scripts; every other crate is still built and refused.
    let (_listeners, b) = watch_fixture(
        "evasive-enforce",
        "127.0.0.78",
        &["--enforce"],
        "cargo build --offline --keep-going; true",
        &[],
    );
    assert_eq!(b.out.status.code(), Some(3), "{}", b.stderr());
    assert!(
        b.received.is_empty(),
        "nothing got through: {:?}",
        b.received
    );
    for (krate, role) in [
        ("udp-sender", "build-script"),
        ("udp-sendmsg", "build-script"),
        ("fastopen", "build-script"),
        ("uring-net", "build-script"),
        ("dns-query", "build-script"),
        // pm-udp is not here: its only user (app) depends on crates kill mode stops, so it is
        // never compiled; a proc-macro refused under --enforce is tests/network.rs's pm-pivot.
    ] {
        let refused: Vec<&Value> = b
            .findings("unexpected-network", krate)
            .into_iter()
            .filter(|f| f["detail"].as_str().unwrap_or_default().contains("refused"))
            .collect();
        assert!(!refused.is_empty(), "{krate} refused\n{}", b.stderr());
        for f in refused {
            assert_exact(f, krate, role);
        }
    }
    // What no hook refuses is killed: the 32-bit calls before any connect, the program run from
    // memory, the namespace.
    for (krate, code) in [
        ("int80", "compat-syscall"),
        ("memfd-exec", "fileless-exec"),
        ("nsbind", "namespace-use"),
    ] {
        let killed = b
            .findings(code, krate)
            .into_iter()
            .any(|f| f["killed"] == true);
        assert!(killed, "{krate}: {code} killed\n{}", b.stderr());
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn flooding_the_ring_buffer_fails_closed() {
    let (_listeners, b) = watch_fixture(
        "evasive-flood",
        "127.0.0.79",
        &["--ring-buffer-size", "4096"],
        "cargo build --offline -p flooder",
        &[("BW_FLOOD", "300000")],
    );
    assert!(
        b.got("tcp", b"flooder"),
        "the flood was followed by the connect"
    );
    assert_eq!(b.out.status.code(), Some(4), "{}", b.stderr());
    assert!(b.report["lost_events"].as_u64().unwrap_or(0) > 0);
    assert!(
        b.report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["code"] == "events-lost"),
        "an events-lost finding"
    );
}
