mod net {
    use crate::{
        attribution::{Actor, Attributor, CrateRef, Role},
        model::{
            event::{Connect, Event, EventKind},
            vocab::{ConnectSyscall, SocketFamily},
        },
        policy::{Code, Policy, PolicyConfig},
        profile::ProfileSet,
    };

    fn profile(name: &str, network: &str) -> crate::profile::Profile {
        let text =
            format!("schema = 1\ncrate = \"{name}\"\n\n[proc-macro]\nnetwork = [{network}]\n");
        crate::profile::parse(&text, std::path::Path::new(&format!("{name}.toml")))
            .expect("profile")
    }

    fn connect(actor: Actor, family: &str, addr: &str, port: u16, refused: bool) -> Event {
        Event {
            time_ns: 1,
            pid: 10,
            tid: 10,
            ppid: 1,
            comm: "rustc".into(),
            actor: Some(actor),
            callers: Vec::new(),
            kind: EventKind::Connect(Connect {
                syscall: ConnectSyscall::Connect,
                family: match family {
                    "unix" => SocketFamily::Unix,
                    _ => SocketFamily::Inet,
                },
                addr: addr.into(),
                port,
                result: if refused { -1 } else { 0 },
                error: refused.then(|| "EPERM".to_owned()),
                refused,
                passed: None,
            }),
        }
    }

    fn policy(profiles: Vec<crate::profile::Profile>) -> Policy {
        Policy::new(
            &ProfileSet::new(profiles, Vec::new()),
            PolicyConfig::default(),
        )
    }

    fn inexact(candidates: &[&str]) -> Actor {
        let crates: Vec<CrateRef> = candidates
            .iter()
            .map(|n| CrateRef::new(*n, Some("0.1.0")))
            .collect();
        let mut a = Actor::for_crate(Role::ProcMacro, &crates[0]);
        a.exact = false;
        a.candidates = crates;
        a
    }

    #[test]
    fn candidates_get_the_strictest_profile_and_the_finding_is_not_exact() {
        // The likeliest candidate may connect there, the other may not: a finding, on the other,
        // naming both.
        let mut p = policy(vec![
            profile("generous", "\"127.0.0.1:9\""),
            profile("strict", ""),
        ]);
        let a = Attributor::default();
        p.check(
            &connect(
                inexact(&["generous", "strict"]),
                "inet",
                "127.0.0.1",
                9,
                false,
            ),
            &a,
        );
        let f = p.findings();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].code, Code::UnexpectedNetwork);
        assert_eq!(f[0].krate.as_ref().map(|k| k.name.as_str()), Some("strict"));
        assert!(!f[0].exact());
        assert_eq!(f[0].candidates.len(), 2);
        assert!(f[0].headline().contains("not exact"), "{}", f[0].headline());
        // Both allow it: nothing.
        let mut p = policy(vec![
            profile("generous", "\"127.0.0.1:9\""),
            profile("strict", "\"127.0.0.1:9\""),
        ]);
        p.check(
            &connect(
                inexact(&["generous", "strict"]),
                "inet",
                "127.0.0.1",
                9,
                false,
            ),
            &a,
        );
        assert!(p.findings().is_empty());
    }

    #[test]
    fn a_refusal_is_a_finding_whatever_the_actor() {
        let a = Attributor::default();
        let rustc = Actor::for_crate(Role::Rustc, &CrateRef::new("app", Some("0.1.0")));
        let mut p = policy(Vec::new());
        p.check(&connect(rustc.clone(), "inet", "127.0.0.1", 9, true), &a);
        let f = p.findings();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].code, Code::UnexpectedNetwork);
        assert_eq!(f[0].role, Some(Role::Rustc));
        assert!(
            f[0].detail.contains("refused by --enforce"),
            "{}",
            f[0].detail
        );
        // Not refused: rustc never connects, a finding too; libc's name service cache is fine.
        let mut p = policy(Vec::new());
        p.check(&connect(rustc.clone(), "inet", "127.0.0.1", 9, false), &a);
        assert_eq!(p.findings().len(), 1);
        let mut p = policy(Vec::new());
        p.check(
            &connect(rustc, "unix", "/var/run/nscd/socket", 0, false),
            &a,
        );
        assert!(p.findings().is_empty());
        // Refused although the profile allows it (the kernel knew the crate too late): still one.
        let mut p = policy(vec![profile("generous", "\"127.0.0.1:9\"")]);
        let pm = Actor::for_crate(Role::ProcMacro, &CrateRef::new("generous", Some("0.1.0")));
        p.check(&connect(pm, "inet", "127.0.0.1", 9, true), &a);
        assert_eq!(p.findings().len(), 1);
    }

    #[test]
    fn agent_sockets_fail_ci_by_default() {
        let a = Attributor::default();
        let bs = Actor::for_crate(Role::BuildScript, &CrateRef::new("x", Some("0.1.0")));
        let mut p = policy(vec![profile("x", "")]);
        p.check(
            &connect(bs.clone(), "unix", "/var/run/docker.sock", 0, false),
            &a,
        );
        p.check(&connect(bs, "unix", "/var/run/nscd/socket", 0, false), &a);
        let f = p.findings();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].code, Code::AgentSocket);
        assert_eq!(f[0].severity, crate::policy::Severity::Error);
        assert!(f[0].detail.contains("docker"), "{}", f[0].detail);
    }
}

