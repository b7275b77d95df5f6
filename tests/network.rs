//! Where data goes and who sent it, when a crate hides both: each crate of
//! `tests/fixtures/netevasive` uses one trick (see its README), and each test here asserts that
//! the trick really happened (the test's listener got the payload), that buildwatch reported it
//! with the right finding, and whom it named: crate, version, role, and whether the attribution
//! is exact. The `--enforce` build proves the tricks are stopped and every refusal is a finding.
mod support;

use std::{
    io::Read,
    net::{TcpListener, UdpSocket},
    os::unix::net::UnixListener,
    path::{Path, PathBuf},
    process::Output,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use serde_json::Value;
use support::{buildwatch_in, copy_fixture, read_report, real_home_dir, require_root};

const VERSION: &str = "0.1.0";

/// Accepts the next connection of a listener: its stream, or `None` once the listener fails.
type Accept = Box<dyn FnMut() -> Option<Box<dyn Read + Send>> + Send>;

/// What the listeners received: (listener, payload).
type Received = Vec<(&'static str, Vec<u8>)>;

/// Loopback and unix listeners recording what they received.
struct Listeners {
    tcp_port: u16,
    udp_port: u16,
    decoy_port: u16,
    ssh_sock: PathBuf,
    docker_sock: PathBuf,
    received: Arc<Mutex<Received>>,
}

impl Listeners {
    fn start(sock_dir: &Path) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let decoy = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = |a: std::io::Result<std::net::SocketAddr>| a.expect("addr").port();
        let (tcp_port, udp_port, decoy_port) = (
            port(tcp.local_addr()),
            port(udp.local_addr()),
            port(decoy.local_addr()),
        );
        let ssh_sock = sock_dir.join("agent.sock");
        let docker_sock = sock_dir.join("docker.sock");
        let record = |name: &'static str, data: Vec<u8>, received: &Arc<Mutex<Received>>| {
            received.lock().expect("lock").push((name, data));
        };
        let streams: Vec<(&'static str, Accept)> = vec![
            ("tcp", {
                Box::new(move || {
                    let (s, _) = tcp.accept().ok()?;
                    Some(Box::new(s) as Box<dyn Read + Send>)
                })
            }),
            ("ssh", {
                let l = UnixListener::bind(&ssh_sock).expect("bind unix");
                Box::new(move || {
                    let (s, _) = l.accept().ok()?;
                    Some(Box::new(s) as Box<dyn Read + Send>)
                })
            }),
            ("docker", {
                let l = UnixListener::bind(&docker_sock).expect("bind unix");
                Box::new(move || {
                    let (s, _) = l.accept().ok()?;
                    Some(Box::new(s) as Box<dyn Read + Send>)
                })
            }),
        ];
        for (name, mut accept) in streams {
            let received = received.clone();
            std::thread::spawn(move || {
                while let Some(mut s) = accept() {
                    let mut buf = Vec::new();
                    let _ = s.read_to_end(&mut buf);
                    record(name, buf, &received);
                }
            });
        }
        for (socket, name) in [(udp, "udp"), (decoy, "decoy")] {
            let received = received.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while let Ok((n, _)) = socket.recv_from(&mut buf) {
                    record(name, buf[..n].to_vec(), &received);
                }
            });
        }
        Self {
            tcp_port,
            udp_port,
            decoy_port,
            ssh_sock,
            docker_sock,
            received,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BW_ADDR", "127.0.0.1".to_owned()),
            ("BW_TCP_PORT", self.tcp_port.to_string()),
            ("BW_UDP_PORT", self.udp_port.to_string()),
            ("BW_DECOY_PORT", self.decoy_port.to_string()),
            ("SSH_AUTH_SOCK", self.ssh_sock.display().to_string()),
            ("BW_DOCKER_SOCK", self.docker_sock.display().to_string()),
        ]
    }
}

