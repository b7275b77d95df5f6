//! Decoding hand-built records of every family.
use super::*;
use monitor_common::{COMM_LEN, UNIX_PATH_MAX};

use super::file::PIPEFS_MAGIC;

fn header(kind: u32, size: usize) -> RecordHeader {
    let mut comm = [0u8; COMM_LEN];
    comm[..4].copy_from_slice(b"test");
    RecordHeader {
        kind,
        size: size as u32,
        time_ns: 1_000,
        tgid: 100,
        tid: 101,
        comm,
    }
}

fn decoder() -> Decoder {
    Decoder::new(5_000)
}

#[test]
fn fork_and_exit() {
    let rec = ForkRecord {
        header: header(kind::FORK, 56),
        child_tgid: 200,
        parent_tgid: 100,
        callers: 0b1010,
        _pad: 0,
    };
    let ev = decoder().decode(rec.as_bytes()).expect("decode");
    assert_eq!(ev.kind, EventKind::Fork(Fork { child_pid: 200 }));
    assert_eq!(ev.callers, [1, 3]);
    assert_eq!(ev.callers, [1, 3]);
    assert_eq!(
        (ev.pid, ev.tid, ev.comm.as_str(), ev.time_ns),
        (100, 101, "test", 6_000)
    );

    let rec = ExitRecord {
        header: header(kind::EXIT, 48),
        exit_code: 3 << 8,
        quiet_failures: 17,
    };
    let ev = decoder().decode(rec.as_bytes()).expect("decode");
    assert_eq!(
        ev.kind,
        EventKind::Exit(Exit {
            code: Some(3),
            signal: None,
            quiet_failed_reads: 17,
        })
    );
}

