use super::*;
use crate::model::{Exit, Fork, MacroLib};

fn event(pid: u32, kind: EventKind) -> Event {
    Event {
        time_ns: 1,
        pid,
        tid: pid,
        ppid: 0,
        comm: "x".into(),
        actor: None,
        callers: Vec::new(),
        kind,
    }
}

fn fork(a: &mut Attributor, parent: u32, child: u32) {
    a.process(&mut event(
        parent,
        EventKind::Fork(Fork { child_pid: child }),
    ));
}

fn exit(a: &mut Attributor, pid: u32) {
    a.process(&mut event(
        pid,
        EventKind::Exit(Exit {
            code: Some(0),
            signal: None,
            quiet_failed_reads: 0,
        }),
    ));
}

/// A long build runs tens of thousands of processes: the table stays bounded, and still
/// knows every process alive, the parent of any of them, and the latest to exit.
#[test]
fn the_process_table_stays_bounded_on_a_long_run() {
    let mut a = Attributor::new();
    fork(&mut a, 1, 2);
    fork(&mut a, 2, 3);
    exit(&mut a, 2);
    let runs = 5 * KEEP_EXITED as u32;
    for pid in 100..100 + runs {
        fork(&mut a, 1, pid);
        exit(&mut a, pid);
    }
    assert!(
        a.table().len() <= 2 * KEEP_EXITED + 3,
        "{} processes kept",
        a.table().len()
    );
    for pid in [1, 2, 3, 100 + runs - 1] {
        assert!(a.table().get(pid).is_some(), "process {pid} forgotten");
    }
    assert!(a.table().get(100).is_none());
}