mod defects {
    use crate::{
        attribution::{Actor, Attributor, CrateRef, Role},
        model::{Access, Event, EventKind, Exec, Lost, LostReason, Open, OpenSyscall},
        policy::{Code, Policy, PolicyConfig},
        profile::ProfileSet,
    };

    fn event(actor: Option<Actor>, kind: EventKind) -> Event {
        Event {
            time_ns: 1,
            pid: 10,
            tid: 10,
            ppid: 1,
            comm: "build-script-bu".into(),
            actor,
            callers: Vec::new(),
            kind,
        }
    }

    /// `exec = ["*"]` allows every program on disk, not a program that exists only in memory,
    /// nor opening another process's memory (which once went through the exec list).
    #[test]
    fn an_exec_star_profile_does_not_allow_fileless_exec_or_memory_tampering() {
        let text = "schema = 1\ncrate = \"x\"\n[build-script]\nexec = [\"*\"]\nread = [\"/**\"]\nwrite = [\"/**\"]\n";
        let profile = crate::profile::parse(text, std::path::Path::new("x.toml")).expect("profile");
        let mut p = Policy::new(
            &ProfileSet::new(vec![profile], Vec::new()),
            PolicyConfig::default(),
        );
        let a = Attributor::default();
        let bs = || {
            Some(Actor::for_crate(
                Role::BuildScript,
                &CrateRef::new("x", Some("0.1.0")),
            ))
        };
        let exec = |path: &str, deleted: bool| {
            EventKind::Exec(Exec {
                path: path.into(),
                argv: vec![path.into()],
                deleted,
                ..Exec::default()
            })
        };
        let open = |access| {
            EventKind::Open(Open {
                syscall: OpenSyscall::Openat,
                path: "/proc/42/mem".into(),
                requested: None,
                flags: 0,
                access,
                create: false,
                result: 3,
                error: None,
                truncated: false,
                compat: false,
                protected: None,
            })
        };
        // What the profile does allow stays allowed.
        p.check(&event(bs(), exec("/usr/bin/curl", false)), &a);
        assert!(p.findings().is_empty(), "{:#?}", p.findings());
        p.check(&event(bs(), exec("/memfd:x (deleted)", false)), &a);
        p.check(&event(bs(), exec("/tmp/dropped", true)), &a);
        p.check(&event(bs(), open(Access::Read)), &a);
        p.check(&event(bs(), open(Access::Write)), &a);
        let codes: Vec<(Code, Option<String>)> = p
            .findings()
            .iter()
            .map(|f| (f.code, f.list.clone()))
            .collect();
        assert_eq!(
            codes,
            [
                (Code::FilelessExec, None),
                (Code::FilelessExec, None),
                (Code::ProcessTamper, None),
            ],
            "{:#?}",
            p.findings()
        );
    }

    /// The events-lost finding says how many were lost in all, by reason, not what the first
    /// loss said.
    #[test]
    fn events_lost_totals_every_loss_by_reason() {
        let mut p = Policy::new(&ProfileSet::default(), PolicyConfig::default());
        let a = Attributor::default();
        let lost = |count, reason| event(None, EventKind::Lost(Lost { count, reason }));
        p.check(&lost(3, LostReason::RingBufferFull), &a);
        let f = p.findings();
        assert_eq!(f[0].detail, "3 events lost (ring-buffer-full)");
        assert_eq!(f[0].count, 3);
        for _ in 0..5 {
            p.check(&lost(1000, LostReason::PendingFull), &a);
        }
        let f = p.findings();
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].detail,
            "5003 events lost (ring-buffer-full: 3, pending-full: 5000)"
        );
        assert_eq!(f[0].count, 5003);
    }

    /// A crate without a profile is checked against the baseline like any other: each thing it
    /// does beyond it is its own finding, saying that no profile applied; nothing is folded into
    /// a catch-all.
    #[test]
    fn without_a_profile_each_finding_says_so() {
        let mut p = Policy::new(&ProfileSet::default(), PolicyConfig::default());
        let a = Attributor::default();
        let bs = Some(Actor::for_crate(
            Role::BuildScript,
            &CrateRef::new("y", Some("0.1.0")),
        ));
        p.check(
            &event(
                bs.clone(),
                EventKind::IoUring(crate::model::IoUring {
                    op: crate::model::IoUringOp::Setup,
                }),
            ),
            &a,
        );
        p.check(
            &event(
                bs,
                EventKind::Open(Open {
                    syscall: OpenSyscall::Openat,
                    path: "/etc/hostname".into(),
                    requested: None,
                    flags: 0,
                    access: Access::Read,
                    create: false,
                    result: 3,
                    error: None,
                    truncated: false,
                    compat: false,
                    protected: None,
                }),
            ),
            &a,
        );
        let all = p.finish();
        let mut codes: Vec<Code> = all.iter().map(|f| f.code).collect();
        codes.sort();
        let mut expected = vec![Code::IoUringUse, Code::UnexpectedRead];
        expected.sort();
        assert_eq!(codes, expected);
        for f in &all {
            assert!(f.detail.ends_with(" (no profile)"), "{}", f.detail);
        }
        assert!(all.iter().any(|f| f.detail.contains("/etc/hostname")));
    }
}