fn with_tail(fixed: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut v = fixed.to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

#[test]
fn exec_keeps_only_cargo_variables() {
    let env: &[u8] = b"HOME=/root\0SECRET_TOKEN=hunter2\0CARGO_PKG_NAME=foo\0CARGO_PKG_VERSION=1.2.3\0OUT_DIR=/t/out\0CARGO_MANIFEST_DIR=/src/foo\0CARGO_CRATE_NAME=build_script_build\0";
    let argv: &[u8] = b"/t/build-script-build\0--flag\0";
    let rec = ExecRecord {
        header: header(kind::EXEC, 0),
        old_tid: 101,
        flags: flag::RESOLVED_IS_TARGET,
        filename_len: 21,
        resolved_len: 0,
        cwd_len: 8,
        argv_len: argv.len() as u32,
        env_len: env.len() as u32,
        fs_magic: 0,
    };
    let bytes = with_tail(
        rec.as_bytes(),
        &[b"/t/build-script-build", b"/src/foo", argv, env],
    );
    let EventKind::Exec(exec) = decoder().decode(&bytes).expect("decode").kind else {
        panic!()
    };
    assert_eq!(exec.path, "/t/build-script-build");
    assert_eq!(exec.exe, None);
    assert_eq!(exec.argv, ["/t/build-script-build", "--flag"]);
    assert_eq!(exec.cwd.as_deref(), Some("/src/foo"));
    assert_eq!(exec.var("CARGO_PKG_NAME"), Some("foo"));
    assert_eq!(exec.var("CARGO_PKG_VERSION"), Some("1.2.3"));
    assert_eq!(exec.var("OUT_DIR"), Some("/t/out"));
    assert_eq!(exec.var("CARGO_MANIFEST_DIR"), Some("/src/foo"));
    assert_eq!(exec.var("CARGO_CRATE_NAME"), Some("build_script_build"));
    assert_eq!(exec.var("HOME"), Some("/root"));
    assert_eq!(exec.env.len(), 6, "only kept variables: {:?}", exec.env);
    assert!(!format!("{exec:?}").contains("hunter2"));
}

#[test]
fn exec_truncated_record_is_an_error() {
    let rec = ExecRecord {
        header: header(kind::EXEC, 0),
        filename_len: 50,
        ..Default::default()
    };
    let bytes = with_tail(rec.as_bytes(), &[b"short"]);
    assert!(matches!(
        decoder().decode(&bytes),
        Err(DecodeError::Truncated { .. })
    ));
}

fn open(raw: &str, resolved: &str, flags: u32, result: i64, open_flags: u32) -> Open {
    let rec = OpenRecord {
        header: header(kind::OPEN, 0),
        syscall: syscall::OPENAT,
        dfd: -100,
        open_flags,
        mode: 0,
        result,
        flags,
        path_len: raw.len() as u32,
        resolved_len: resolved.len() as u32,
        fs_magic: 0,
        callers: 0,
        protected: 0,
    };
    let bytes = with_tail(rec.as_bytes(), &[raw.as_bytes(), resolved.as_bytes()]);
    let EventKind::Open(open) = decoder().decode(&bytes).expect("decode").kind else {
        panic!()
    };
    open
}

#[test]
fn open_paths() {
    // Success: the kernel's resolution wins; the argument is kept when it differs.
    let o = open(
        "x/../secret",
        "/home/u/secret",
        flag::RESOLVED_IS_TARGET,
        3,
        0,
    );
    assert_eq!(o.path, "/home/u/secret");
    assert_eq!(o.requested.as_deref(), Some("x/../secret"));
    assert_eq!(
        (o.access, o.create, o.error.as_deref()),
        (Access::Read, false, None)
    );
    // Failure, relative: joined to the base directory.
    let o = open(
        "../.ssh/id_rsa",
        "/home/u/proj",
        flag::RESOLVED_IS_BASE,
        -2,
        0,
    );
    assert_eq!(o.path, "/home/u/.ssh/id_rsa");
    assert_eq!(o.error.as_deref(), Some("ENOENT"));
    // Failure, absolute.
    let o = open("/etc/./shadow", "", 0, -13, 0);
    assert_eq!(o.path, "/etc/shadow");
    assert_eq!(o.error.as_deref(), Some("EACCES"));
    // Write with O_CREAT|O_TRUNC.
    let o = open("/tmp/x", "/tmp/x", flag::RESOLVED_IS_TARGET, 4, 0o1101);
    assert_eq!(
        (o.access, o.create, o.requested.clone()),
        (Access::Write, true, None)
    );
    assert!(o.writes());
}

#[test]
fn pipes_are_named_by_kind() {
    let rec = OpenRecord {
        header: header(kind::OPEN, 0),
        syscall: syscall::OPENAT,
        dfd: -100,
        open_flags: 1,
        mode: 0,
        result: 4,
        flags: flag::RESOLVED_IS_TARGET,
        path_len: 9,
        resolved_len: 1,
        fs_magic: PIPEFS_MAGIC,
        callers: 0,
        protected: 0,
    };
    let bytes = with_tail(rec.as_bytes(), &[b"/dev/fd/7", b"/"]);
    let EventKind::Open(o) = decoder().decode(&bytes).expect("decode").kind else {
        panic!()
    };
    assert_eq!(o.path, "pipe:/dev/fd/7");
}

#[test]
fn connect_families() {
    let mut rec = ConnectRecord {
        header: header(kind::CONNECT, size_of::<ConnectRecord>()),
        syscall: syscall::CONNECT,
        fd: 3,
        result: 0,
        family: libc::AF_INET as u16,
        port: 4444,
        addrlen: 16,
        addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        flags: 0,
        unix_path_len: 0,
        unix_path: [0; UNIX_PATH_MAX],
        callers: 0,
    };
    let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decode").kind else {
        panic!()
    };
    assert_eq!(c.endpoint(), "127.0.0.1:4444");
    rec.family = libc::AF_INET6 as u16;
    rec.addr = std::net::Ipv6Addr::LOCALHOST.octets();
    rec.result = -111;
    let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decode").kind else {
        panic!()
    };
    assert_eq!(
        (c.endpoint(), c.error.as_deref()),
        ("[::1]:4444".to_owned(), Some("ECONNREFUSED"))
    );
    rec.family = libc::AF_UNIX as u16;
    rec.unix_path[..12].copy_from_slice(b"\0agent.sock\0");
    rec.unix_path_len = 11;
    let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decode").kind else {
        panic!()
    };
    assert_eq!(
        (c.family, c.addr.as_str()),
        (SocketFamily::Unix, "@agent.sock")
    );
}