/// A recorded build (build scripts, proc-macros, rustc, linkers and what they ran) played over
/// and over under one watch, as a build farm's long-lived runner or a soak would: the table holds
/// the processes still running and a bounded number of exited ones, however many came and went.
#[test]
fn the_process_table_stays_bounded_over_a_recorded_stream_played_many_times() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/streams/hostile.jsonl.gz");
    let events = crate::replay::read_events(&path).unwrap_or_else(|e| panic!("{e}"));
    let exits = |events: &[Event]| -> std::collections::HashSet<u32> {
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Exit(_)))
            .map(|e| e.pid)
            .collect()
    };
    let exited = exits(&events);
    let pids: std::collections::HashSet<u32> = events.iter().map(|e| e.pid).collect();
    // Processes of the recording whose exit it does not hold stay (as running) in every play.
    let never_exit = pids.difference(&exited).count();
    assert!(
        exited.len() > 40,
        "{} processes exit in the recording",
        exited.len()
    );
    let mut a = Attributor::new();
    let plays = 400u32;
    let mut largest = 0;
    for play in 0..plays {
        // Fresh pids for every play, as a kernel hands out.
        let shift = |pid: u32| if pid == 0 { 0 } else { pid + play * 1_000_000 };
        for e in &events {
            let mut e = e.clone();
            e.pid = shift(e.pid);
            e.tid = shift(e.tid);
            e.ppid = shift(e.ppid);
            e.actor = None;
            if let EventKind::Fork(f) = &mut e.kind {
                f.child_pid = shift(f.child_pid);
            }
            a.process(&mut e);
            largest = largest.max(a.table().len());
        }
    }
    let seen = plays as usize * pids.len();
    assert!(seen > 4 * KEEP_EXITED, "only {seen} processes played");
    let bound = 2 * KEEP_EXITED + plays as usize * never_exit + pids.len();
    assert!(
        largest <= bound,
        "{largest} processes kept (bound {bound}) of {seen} seen"
    );
}
/// cargo builds a crate twice when the host and the target need it with other features
/// (`cargo install bat` does so with serde, both build scripts at once): each build script,
/// and what it runs, is judged against its own OUT_DIR, not the one seen last.
#[test]
fn a_crate_built_twice_has_one_out_dir_per_instance() {
    let mut a = Attributor::new();
    let krate = CrateRef::new("serde", Some("1.0.228"));
    let out = |h: &str| format!("/w/target/release/build/serde-{h}/out");
    for (pid, hash) in [(10, "aaaaaaaaaaaaaaaa"), (20, "bbbbbbbbbbbbbbbb")] {
        fork(&mut a, 1, pid);
        let dir = format!("/w/target/release/build/serde-{hash}");
        let out = out(hash);
        let exec = Exec {
            path: format!("{dir}/build-script-build"),
            argv: vec![format!("{dir}/build-script-build")],
            env: [
                ("CARGO_PKG_NAME", "serde"),
                ("CARGO_PKG_VERSION", "1.0.228"),
                ("CARGO_MANIFEST_DIR", "/r/serde-1.0.228"),
                ("OUT_DIR", out.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            cwd: Some("/r/serde-1.0.228".into()),
            ..Default::default()
        };
        a.process(&mut event(pid, EventKind::Exec(exec)));
    }
    fork(&mut a, 10, 11);
    let first = a.places_for_process(11, Some(&krate));
    assert_eq!(first.out_dir, Some(out("aaaaaaaaaaaaaaaa")));
    assert_eq!(
        a.places_for_process(20, Some(&krate)).out_dir,
        Some(out("bbbbbbbbbbbbbbbb"))
    );
    // Another crate's process, or none: the crate-wide places.
    assert_eq!(
        a.places_for_process(999, Some(&krate)).out_dir,
        a.places_for(Some(&krate)).out_dir
    );
    let other = CrateRef::new("libc", Some("0.2.0"));
    assert_eq!(a.places_for_process(10, Some(&other)).out_dir, None);
}

/// A proc-macro a direct dependency re-exports (bat uses git-version, whose macro lives in
/// git-version-macro) is found by rustc in the `-L dependency=` directory, not named with
/// --extern; built by an earlier run, this run never saw it compiled. Its code on the stack
/// still names it, and a library rustc loads from elsewhere is still no proc-macro.
#[test]
fn a_re_exported_proc_macro_from_an_earlier_build_is_named() {
    let mut a = Attributor::new();
    let deps = "/w/target/debug/deps";
    fork(&mut a, 1, 10);
    let exec = Exec {
        path: "/r/toolchain/bin/rustc".into(),
        argv: [
            "rustc",
            "--crate-name",
            "app",
            "--out-dir",
            deps,
            "-L",
            &format!("dependency={deps}"),
            "--extern",
            &format!("git_version={deps}/libgit_version-1111111111111111.rlib"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        env: [("CARGO_PKG_NAME", "app"), ("CARGO_PKG_VERSION", "1.0.0")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        cwd: Some("/w".into()),
        ..Default::default()
    };
    a.process(&mut event(10, EventKind::Exec(exec)));
    for (slot, path) in [
        (
            0,
            format!("{deps}/libgit_version_macro-2222222222222222.so"),
        ),
        (
            1,
            "/w/target/debug/build/evil-3333333333333333/out/libfake_macro-4444444444444444.so"
                .to_owned(),
        ),
    ] {
        a.process(&mut event(
            10,
            EventKind::MacroLib(MacroLib {
                slot,
                path,
                digest: None,
            }),
        ));
    }
    let mut forked = event(10, EventKind::Fork(Fork { child_pid: 11 }));
    forked.callers = vec![0];
    a.process(&mut forked);
    let actor = forked.actor.expect("actor");
    assert_eq!(actor.role, Role::ProcMacro, "{actor:?}");
    assert_eq!(
        actor.crate_ref().map(|k| k.name),
        Some("git_version_macro".to_owned())
    );
    let mut other = event(10, EventKind::Fork(Fork { child_pid: 12 }));
    other.callers = vec![1];
    a.process(&mut other);
    assert_ne!(other.actor.expect("actor").role, Role::ProcMacro);
}

/// A build script that runs before this run sees rustc compile anything (the rest of the graph
/// fresh from an earlier build into the same target directory) probes the compiler cargo gave
/// it: the sysroot comes from that RUSTC, so that `$RUSTC --version` and its reads of the
/// standard library are the baseline's. The rustup proxy in CARGO_HOME is no sysroot.
#[test]
fn the_sysroot_is_known_from_the_first_build_script() {
    let build_script = |a: &mut Attributor, pid: u32, rustc: &str| {
        fork(a, 1, pid);
        let dir = "/w/target/debug/build/proc-macro2-aaaaaaaaaaaaaaaa";
        let exec = Exec {
            path: format!("{dir}/build-script-build"),
            argv: vec![format!("{dir}/build-script-build")],
            env: [
                ("CARGO_PKG_NAME", "proc-macro2"),
                ("CARGO_PKG_VERSION", "1.0.107"),
                (
                    "CARGO_MANIFEST_DIR",
                    "/h/.cargo/registry/src/x/proc-macro2-1.0.107",
                ),
                (
                    "OUT_DIR",
                    "/w/target/debug/build/proc-macro2-bbbbbbbbbbbbbbbb/out",
                ),
                ("RUSTC", rustc),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            cwd: Some("/h/.cargo/registry/src/x/proc-macro2-1.0.107".into()),
            ..Default::default()
        };
        a.process(&mut event(pid, EventKind::Exec(exec)));
    };
    let toolchain = "/h/.rustup/toolchains/stable-x86_64-unknown-linux-gnu";
    let mut a = Attributor::new();
    build_script(&mut a, 10, &format!("{toolchain}/bin/rustc"));
    let places = a.places_for(None);
    assert_eq!(places.sysroot.as_deref(), Some(toolchain));
    assert!(places.expected_exec(&format!("{toolchain}/bin/rustc")));
    assert!(places.expected_read(&format!(
        "{toolchain}/lib/rustlib/x86_64-unknown-linux-gnu/lib/libstd-1.rmeta"
    )));

    let mut a = Attributor::new();
    a.set_context(BuildContext {
        cargo_home: Some("/h/.cargo".into()),
        ..BuildContext::default()
    });
    build_script(&mut a, 10, "/h/.cargo/bin/rustc");
    assert_eq!(a.places_for(None).sysroot, None);
    build_script(&mut a, 20, "rustc");
    assert_eq!(a.places_for(None).sysroot, None);
}