mod kill {
    use crate::{
        attribution::{Actor, Attributor, CrateRef, Role},
        model::{
            KillClass, Killed,
            event::{Access, Event, EventKind, Open},
            vocab::OpenSyscall,
        },
        policy::{Code, Policy, PolicyConfig},
        profile::ProfileSet,
    };

    fn event(time_ns: u64, tid: u32, kind: EventKind) -> Event {
        let krate = CrateRef::new("keyscan", Some("0.1.0"));
        Event {
            time_ns,
            pid: 10,
            tid,
            ppid: 1,
            comm: "build-script-bu".into(),
            actor: Some(Actor::for_crate(Role::BuildScript, &krate)),
            callers: Vec::new(),
            kind,
        }
    }

    fn read(path: &str) -> EventKind {
        EventKind::Open(Open {
            syscall: OpenSyscall::Openat,
            path: path.into(),
            requested: None,
            flags: 0,
            access: Access::Read,
            create: false,
            result: 3,
            error: None,
            truncated: false,
            compat: false,
            protected: None,
        })
    }

    fn killed(class: KillClass, object: &str) -> EventKind {
        EventKind::Killed(Killed {
            class,
            syscall: Some("openat".into()),
            object: Some(object.into()),
            target: 0,
        })
    }

    fn policy() -> Policy {
        Policy::new(
            &ProfileSet::new(Vec::new(), Vec::new()),
            PolicyConfig::default(),
        )
    }

    #[test]
    fn a_kill_marks_the_finding_of_the_act_it_followed() {
        let mut p = policy();
        let a = Attributor::new();
        p.check(&event(1_000, 11, read("/home/u/.ssh/id_rsa")), &a);
        p.check(
            &event(
                2_000,
                11,
                killed(KillClass::Secret, "/home/u/.ssh/id_rsa (ssh-key)"),
            ),
            &a,
        );
        let f = p.findings();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].code, Code::SensitiveRead);
        assert!(f[0].killed);
        assert_eq!(f[0].count, 1);
        assert!(
            f[0].detail.contains("killed by --enforce"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn a_kill_with_no_act_of_its_thread_is_a_finding_of_its_own() {
        let mut p = policy();
        let a = Attributor::new();
        // Another thread's read, and one too long before: neither is what this kill was for.
        p.check(&event(1_000, 12, read("/home/u/.ssh/id_ecdsa")), &a);
        p.check(&event(1_000, 11, read("/home/u/.ssh/id_ed25519")), &a);
        p.check(
            &event(
                10_000_000_000,
                11,
                killed(KillClass::Secret, "/home/u/.ssh/id_rsa (ssh-key)"),
            ),
            &a,
        );
        let f = p.findings();
        let killed: Vec<_> = f.iter().filter(|f| f.killed).collect();
        assert_eq!(killed.len(), 1, "{f:#?}");
        assert_eq!(killed[0].code, Code::SensitiveRead);
        assert_eq!(killed[0].subject, "/home/u/.ssh/id_rsa");
        assert!(
            killed[0]
                .detail
                .starts_with("killed by --enforce in openat"),
            "{}",
            killed[0].detail
        );
        assert_eq!(f.iter().filter(|f| !f.killed).count(), 2);
    }

    /// A long build runs millions of threads, each of which may get a finding: what a kill
    /// may still follow is remembered, not every thread's act since the start.
    #[test]
    fn the_acts_remembered_for_kills_stay_bounded() {
        let mut p = policy();
        let a = Attributor::new();
        // 200,000 threads, one read each, 1 ms apart: 50 ms (the window) is 50 of them.
        for tid in 0..200_000u32 {
            let at = 1_000_000 * u64::from(tid);
            p.check(&event(at, 100 + tid, read("/home/u/.ssh/id_rsa")), &a);
            assert!(p.acts_remembered() <= 2 * 1024, "{}", p.acts_remembered());
        }
        // The latest act is still there for its kill.
        let last = 1_000_000 * 199_999 + 1_000;
        p.check(
            &event(
                last,
                100 + 199_999,
                killed(KillClass::Secret, "/home/u/.ssh/id_rsa (ssh-key)"),
            ),
            &a,
        );
        let f = p.findings();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].killed);
        assert_eq!(f[0].count, 200_000);
    }
}
