use super::*;
use crate::model::{Exit, Fork};

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
