//! Learning on hand-built events: what becomes a rule, what is left for review, and where it is
//! written.
use super::{Accept, Learner};
use crate::{
    attribution::{Actor, Attributor, CrateRef, Role},
    model::{Access, Event, EventKind, Exec, Open, OpenSyscall},
    profile::{self, RuleList},
};

fn event(krate: &str, kind: EventKind) -> Event {
    Event {
        time_ns: 1,
        pid: 10,
        tid: 10,
        ppid: 1,
        comm: "build-script-bu".into(),
        actor: Some(Actor::for_crate(
            Role::BuildScript,
            &CrateRef::new(krate, Some("1.0.0")),
        )),
        callers: Vec::new(),
        kind,
    }
}

fn open(path: &str, access: Access) -> EventKind {
    EventKind::Open(Open {
        syscall: OpenSyscall::Openat,
        path: path.into(),
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
}

fn exec(path: &str) -> EventKind {
    EventKind::Exec(Exec {
        path: path.into(),
        argv: vec![path.into()],
        ..Exec::default()
    })
}

fn entries(p: &profile::Profile, list: RuleList) -> Vec<String> {
    p.rules(Role::BuildScript)
        .map(|r| {
            r.entries(list)
                .into_iter()
                .map(|(t, _)| t.to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A hand-written `foo_bar.toml` holds the profile of `foo-bar`: learning extends that file
/// rather than writing a `foo-bar.toml` beside it (which the next run refuses as a duplicate).
#[test]
fn learning_extends_the_file_the_loader_matched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("foo_bar.toml"),
        "schema = 1\ncrate = \"foo_bar\"\n[build-script]\nexec = [\"git\"]\n",
    )
    .expect("write");
    let mut l = Learner::new();
    let a = Attributor::default();
    l.observe(&event("foo-bar", exec("/usr/bin/curl")), &a);
    let written = l
        .write(dir.path(), Accept::default(), &[])
        .expect("learn writes");
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].path, dir.path().join("foo_bar.toml"));
    assert!(!written[0].created);
    let loaded = profile::load_dir(dir.path()).expect("one profile per crate");
    assert_eq!(loaded.len(), 1);
    assert_eq!(entries(&loaded[0], RuleList::Exec), ["curl", "git"]);
}

/// Learning writes only rules the policy would use: another process's memory and a program
/// that exists only in memory are left for review, however they were reached.
#[test]
fn learning_never_writes_rules_the_policy_ignores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Learner::new();
    let a = Attributor::default();
    l.observe(&event("x", open("/proc/42/mem", Access::Read)), &a);
    l.observe(&event("x", open("/proc/42/mem", Access::Write)), &a);
    l.observe(&event("x", exec("/memfd:payload (deleted)")), &a);
    l.observe(&event("x", open("/etc/hostname", Access::Read)), &a);
    let accept_all = Accept {
        sensitive_read: true,
        network: true,
        persistence_write: true,
    };
    let written = l.write(dir.path(), accept_all, &[]).expect("learn writes");
    let loaded = profile::load_dir(dir.path()).expect("profiles");
    assert_eq!(entries(&loaded[0], RuleList::Read), ["/etc/hostname"]);
    for list in [RuleList::Exec, RuleList::Write, RuleList::SensitiveRead] {
        assert!(entries(&loaded[0], list).is_empty(), "{list}");
    }
    assert_eq!(
        written[0].review, 2,
        "the memory (once) and the memfd for review"
    );
    let text = std::fs::read_to_string(&written[0].path).expect("read");
    assert!(text.contains("process-tamper"), "{text}");
    assert!(text.contains("fileless-exec"), "{text}");
}
