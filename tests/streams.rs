//! Attribution, checking and learning on event streams the real sensor recorded
//! (`cargo xtask record`, tests/fixtures/streams): no privileges needed.
//!
//! - attribution-mixed: a build script running cc, a proc-macro reading a file, exec chains
//!   (`sh -c "exec cat"`, a pipeline), a daemonizing build script (setsid, re-parented
//!   grandchild), two versions of one crate;
//! - attribution-hostile: build scripts connecting out and reading an SSH key, proc-macros
//!   reading a secret and connecting out among benign proc-macros loaded by the same rustc, a
//!   double-forked grandchild connecting after its build script exited.
mod support;

use std::collections::BTreeSet;

use buildwatch::{
    attribution::{Actor, Role},
    learn::{Accept, Learner},
    model::{Event, EventKind},
    pipeline::{Pipeline, PipelineOptions},
    policy::Code,
    replay,
};
use support::repo;

/// Replays a recorded stream through the pipeline; returns the attributed events and the
/// pipeline (for findings).
fn replay_stream(name: &str) -> (Vec<Event>, Pipeline) {
    let path = repo()
        .join("tests/fixtures/streams")
        .join(format!("{name}.jsonl.gz"));
    let events = replay::read_events(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        events.iter().all(|e| e.actor.is_none()),
        "replay drops the recorded attribution"
    );
    let mut pipeline = Pipeline::new(PipelineOptions {
        learn: true,
        ..PipelineOptions::default()
    })
    .expect("pipeline");
    let attributed = events
        .into_iter()
        .map(|e| pipeline.process(e).expect("process"))
        .collect();
    (attributed, pipeline)
}

fn actor(e: &Event) -> &Actor {
    e.actor
        .as_ref()
        .unwrap_or_else(|| panic!("no actor: {e:?}"))
}

fn opens<'a>(events: &'a [Event], suffix: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
    events
        .iter()
        .filter(move |e| matches!(&e.kind, EventKind::Open(o) if o.path.ends_with(suffix)))
}

fn is(a: &Actor, role: Role, krate: &str, version: &str) -> bool {
    a.role == role && a.krate.as_deref() == Some(krate) && a.version.as_deref() == Some(version)
}

#[test]
fn every_actor_kind_appears() {
    let (events, _) = replay_stream("attribution-mixed");
    let roles: BTreeSet<Role> = events
        .iter()
        .filter_map(|e| e.actor.as_ref().map(|a| a.role))
        .collect();
    assert_eq!(
        roles,
        [
            Role::Cargo,
            Role::Rustc,
            Role::BuildScript,
            Role::ProcMacro,
            Role::Tool,
            Role::Command
        ]
        .into_iter()
        .collect()
    );
    // The first exec is the watched command itself.
    let first = events
        .iter()
        .find(|e| e.kind.name() == "exec")
        .expect("exec");
    assert_eq!(actor(first).role, Role::Command);
}

#[test]
fn a_build_script_running_cc_keeps_the_chain() {
    let (events, _) = replay_stream("attribution-mixed");
    // cc1 compiling triple.c, run by gcc, run by cc-build's build script.
    let cc1 = events
        .iter()
        .find(|e| {
            matches!(&e.kind, EventKind::Open(o) if o.path.ends_with("/cc-build/src/triple.c"))
                && e.comm == "cc1"
        })
        .expect("cc1 reading triple.c");
    let a = actor(cc1);
    assert!(is(a, Role::Tool, "cc-build", "0.3.0"), "{a:?}");
    assert_eq!(a.via, Some(Role::BuildScript));
    assert_eq!(
        a.chain.first().map(String::as_str),
        Some("build-script-build")
    );
    assert_eq!(a.chain.last().map(String::as_str), Some("cc1"));
    assert!(a.chain.iter().any(|c| c.contains("gcc")), "{:?}", a.chain);
    // The assembler too.
    let as_exec = events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Exec(x) if x.image().ends_with("-as") || x.image().ends_with("/as")))
        .expect("as");
    assert!(
        is(actor(as_exec), Role::Tool, "cc-build", "0.3.0"),
        "{:?}",
        actor(as_exec)
    );
}