/// A watched build of the fixture and what came of it.
struct Build {
    out: Output,
    report: Value,
    events: Vec<Value>,
    udp_port: u16,
    decoy_port: u16,
    tcp_port: u16,
    ssh_sock: String,
    docker_sock: String,
    received: Received,
}

impl Build {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn findings(&self, code: &str, krate: &str) -> Vec<&Value> {
        self.report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["code"] == code && f["crate"]["name"] == krate)
            .collect()
    }

    /// The finding with `code` on `krate` whose subject contains `subject`, checked to be
    /// attributed exactly to `role` of `krate` 0.1.0.
    fn finding(&self, code: &str, krate: &str, role: &str, subject: &str) -> &Value {
        let all = self.findings(code, krate);
        let found = all
            .iter()
            .find(|f| f["subject"].as_str().is_some_and(|s| s.contains(subject)))
            .unwrap_or_else(|| {
                panic!(
                    "no {code} finding on {krate} for {subject}; {krate}'s: {all:#?}\nall: {:#}\n{}",
                    self.report["findings"],
                    self.stderr()
                )
            });
        assert_exact(found, krate, role);
        found
    }

    fn got(&self, listener: &str, payload: &[u8]) -> bool {
        self.received
            .iter()
            .any(|(l, d)| *l == listener && d.as_slice() == payload)
    }
}

fn assert_exact(finding: &Value, krate: &str, role: &str) {
    assert_eq!(finding["crate"]["name"], krate, "{finding:#}");
    assert_eq!(finding["crate"]["version"], VERSION, "{finding:#}");
    assert_eq!(finding["role"], role, "{finding:#}");
    assert_eq!(finding["exact"], true, "attribution is exact: {finding:#}");
    let candidates = finding["candidates"].as_array().map_or(0, Vec::len);
    assert_eq!(candidates, 0, "attribution is exact: {finding:#}");
}

fn fresh_dir(path: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(path);
    std::fs::create_dir_all(path).expect("mkdir");
    path.to_path_buf()
}

/// `buildwatch ci <extra> ... -- cargo build --offline` in a fresh copy of the fixture.
fn watch_fixture(name: &str, extra: &[&str]) -> Build {
    watch_fixture_building(name, extra, "cargo build --offline")
}

/// `buildwatch ci <extra> ... -- <cargo>` in a fresh copy of the fixture.
fn watch_fixture_building(name: &str, extra: &[&str], cargo: &str) -> Build {
    require_root();
    let sock_dir = fresh_dir(&Path::new("/tmp").join(format!("buildwatch-{name}-sock")));
    let listeners = Listeners::start(&sock_dir);
    let dir = fresh_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join(name));
    copy_fixture("netevasive", &dir);
    let home = fresh_dir(&Path::new("/tmp").join(format!("buildwatch-{name}-home")));
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
    let command = format!("{cargo} && sleep 1");
    args.extend(["--", "sh", "-c", &command]);
    let owned = [
        ("CARGO_HOME", real_home_dir("CARGO_HOME", ".cargo")),
        ("RUSTUP_HOME", real_home_dir("RUSTUP_HOME", ".rustup")),
        ("HOME", home.display().to_string()),
    ];
    let listener_env = listeners.env();
    let env: Vec<(&str, &str)> = owned
        .iter()
        .chain(&listener_env)
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
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
    std::thread::sleep(Duration::from_millis(300));
    let received = listeners.received.lock().expect("lock").clone();
    Build {
        out,
        report,
        events,
        udp_port: listeners.udp_port,
        decoy_port: listeners.decoy_port,
        tcp_port: listeners.tcp_port,
        ssh_sock: listeners.ssh_sock.display().to_string(),
        docker_sock: listeners.docker_sock.display().to_string(),
        received,
    }
}