#[test]
fn namespace_flags_are_named() {
    assert_eq!(namespace_flags(0x1002_0000), "CLONE_NEWUSER|CLONE_NEWNS");
    assert_eq!(namespace_flags(0x4000_0000 | 0x11), "CLONE_NEWNET");
    assert_eq!(namespace_flags(0), "0");
}

#[test]
fn own_proc_paths_say_self() {
    assert_eq!(
        own_proc_as_self("/proc/42/maps".into(), 42),
        "/proc/self/maps"
    );
    assert_eq!(own_proc_as_self("/proc/42".into(), 42), "/proc/self");
    assert_eq!(
        own_proc_as_self("/proc/421/environ".into(), 42),
        "/proc/421/environ"
    );
    assert_eq!(
        own_proc_as_self("/proc/43/environ".into(), 42),
        "/proc/43/environ"
    );
}

#[test]
fn unknown_kind() {
    assert_eq!(
        decoder().decode(header(99, 40).as_bytes()),
        Err(DecodeError::UnknownKind(99))
    );
}

fn tamper(syscall: u32, request: u32, target: u32) -> Tamper {
    let rec = TamperRecord {
        header: header(kind::TAMPER, size_of::<TamperRecord>()),
        syscall,
        request,
        target,
        callers: 0,
    };
    let EventKind::Tamper(t) = decoder().decode(rec.as_bytes()).expect("decode").kind else {
        panic!("not a tamper event");
    };
    t
}

#[test]
fn monitor_calls_and_privileged_execs_are_named() {
    let t = tamper(syscall::BPF, 34, 0);
    assert_eq!(t.syscall, TamperSyscall::Monitor(MonitorCall::Bpf));
    assert_eq!(t.request.as_deref(), Some("BPF_LINK_DETACH"));
    let t = tamper(syscall::PERF_EVENT_OPEN, 2, 0);
    assert_eq!(t.request.as_deref(), Some("PERF_TYPE_TRACEPOINT"));
    let t = tamper(syscall::KILL_MONITOR, 9, 4242);
    assert_eq!(
        (t.syscall, t.request.as_deref(), t.target),
        (
            TamperSyscall::Monitor(MonitorCall::Kill),
            Some("SIGKILL"),
            4242
        )
    );
    let bits = monitor_common::privilege::SETUID
        | monitor_common::privilege::ROOT
        | monitor_common::privilege::KILLED;
    let t = tamper(syscall::PRIVILEGED_EXEC, bits, 0);
    assert_eq!(t.syscall, TamperSyscall::Privilege(PrivilegeCall::Exec));
    assert_eq!(t.request.as_deref(), Some("setuid,root,killed"));
    let nr = libc::SYS_setresuid as u32;
    let bits = monitor_common::privilege::ROOT
        | monitor_common::privilege::CAPS
        | (nr << monitor_common::privilege::NR_SHIFT);
    let t = tamper(syscall::PRIVILEGED_CREDS, bits, 0);
    assert_eq!(t.syscall, TamperSyscall::Privilege(PrivilegeCall::Creds));
    assert_eq!(t.request.as_deref(), Some("root,caps,syscall=setresuid"));
}

