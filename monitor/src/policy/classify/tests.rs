//! One verdict per kind, on hand-built events.
use super::{Allow, Verdict, classify, open::other_process_memory};
use crate::{
    model::{
        Access, CompatSyscall, Connect, ConnectSyscall, Dns, Event, EventKind, Exec, IoUring,
        IoUringOp, NamespaceCall, Open, OpenSyscall, Places, ProcessCall, Role, Socket,
        SocketFamily, Tamper, TamperSyscall,
    },
    policy::{AgentEnv, Code},
    profile::RuleList,
};

fn places() -> Places {
    Places {
        manifest_dir: Some("/home/u/.cargo/registry/src/idx/foo-1.0.0".into()),
        out_dir: Some("/w/target/debug/build/foo-0123456789abcdef/out".into()),
        target_dir: Some("/w/target".into()),
        sysroot: Some("/home/u/.rustup/toolchains/stable".into()),
        cargo_home: Some("/home/u/.cargo".into()),
        home: Some("/home/u".into()),
        tmpdir: Some("/tmp".into()),
        workspace: Some("/w".into()),
        build_script: Some("/w/target/debug/build/foo-0123456789abcdef/build-script-build".into()),
    }
}

fn event(kind: EventKind) -> Event {
    Event {
        time_ns: 1,
        pid: 7,
        tid: 7,
        ppid: 1,
        comm: "build-script-bu".into(),
        actor: None,
        callers: Vec::new(),
        kind,
    }
}

fn verdict(kind: EventKind, role: Role) -> Option<Verdict> {
    let (agents, ci) = (AgentEnv::default(), crate::policy::CiChannels::default());
    let run = crate::policy::Run {
        agents: &agents,
        ci: &ci,
        attribution: None,
        monitor_pid: None,
    };
    classify(&event(kind), role, &places(), &run)
}

fn bs(kind: EventKind) -> Option<Verdict> {
    verdict(kind, Role::BuildScript)
}

fn exec(path: &str) -> EventKind {
    EventKind::Exec(Exec {
        path: path.into(),
        argv: vec![path.into(), "-c".into(), "x".into()],
        ..Exec::default()
    })
}

fn open(path: &str, access: Access, result: i64) -> EventKind {
    EventKind::Open(Open {
        syscall: OpenSyscall::Openat,
        path: path.into(),
        requested: None,
        flags: 0,
        access,
        create: false,
        result,
        error: (result < 0).then(|| "ENOENT".to_owned()),
        truncated: false,
        compat: false,
        protected: None,
    })
}

fn connect(family: SocketFamily, addr: &str, port: u16, refused: bool) -> EventKind {
    EventKind::Connect(Connect {
        syscall: ConnectSyscall::Connect,
        family,
        addr: addr.into(),
        port,
        result: if refused { -1 } else { 0 },
        error: refused.then(|| "EPERM".to_owned()),
        refused,
        passed: None,
    })
}

fn tamper(syscall: TamperSyscall, request: Option<&str>) -> EventKind {
    EventKind::Tamper(Tamper {
        syscall,
        request: request.map(str::to_owned),
        target: 42,
    })
}

fn code_and_list(v: Option<Verdict>) -> Option<(Code, Option<RuleList>)> {
    v.map(|v| (v.code, v.list()))
}

#[test]
fn exec_baseline_unexpected_and_fileless() {
    assert_eq!(bs(exec("/usr/bin/cc")), None);
    assert_eq!(
        bs(exec(
            "/w/target/debug/build/foo-0123456789abcdef/build-script-build"
        )),
        None
    );
    let v = bs(exec("/usr/bin/curl")).expect("curl");
    assert_eq!(
        (v.code, v.allow, v.subject.as_str()),
        (
            Code::UnexpectedExec,
            Allow::List(RuleList::Exec),
            "/usr/bin/curl"
        )
    );
    assert_eq!(v.detail, "ran /usr/bin/curl -c x");
    let v = bs(exec("/memfd:payload (deleted)")).expect("memfd");
    assert_eq!((v.code, v.allow), (Code::FilelessExec, Allow::Never));
    let EventKind::Exec(mut deleted) = exec("/tmp/x") else {
        unreachable!()
    };
    deleted.deleted = true;
    let v = bs(EventKind::Exec(deleted)).expect("deleted");
    assert_eq!((v.code, v.allow), (Code::FilelessExec, Allow::Never));
    assert!(v.detail.contains("had been deleted"), "{}", v.detail);
}