#[test]
fn exec_chains_stay_with_their_build_script() {
    let (events, _) = replay_stream("attribution-mixed");
    // `sh -c "exec cat /etc/hostname"`: the same process is sh, then cat.
    let cat = opens(&events, "/etc/hostname")
        .find(|e| e.comm == "cat")
        .expect("cat reading /etc/hostname");
    let a = actor(cat);
    assert!(is(a, Role::Tool, "chain", "1.2.3"), "{a:?}");
    assert_eq!(a.chain, ["build-script-build", "dash", "cat"]);
    let sh_exec = events
        .iter()
        .find(|e| {
            e.pid == cat.pid
                && matches!(&e.kind, EventKind::Exec(x) if x.image().ends_with("/dash"))
        })
        .expect("the shell was the same process");
    assert!(sh_exec.time_ns < cat.time_ns);
    // `cat Cargo.toml | wc -l`: both sides of the pipeline.
    let wc = events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Exec(x) if x.image().ends_with("/wc")))
        .expect("wc");
    assert!(
        is(actor(wc), Role::BuildScript, "chain", "1.2.3")
            || is(actor(wc), Role::Tool, "chain", "1.2.3")
    );
}

#[test]
fn a_daemonized_grandchild_is_still_its_build_scripts() {
    let (events, _) = replay_stream("attribution-mixed");
    let late = opens(&events, "/os-release")
        .find(|e| e.comm == "cat")
        .expect("the daemon's late read");
    let a = actor(late);
    assert!(is(a, Role::Tool, "daemon", "0.9.0"), "{a:?}");
    // Its ancestry, recorded at fork: some process between it and the build script had exited
    // (so it had been re-parented) before it read anything.
    let parent_of: std::collections::HashMap<u32, u32> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Fork(f) => Some((f.child_pid, e.pid)),
            _ => None,
        })
        .collect();
    let exit_time = |pid: u32| {
        events
            .iter()
            .find(|e| e.pid == pid && e.kind.name() == "exit")
            .map(|e| e.time_ns)
    };
    let mut ancestor = late.pid;
    let mut orphaned = false;
    while let Some(&parent) = parent_of.get(&ancestor) {
        orphaned |= exit_time(parent).is_some_and(|t| t < late.time_ns);
        ancestor = parent;
    }
    assert!(orphaned, "an ancestor exited before the late read");
    assert_eq!(
        late.ppid, parent_of[&late.pid],
        "ppid is the parent recorded at fork"
    );
    let script = events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Exec(x) if x.image().contains("/build/daemon-")))
        .expect("daemon build script");
    let script_exit = events
        .iter()
        .find(|e| e.pid == script.pid && e.kind.name() == "exit")
        .expect("exit");
    assert!(
        script_exit.time_ns < late.time_ns,
        "the build script exited first"
    );
}

#[test]
fn two_versions_of_one_crate_are_told_apart() {
    let (events, _) = replay_stream("attribution-mixed");
    for (file, version) in [("data-v1.txt", "1.0.0"), ("data-v2.txt", "2.0.0")] {
        let read = opens(&events, file)
            .next()
            .unwrap_or_else(|| panic!("no read of {file}"));
        assert!(
            is(actor(read), Role::BuildScript, "twin", version),
            "{file}: {:?}",
            actor(read)
        );
    }
}

#[test]
fn a_proc_macro_reading_a_file_is_named() {
    let (events, _) = replay_stream("attribution-mixed");
    let read = opens(&events, "/etc/hostname")
        .find(|e| e.comm == "rustc")
        .expect("rustc reading /etc/hostname");
    let a = actor(read);
    assert!(is(a, Role::ProcMacro, "pm-reader", "0.5.2"), "{a:?}");
    assert!(a.exact);
    assert_eq!(
        a.compiling.as_ref().map(|c| c.name.as_str()),
        Some("mixed-app")
    );
}