#[test]
fn protected_files_are_named_from_the_table() {
    let table: Arc<[ProtectedFile]> = Arc::from(vec![
        ProtectedFile {
            path: "/home/u/.aws/credentials".into(),
            category: "cloud-credentials".into(),
        },
        ProtectedFile {
            path: "/home/u/.ssh/id_rsa".into(),
            category: "ssh-key".into(),
        },
    ]);
    let decode = |protected: u32| {
        let rec = OpenRecord {
            header: header(kind::OPEN, 0),
            syscall: syscall::OPENAT,
            dfd: -100,
            open_flags: 0,
            mode: 0,
            result: 3,
            flags: flag::RESOLVED_IS_TARGET,
            path_len: 6,
            resolved_len: 11,
            fs_magic: 0,
            callers: 0,
            protected,
        };
        let bytes = with_tail(rec.as_bytes(), &[b"/x/key", b"/tmp/ns/key"]);
        let decoder = decoder().with_protected(table.clone());
        let EventKind::Open(o) = decoder.decode(&bytes).expect("decode").kind else {
            panic!("not an open")
        };
        o.protected
    };
    assert_eq!(decode(0), None);
    assert_eq!(
        decode(2).map(|p| p.path),
        Some("/home/u/.ssh/id_rsa".into())
    );
    // A number the table does not have (a stale kernel entry) names nothing.
    assert_eq!(decode(3), None);
}

#[test]
fn raw_sockets_are_named_and_their_refusal_or_kill_kept() {
    use monitor_common::{SocketRecord, records::raw_socket};
    let mut rec = SocketRecord {
        header: header(kind::SOCKET, size_of::<SocketRecord>()),
        syscall: syscall::SOCKET,
        family: 2,
        sock_type: 3,
        protocol: 255,
        result: 3,
        flags: 0,
        _pad: 0,
    };
    let EventKind::Socket(s) = decoder().decode(rec.as_bytes()).expect("decodes").kind else {
        panic!("not a socket event");
    };
    assert_eq!(s.subject(), "socket inet SOCK_RAW 255");
    assert_eq!((s.result, s.refused, s.killed), (3, false, false));
    rec.flags = flag::REFUSED;
    rec.result = 0;
    let EventKind::Socket(s) = decoder().decode(rec.as_bytes()).expect("decodes").kind else {
        panic!("not a socket event");
    };
    assert_eq!(
        (s.result, s.error.as_deref(), s.refused),
        (-1, Some("EPERM"), true)
    );
    rec.family = 17;
    rec.protocol = 0x0300;
    rec.flags = raw_socket::KILLED;
    let EventKind::Socket(s) = decoder().decode(rec.as_bytes()).expect("decodes").kind else {
        panic!("not a socket event");
    };
    assert_eq!((s.family.as_str(), s.killed), ("packet", true));
}

#[test]
fn a_raw_packet_goes_where_its_headers_say() {
    use monitor_common::{PACKET_HEAD, PacketRecord};
    // IPv4 + UDP to 127.0.0.2:5353, sent with a sockaddr saying 127.0.0.1:9.
    let mut data = [0u8; PACKET_HEAD];
    let head = [
        0x45, 0, 0, 35, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2, 0x9c, 0x40, 0x14,
        0xe9, 0, 15, 0, 0,
    ];
    data[..head.len()].copy_from_slice(&head);
    let mut to_addr = [0u8; 16];
    to_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
    let mut rec = PacketRecord {
        header: header(kind::PACKET, size_of::<PacketRecord>()),
        syscall: syscall::RAW_SENDMMSG,
        fd: 3,
        result: 35,
        sock_family: 2,
        sock_type: 3,
        protocol: 255,
        to_family: 2,
        to_port: 9,
        _pad: 0,
        len: head.len() as u32,
        to_addr,
        callers: 0,
        flags: 0,
        data,
    };
    let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decodes").kind else {
        panic!("not a connect event");
    };
    assert_eq!(c.syscall, ConnectSyscall::RawSendmmsg);
    assert_eq!(c.endpoint(), "127.0.0.2:5353");
    assert_eq!(c.passed.as_deref(), Some("127.0.0.1:9"));
    assert!(c.is_raw());
    // write(2) on a connected raw socket: no address passed, the headers only.
    rec.syscall = syscall::RAW_WRITE;
    rec.to_family = 0;
    let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decodes").kind else {
        panic!("not a connect event");
    };
    assert_eq!(
        (c.syscall, c.endpoint(), c.passed),
        (ConnectSyscall::RawWrite, "127.0.0.2:5353".to_owned(), None)
    );
    // Unreadable bytes: the address passed is all there is.
    rec.len = 0;
    rec.to_family = 2;
    let EventKind::Connect(c) = decoder().decode(rec.as_bytes()).expect("decodes").kind else {
        panic!("not a connect event");
    };
    assert_eq!(c.endpoint(), "127.0.0.1:9");
}