#[test]
fn open_reads_writes_secrets_persistence_and_memory() {
    assert_eq!(bs(open("/usr/include/stdio.h", Access::Read, 3)), None);
    assert_eq!(
        code_and_list(bs(open("/etc/hostname", Access::Read, 3))),
        Some((Code::UnexpectedRead, Some(RuleList::Read)))
    );
    // A failed ordinary read is nothing; a failed secret read is still a finding.
    assert_eq!(bs(open("/etc/hostname", Access::Read, -2)), None);
    let v = bs(open("/home/u/.ssh/id_rsa", Access::Read, -2)).expect("secret");
    assert_eq!(
        (v.code, v.allow),
        (Code::SensitiveRead, Allow::List(RuleList::SensitiveRead))
    );
    assert!(v.detail.contains("attempt failed: ENOENT"), "{}", v.detail);
    assert_eq!(
        bs(open(
            "/w/target/debug/build/foo-0123456789abcdef/out/a.rs",
            Access::Write,
            3
        )),
        None
    );
    assert_eq!(
        code_and_list(bs(open("/w/src/gen.rs", Access::Write, 3))),
        Some((Code::UnexpectedWrite, Some(RuleList::Write)))
    );
    assert_eq!(
        code_and_list(bs(open("/home/u/.bashrc", Access::ReadWrite, 3))),
        Some((Code::PersistenceWrite, Some(RuleList::Write)))
    );
    // Another process's memory, read or written: tampering, which no list allows.
    for access in [Access::Read, Access::Write] {
        let v = bs(open("/proc/42/mem", access, 3)).expect("mem");
        assert_eq!((v.code, v.allow), (Code::ProcessTamper, Allow::Never));
        assert_eq!(v.subject, "/proc/42/mem 42");
    }
    // Its own memory is not another process's.
    let own = bs(open("/proc/7/mem", Access::Read, 3)).map(|v| v.code);
    assert_ne!(own, Some(Code::ProcessTamper));
}

#[test]
fn another_process_s_mem_file_is_tampering_one_s_own_is_not() {
    assert_eq!(other_process_memory("/proc/42/mem", 7), Some(42));
    assert_eq!(other_process_memory("/proc/42/task/43/mem", 7), Some(42));
    assert_eq!(other_process_memory("/proc/7/mem", 7), None);
    assert_eq!(other_process_memory("/proc/7/task/8/mem", 7), None);
    assert_eq!(other_process_memory("/proc/42/maps", 7), None);
    assert_eq!(other_process_memory("/proc/self/mem", 7), None);
    assert_eq!(other_process_memory("/proc/42/x/mem", 7), None);
    assert_eq!(other_process_memory("/tmp/proc/42/mem", 7), None);
}

#[test]
fn network_connections_agents_and_the_name_service_cache() {
    let v = bs(connect(SocketFamily::Inet, "127.0.0.1", 9, false)).expect("inet");
    assert_eq!(
        (v.code, v.allow, v.subject.as_str()),
        (
            Code::UnexpectedNetwork,
            Allow::List(RuleList::Network),
            "127.0.0.1:9"
        )
    );
    assert_eq!(v.detail, "connected to 127.0.0.1:9");
    // Refused by --enforce: always reported, whatever the profile says.
    let v = bs(connect(SocketFamily::Inet, "127.0.0.1", 9, true)).expect("refused");
    assert_eq!((v.code, v.allow), (Code::UnexpectedNetwork, Allow::Never));
    assert!(v.detail.ends_with("(refused by --enforce)"), "{}", v.detail);
    let v = bs(connect(SocketFamily::Unix, "/run/docker.sock", 0, false)).expect("agent");
    assert_eq!(
        (v.code, v.allow),
        (Code::AgentSocket, Allow::List(RuleList::Network))
    );
    for nscd in crate::model::paths::NAME_SERVICE_SOCKETS {
        assert_eq!(bs(connect(SocketFamily::Unix, nscd, 0, false)), None);
    }
    let v = bs(EventKind::Dns(Dns {
        name: "example.com".into(),
        qtype: "A".into(),
        server: "127.0.0.53".into(),
        port: 53,
    }))
    .expect("dns");
    assert_eq!(
        (v.code, v.allow, v.subject.as_str()),
        (
            Code::UnexpectedNetwork,
            Allow::List(RuleList::Network),
            "dns:example.com"
        )
    );
}

#[test]
fn raw_sockets_and_packets_are_never_allowed() {
    let v = bs(EventKind::Socket(Socket {
        family: "inet".into(),
        sock_type: "SOCK_RAW".into(),
        protocol: 255,
        result: 3,
        error: None,
        refused: false,
        killed: false,
    }))
    .expect("socket");
    assert_eq!((v.code, v.allow), (Code::RawSocket, Allow::Never));
    assert_eq!(v.subject, "socket inet SOCK_RAW 255");
    let EventKind::Connect(mut packet) = connect(SocketFamily::Inet, "10.0.0.1", 0, false) else {
        unreachable!()
    };
    packet.syscall = ConnectSyscall::RawSendto;
    let v = bs(EventKind::Connect(packet)).expect("packet");
    assert_eq!((v.code, v.allow), (Code::RawSocket, Allow::Never));
    assert_eq!(v.subject, "packet to 10.0.0.1:0");
}