#[test]
fn hostile_actions_land_on_the_right_crates_and_never_on_benign_ones() {
    let (events, _) = replay_stream("attribution-hostile");
    let connects: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Connect(c) if c.port == 9))
        .collect();
    let mut who: Vec<(String, Role)> = connects
        .iter()
        .map(|e| {
            (
                actor(e).krate.clone().unwrap_or_default(),
                actor(e).policy_role(),
            )
        })
        .collect();
    who.sort();
    who.dedup();
    assert_eq!(
        who,
        [
            ("lingerer".to_owned(), Role::BuildScript),
            ("netprobe".to_owned(), Role::BuildScript),
            ("phone-home".to_owned(), Role::ProcMacro)
        ]
    );
    for e in &connects {
        assert!(actor(e).exact, "{:?}", actor(e));
    }
    let key = opens(&events, "/.ssh/id_rsa").next().expect("ssh key read");
    assert!(
        is(actor(key), Role::BuildScript, "keyscan", "0.1.4"),
        "{:?}",
        actor(key)
    );
    let secret = opens(&events, "/etc/hostname")
        .find(|e| e.comm == "rustc")
        .expect("the secret read");
    assert!(
        is(actor(secret), Role::ProcMacro, "peek-macro", "0.2.0"),
        "{:?}",
        actor(secret)
    );
    assert!(
        actor(secret).exact,
        "exact although benign-derive is loaded by the same rustc"
    );
    for e in &events {
        let Some(a) = &e.actor else { continue };
        if matches!(a.krate.as_deref(), Some("benign-derive" | "benign-bs")) {
            assert!(
                !matches!(e.kind, EventKind::Connect(_)),
                "benign crate with network: {e:?}"
            );
            assert!(
                !matches!(&e.kind, EventKind::Open(o) if o.path.ends_with("id_rsa") || o.path == "/etc/hostname")
            );
        }
    }
}

#[test]
fn checking_the_hostile_stream_without_profiles() {
    let (_, pipeline) = replay_stream("attribution-hostile");
    let (report, _) = pipeline.finish().expect("finish");
    let errors: BTreeSet<(Code, String)> = report
        .findings
        .iter()
        .filter(|f| f.severity == buildwatch::policy::Severity::Error)
        .map(|f| {
            (
                f.code,
                f.krate.as_ref().map(|k| k.name.clone()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (Code::UnexpectedNetwork, "lingerer".to_owned()),
            (Code::UnexpectedNetwork, "netprobe".to_owned()),
            (Code::UnexpectedNetwork, "phone-home".to_owned()),
            (Code::SensitiveRead, "keyscan".to_owned()),
        ]
        .into_iter()
        .collect()
    );
    // Every crate with a build script or proc-macro and no profile is listed, even quiet ones,
    // and none gets a catch-all finding.
    let unprofiled: BTreeSet<String> = report
        .unprofiled
        .iter()
        .map(|(k, _)| k.name.clone())
        .collect();
    for krate in [
        "benign-bs",
        "benign-derive",
        "netprobe",
        "keyscan",
        "lingerer",
        "peek-macro",
        "phone-home",
    ] {
        assert!(
            unprofiled.contains(krate),
            "{krate} missing from {unprofiled:?}"
        );
    }
}

#[test]
fn learning_never_allows_secrets_or_network_silently() {
    let (_, pipeline) = replay_stream("attribution-hostile");
    let (_, learner) = pipeline.finish().expect("finish");
    let learner: Learner = learner.expect("learn mode");
    let dir = tempfile::tempdir().expect("tempdir");
    learner
        .write(dir.path(), Accept::default(), &["test".to_owned()])
        .expect("write");
    let keyscan =
        std::fs::read_to_string(dir.path().join("keyscan.toml")).expect("keyscan profile");
    assert!(
        !keyscan.contains("sensitive-read ="),
        "not allowed silently:\n{keyscan}"
    );
    assert!(
        keyscan.contains("${HOME}/.ssh/id_rsa"),
        "listed for review, with the variable:\n{keyscan}"
    );
    let netprobe =
        std::fs::read_to_string(dir.path().join("netprobe.toml")).expect("netprobe profile");
    assert!(!netprobe.contains("network ="), "{netprobe}");
    assert!(netprobe.contains("127.0.0.1:9"), "{netprobe}");
    // Accepting explicitly turns them into rules.
    let dir2 = tempfile::tempdir().expect("tempdir");
    learner
        .write(
            dir2.path(),
            Accept {
                sensitive_read: true,
                network: true,
                persistence_write: false,
            },
            &[],
        )
        .expect("write");
    let netprobe =
        std::fs::read_to_string(dir2.path().join("netprobe.toml")).expect("netprobe profile");
    assert!(
        netprobe.contains("network = [") && netprobe.contains("\"127.0.0.1:9\""),
        "{netprobe}"
    );
    for entry in std::fs::read_dir(dir2.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        buildwatch::profile::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    }
}