/// The shared watched build (tests run one at a time).
fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let b = watch_fixture("netevasive-watched", &[]);
        assert_eq!(
            b.report["exit_status"],
            0,
            "the fixture builds\n{}",
            b.stderr()
        );
        b
    })
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_network_build_fails_ci_with_exit_3() {
    let b = build();
    assert_eq!(b.out.status.code(), Some(3), "{}", b.stderr());
    assert_eq!(b.report["lost_events"], 0, "no events lost");
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn every_message_of_a_sendmmsg_is_reported() {
    let b = build();
    assert!(
        b.got("decoy", b"mmsg-decoy"),
        "the decoy was sent: {:?}",
        b.received
    );
    assert!(
        b.got("udp", b"mmsg-secret"),
        "the payload was sent: {:?}",
        b.received
    );
    for port in [b.decoy_port, b.udp_port] {
        b.finding(
            "unexpected-network",
            "mmsg-decoy",
            "build-script",
            &format!("127.0.0.1:{port}"),
        );
        assert!(
            b.events
                .iter()
                .any(|e| e["kind"] == "connect" && e["syscall"] == "sendmmsg" && e["port"] == port),
            "a sendmmsg event to port {port}"
        );
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_proc_macro_on_a_stack_of_its_own_is_named_by_the_instruction_pointer() {
    let b = build();
    assert!(
        b.got("udp", b"pm-pivot"),
        "the datagram was sent: {:?}",
        b.received
    );
    b.finding(
        "unexpected-network",
        "pm-pivot",
        "proc-macro",
        &format!("127.0.0.1:{}", b.udp_port),
    );
    assert!(
        b.findings("unexpected-network", "pm-benign").is_empty(),
        "the harmless proc-macro loaded first is not blamed"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn agent_and_daemon_sockets_fail_ci() {
    let b = build();
    assert!(b.got("ssh", b"agent-sock:ssh"), "{:?}", b.received);
    assert!(b.got("docker", b"agent-sock:docker"), "{:?}", b.received);
    for sock in [&b.ssh_sock, &b.docker_sock] {
        let f = b.finding("agent-socket", "agent-sock", "build-script", sock);
        assert_eq!(f["severity"], "error", "{f:#}");
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_connection_from_rustc_s_linker_is_a_finding() {
    let b = build();
    assert!(
        b.got("tcp", b"linker-hook"),
        "the planted linker step connected: {:?}",
        b.received
    );
    // The wrapper came from the crate's OUT_DIR through its link arguments: what it does is the
    // build script's, and the arguments themselves are link-injection.
    b.finding(
        "unexpected-network",
        "linker-hook",
        "build-script",
        &format!("127.0.0.1:{}", b.tcp_port),
    );
    b.finding(
        "link-injection",
        "linker-hook",
        "build-script",
        "arg:-wrapper",
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn enforce_refuses_every_datagram_and_reports_each_refusal() {
    let b = watch_fixture("netevasive-enforce", &["--enforce"]);
    assert_eq!(
        b.report["exit_status"],
        0,
        "the build succeeds\n{}",
        b.stderr()
    );
    assert_eq!(b.out.status.code(), Some(3), "{}", b.stderr());
    let inet: Vec<_> = b
        .received
        .iter()
        .filter(|(l, _)| matches!(*l, "udp" | "decoy" | "tcp"))
        .collect();
    assert!(inet.is_empty(), "nothing got through: {inet:?}");
    let refused = |code: &str, krate: &str, role: &str| {
        let all = b.findings(code, krate);
        let f: Vec<_> = all
            .iter()
            .filter(|f| f["detail"].as_str().unwrap_or_default().contains("refused"))
            .collect();
        assert!(
            !f.is_empty(),
            "{krate}: a refused {code} finding: {all:#?}\n{}",
            b.stderr()
        );
        for f in f {
            assert_exact(f, krate, role);
        }
    };
    refused("unexpected-network", "mmsg-decoy", "build-script");
    refused("unexpected-network", "pm-pivot", "proc-macro");
    refused("unexpected-network", "linker-hook", "build-script");
    // Unix sockets cannot be refused by the cgroup hooks: reported all the same.
    assert!(b.got("ssh", b"agent-sock:ssh"), "{:?}", b.received);
    b.finding("agent-socket", "agent-sock", "build-script", &b.ssh_sock);
}

/// The build script of `package` (raw-udp, raw-packet), run as root (raw and packet sockets need
/// CAP_NET_RAW, which builds in many CI containers have), with `extra` options; `ci` fails.
fn raw_build(name: &str, package: &str, extra: &[&str]) -> Build {
    let mut args = vec!["--user", "root"];
    args.extend_from_slice(extra);
    let b = watch_fixture_building(name, &args, &format!("cargo build --offline -p {package}"));
    assert_eq!(b.out.status.code(), Some(3), "{}", b.stderr());
    b
}

fn raw_udp_build(name: &str, extra: &[&str]) -> Build {
    let b = raw_build(name, "raw-udp", extra);
    assert_eq!(
        b.report["exit_status"],
        0,
        "the fixture builds\n{}",
        b.stderr()
    );
    b
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_raw_socket_is_a_finding_naming_the_destination_inside_the_packet() {
    let b = raw_udp_build("netevasive-raw", &[]);
    assert!(
        b.got("udp", b"raw-udp"),
        "the hand-built datagram arrived: {:?}\n{}",
        b.received,
        b.stderr()
    );
    let created = b.finding(
        "raw-socket",
        "raw-udp",
        "build-script",
        "socket inet SOCK_RAW 255",
    );
    assert_eq!(created["severity"], "error", "{created:#}");
    // The port the packet's UDP header names, not the 9 of the sockaddr passed with it.
    let real = format!("127.0.0.1:{}", b.udp_port);
    let sent = b.finding(
        "raw-socket",
        "raw-udp",
        "build-script",
        &format!("packet to {real}"),
    );
    let detail = sent["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("127.0.0.1:9"),
        "the decoy address is named as such: {sent:#}"
    );
    assert!(
        b.events.iter().any(|e| e["kind"] == "connect"
            && e["syscall"] == "raw-sendto"
            && e["port"] == b.udp_port
            && e["passed"] == "127.0.0.1:9"),
        "a raw-sendto event to the real port"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn enforce_refuses_a_raw_socket_and_reports_the_refusal() {
    let b = raw_udp_build("netevasive-raw-enforce", &["--enforce"]);
    assert!(
        !b.got("udp", b"raw-udp"),
        "nothing got through: {:?}",
        b.received
    );
    let f = b.finding(
        "raw-socket",
        "raw-udp",
        "build-script",
        "socket inet SOCK_RAW 255",
    );
    let detail = f["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("refused by --enforce"), "{f:#}");
    assert!(
        b.events
            .iter()
            .any(|e| e["kind"] == "socket" && e["refused"] == true && e["error"] == "EPERM"),
        "the socket event says refused"
    );
}

/// Frames seen on the loopback interface that contain `marker`, from now on (a packet socket of
/// the test's own: this kernel's loopback does not hand a frame injected by a packet socket to
/// the IP stack, so the UDP listener cannot be the witness).
fn sniff_loopback(marker: &'static [u8]) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let eth_p_all = 3u16.to_be();
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(eth_p_all)) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: a zeroed sockaddr_ll is valid; the fields set below make it name `lo`.
    let mut at: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    at.sll_family = libc::AF_PACKET as u16;
    at.sll_protocol = eth_p_all;
    // SAFETY: a NUL-terminated name.
    at.sll_ifindex = unsafe { libc::if_nametoindex(c"lo".as_ptr()) } as i32;
    // SAFETY: `at` is a valid sockaddr_ll of the length given.
    let bound = unsafe {
        libc::bind(
            fd,
            (&raw const at).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(bound, 0, "bind to lo: {}", std::io::Error::last_os_error());
    let frames = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            // SAFETY: reading into a local buffer of the given length from an owned socket.
            let n = unsafe {
                libc::recv(
                    std::os::fd::AsRawFd::as_raw_fd(&sock),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                )
            };
            if n < 0 {
                break;
            }
            let frame = &buf[..n as usize];
            if frame.windows(marker.len()).any(|w| w == marker) {
                frames.lock().expect("lock").push(frame.to_vec());
            }
        }
    });
    seen
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_frame_written_to_a_packet_socket_is_named_by_its_own_headers() {
    let frames = sniff_loopback(b"raw-packet");
    let b = raw_build("netevasive-packet", "raw-packet", &[]);
    assert_eq!(
        b.report["exit_status"],
        0,
        "the fixture builds\n{}",
        b.stderr()
    );
    assert!(
        !frames.lock().expect("lock").is_empty(),
        "the hand-built frame went out on lo\n{}",
        b.stderr()
    );
    b.finding(
        "raw-socket",
        "raw-packet",
        "build-script",
        "socket packet SOCK_RAW",
    );
    // No address in any call: the destination comes from the frame's IPv4 and UDP headers.
    let real = format!("127.0.0.1:{}", b.udp_port);
    b.finding(
        "raw-socket",
        "raw-packet",
        "build-script",
        &format!("packet to {real}"),
    );
    assert!(
        b.events.iter().any(|e| e["kind"] == "connect"
            && e["syscall"] == "raw-write"
            && e["port"] == b.udp_port),
        "a raw-write event to the real port"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn enforce_kills_a_build_script_that_opens_a_packet_socket() {
    let frames = sniff_loopback(b"raw-packet");
    let b = raw_build("netevasive-packet-enforce", "raw-packet", &["--enforce"]);
    assert!(
        frames.lock().expect("lock").is_empty(),
        "no frame went out on lo"
    );
    assert_ne!(
        b.report["exit_status"], 0,
        "the build script was killed, the build failed"
    );
    let f = b.finding(
        "raw-socket",
        "raw-packet",
        "build-script",
        "socket packet SOCK_RAW",
    );
    let detail = f["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("killed by --enforce"), "{f:#}");
    assert!(
        b.findings("raw-socket", "raw-packet")
            .iter()
            .all(|f| !f["subject"]
                .as_str()
                .unwrap_or_default()
                .starts_with("packet to")),
        "no packet left"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_raw_socket_created_through_io_uring_is_seen_by_the_cgroup_hook() {
    let b = raw_build("netevasive-raw-uring", "raw-uring", &[]);
    assert_eq!(
        b.report["exit_status"],
        0,
        "the fixture builds\n{}",
        b.stderr()
    );
    assert!(
        b.got("udp", b"raw-uring"),
        "the hand-built datagram arrived: {:?}\n{}",
        b.received,
        b.stderr()
    );
    // No socket() system call: IORING_OP_SOCKET, seen by the cgroup sock_create hook.
    b.finding(
        "raw-socket",
        "raw-uring",
        "build-script",
        "socket inet SOCK_RAW 255",
    );
    b.finding(
        "raw-socket",
        "raw-uring",
        "build-script",
        &format!("packet to 127.0.0.1:{}", b.udp_port),
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn enforce_refuses_a_raw_socket_created_through_io_uring() {
    let b = raw_build("netevasive-raw-uring-enforce", "raw-uring", &["--enforce"]);
    assert_eq!(
        b.report["exit_status"],
        0,
        "the fixture builds\n{}",
        b.stderr()
    );
    assert!(
        !b.got("udp", b"raw-uring"),
        "nothing got through: {:?}",
        b.received
    );
    let f = b.finding(
        "raw-socket",
        "raw-uring",
        "build-script",
        "socket inet SOCK_RAW 255",
    );
    let detail = f["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("refused by --enforce"), "{f:#}");
}