#[test]
fn tampering_namespaces_io_uring_and_compat_are_never_allowed() {
    let cases = [
        (
            tamper(
                TamperSyscall::Process(ProcessCall::Ptrace),
                Some("PTRACE_ATTACH"),
            ),
            Code::ProcessTamper,
            "ptrace 42",
        ),
        (
            tamper(
                TamperSyscall::Process(ProcessCall::PidfdGetfd),
                Some("fd 3"),
            ),
            Code::ProcessTamper,
            "pidfd_getfd fd 3",
        ),
        (
            tamper(
                TamperSyscall::Namespace(NamespaceCall::Unshare),
                Some("CLONE_NEWNS"),
            ),
            Code::NamespaceUse,
            "unshare CLONE_NEWNS",
        ),
        (
            EventKind::IoUring(IoUring {
                op: IoUringOp::Setup,
            }),
            Code::IoUringUse,
            "io_uring setup",
        ),
        (
            EventKind::CompatSyscall(CompatSyscall {
                syscall: "open".into(),
                nr: 5,
                result: 3,
                error: None,
            }),
            Code::CompatSyscall,
            "int 0x80 open",
        ),
    ];
    for (kind, code, subject) in cases {
        let v = bs(kind).expect("verdict");
        assert_eq!(
            (v.code, v.allow, v.subject.as_str()),
            (code, Allow::Never, subject)
        );
    }
}

#[test]
fn rustc_is_judged_only_on_what_it_never_does() {
    let rustc = |kind| verdict(kind, Role::Rustc);
    // rustc reads plenty outside a build script's baseline: not its findings; it runs the
    // toolchain (its linker, by real path).
    assert_eq!(rustc(open("/etc/hostname", Access::Read, 3)), None);
    assert_eq!(rustc(exec("/usr/bin/x86_64-linux-gnu-gcc-12")), None);
    // Anything else in its linker step is a program the link was steered to.
    let curl = rustc(exec("/usr/bin/curl")).expect("foreign link program");
    assert_eq!(
        (curl.code, curl.allow),
        (Code::UnexpectedExec, Allow::Never)
    );
    // Secrets, persistence and network are, and no profile allows them there.
    for kind in [
        open("/home/u/.ssh/id_rsa", Access::Read, 3),
        open("/home/u/.bashrc", Access::Write, 3),
        connect(SocketFamily::Inet, "127.0.0.1", 9, false),
    ] {
        let v = rustc(kind).expect("rustc verdict");
        assert_eq!(v.allow, Allow::Never, "{v:?}");
    }
    assert_eq!(
        rustc(connect(SocketFamily::Unix, "/run/nscd/socket", 0, false)),
        None
    );
}

#[test]
fn other_roles_only_get_refusals() {
    for role in [Role::Cargo, Role::Command, Role::Tool] {
        assert_eq!(
            verdict(connect(SocketFamily::Inet, "127.0.0.1", 9, false), role),
            None
        );
        assert_eq!(
            verdict(open("/home/u/.ssh/id_rsa", Access::Read, 3), role),
            None
        );
        let v = verdict(connect(SocketFamily::Inet, "127.0.0.1", 9, true), role).expect("refused");
        assert_eq!((v.code, v.allow), (Code::UnexpectedNetwork, Allow::Never));
    }
}

#[test]
fn a_protected_inode_is_a_secret_under_any_name() {
    let through = |path: &str, access: Access| {
        let EventKind::Open(mut o) = open(path, access, 3) else {
            unreachable!()
        };
        o.protected = Some(crate::model::ProtectedFile {
            path: "/home/u/.ssh/id_rsa".into(),
            category: "ssh-key".into(),
        });
        bs(EventKind::Open(o))
    };
    // A hard link in the build's own output directory, an ordinary read by path.
    let v = through(
        "/w/target/debug/build/foo-0123456789abcdef/out/k",
        Access::Read,
    )
    .expect("secret by inode");
    assert_eq!(
        (v.code, v.allow, v.subject.as_str()),
        (
            Code::SensitiveRead,
            Allow::List(RuleList::SensitiveRead),
            "/home/u/.ssh/id_rsa"
        )
    );
    assert!(
        v.detail.contains("which is /home/u/.ssh/id_rsa"),
        "{}",
        v.detail
    );
    assert!(v.detail.contains("ssh-key"), "{}", v.detail);
    // Read and write gives the contents too.
    let v = through("/tmp/x", Access::ReadWrite).expect("read-write");
    assert_eq!(v.code, Code::SensitiveRead);
    // Under its own name the detail says nothing of another name.
    let v = through("/home/u/.ssh/id_rsa", Access::Read).expect("own name");
    assert!(!v.detail.contains("which is"), "{}", v.detail);
    // A write-only open reads nothing: judged as a write, by path.
    let v = through("/tmp/x", Access::Write);
    assert_ne!(v.map(|v| v.code), Some(Code::SensitiveRead));
}
