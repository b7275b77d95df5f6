#[test]
fn another_process_s_mem_file_is_tampering_one_s_own_is_not() {
    use super::other_process_memory;
    assert_eq!(other_process_memory("/proc/42/mem", 7), Some(42));
    assert_eq!(other_process_memory("/proc/42/task/43/mem", 7), Some(42));
    assert_eq!(other_process_memory("/proc/7/mem", 7), None);
    assert_eq!(other_process_memory("/proc/7/task/8/mem", 7), None);
    assert_eq!(other_process_memory("/proc/42/maps", 7), None);
    assert_eq!(other_process_memory("/proc/self/mem", 7), None);
    assert_eq!(other_process_memory("/proc/42/x/mem", 7), None);
    assert_eq!(other_process_memory("/tmp/proc/42/mem", 7), None);
}

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