#[test]
fn kills_name_their_class_call_and_object() {
    let secrets: Arc<[ProtectedFile]> = Arc::from(vec![ProtectedFile {
        path: "/home/u/.ssh/id_rsa".into(),
        category: "ssh-key".into(),
    }]);
    let persist: Arc<[ProtectedFile]> = Arc::from(vec![ProtectedFile {
        path: "/home/u/.bashrc".into(),
        category: "shell-startup".into(),
    }]);
    let decode = |class: u32, syscall: u32, object: u32, target: u32| {
        let rec = KillRecord {
            header: header(kind::KILL, size_of::<KillRecord>()),
            class,
            syscall,
            object,
            target,
            callers: 0b10,
            group: 2,
        };
        let decoder = decoder()
            .with_protected(secrets.clone())
            .with_persist(persist.clone());
        let event = decoder.decode(rec.as_bytes()).expect("decode");
        assert_eq!(event.callers, vec![1]);
        let EventKind::Killed(k) = event.kind else {
            panic!("not a kill")
        };
        k
    };
    use monitor_common::kill_class as c;
    let k = decode(c::SECRET, syscall::OPENAT, 1, 0);
    assert_eq!(k.class, crate::model::KillClass::Secret);
    assert_eq!(
        k.describe(),
        "killed by --enforce in openat: secret /home/u/.ssh/id_rsa (ssh-key)"
    );
    let k = decode(c::PERSISTENCE, syscall::OPEN, 1, 0);
    assert_eq!(k.object.as_deref(), Some("/home/u/.bashrc (shell-startup)"));
    // An index the table does not have names nothing (a mismatch, not a panic).
    assert_eq!(decode(c::PERSISTENCE, syscall::OPEN, 9, 0).object, None);
    let k = decode(c::TAMPER, syscall::PTRACE, 16, 77);
    assert_eq!(
        k.describe(),
        "killed by --enforce in ptrace: tamper PTRACE_ATTACH (process 77)"
    );
    let k = decode(c::FILELESS_EXEC, 0, 0, 0);
    assert_eq!(k.describe(), "killed by --enforce at exec: fileless-exec");
    assert_eq!(
        decode(c::COMPAT, 0, 5, 0).syscall.as_deref(),
        Some("int 0x80 open")
    );
    assert_eq!(decode(999, 0, 0, 0).class, crate::model::KillClass::Unknown);
}

/// A result is an errno only in -4095..=-1 (the kernel's MAX_ERRNO); anything more negative is
/// shown as a number, never negated (i64::MIN overflows) nor truncated into a real errno's name.
#[test]
fn errno_names_come_only_from_errno_values() {
    assert_eq!(errno_name(0), None);
    assert_eq!(errno_name(3), None);
    assert_eq!(errno_name(-2).as_deref(), Some("ENOENT"));
    assert_eq!(errno_name(-4095).as_deref(), Some("E4095"));
    assert_eq!(errno_name(-4096).as_deref(), Some("result -4096"));
    // -(2^32 + 2) truncated to 32 bits would be 2, ENOENT.
    let wide = -(1i64 << 32) - 2;
    assert_eq!(errno_name(wide), Some(format!("result {wide}")));
    assert_eq!(errno_name(i64::MIN), Some(format!("result {}", i64::MIN)));
}
