use super::*;
use crate::model::{Exec, MacroLib};

fn event(pid: u32, time_ns: u64, kind: EventKind) -> Event {
    Event {
        time_ns,
        pid,
        tid: pid,
        ppid: 1,
        comm: "x".into(),
        actor: None,
        callers: Vec::new(),
        kind,
    }
}

fn exec(path: &str) -> EventKind {
    EventKind::Exec(Exec {
        path: path.into(),
        argv: vec![path.into()],
        ..Exec::default()
    })
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[test]
fn events_are_written_in_order_with_their_digests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = dir.path().join("tool");
    std::fs::write(&tool, b"abc").expect("write");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let tool = tool.to_string_lossy().into_owned();
    let attributor = Attributor::new();
    let mut images = Images::new(Some(Digester::start().expect("digester")));
    let mut written = Vec::new();
    let t = now_ns();
    let stream = [
        event(4_000_000, t, exec(&tool)),
        event(
            4_000_000,
            t + 1,
            EventKind::Exit(crate::model::Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 0,
            }),
        ),
        event(4_000_001, t + 2, exec(&tool)),
        event(
            4_000_001,
            t + 3,
            EventKind::MacroLib(MacroLib {
                slot: 0,
                path: "/nonexistent/libm-1.so".into(),
                digest: None,
            }),
        ),
    ];
    for e in &stream {
        images.push(e, &attributor, &mut |e| written.push(e.clone()));
    }
    images.finish(&mut |e| written.push(e.clone()));
    assert_eq!(
        written.iter().map(|e| e.time_ns - t).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    let digests: Vec<Option<ImageDigest>> = written
        .iter()
        .map(|e| match &e.kind {
            EventKind::Exec(x) => x.digest.clone(),
            EventKind::MacroLib(m) => m.digest.clone(),
            _ => None,
        })
        .collect();
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(digests[0].as_ref().and_then(|d| d.sha256()), Some(abc));
    assert_eq!(digests[1], None);
    assert_eq!(digests[2].as_ref().and_then(|d| d.sha256()), Some(abc));
    assert!(matches!(digests[3], Some(ImageDigest::Changed { .. })));
    let programs = images.programs();
    let tool_image = programs.iter().find(|p| p.path == tool).expect("listed");
    assert_eq!((tool_image.runs, tool_image.kind), (2, ImageKind::Exec));
    assert!(programs.iter().any(|p| p.kind == ImageKind::MacroLib));
    assert!(images.digest_of(4_000_001, &tool).is_some());
}

#[test]
fn replay_keeps_the_recorded_digests() {
    let recorded = ImageDigest::Hashed {
        sha256: "00".repeat(32),
        size: 1,
    };
    let mut e = event(5, 1, exec("/bin/true"));
    set_digest(&mut e, recorded.clone());
    let mut images = Images::new(None);
    let mut written = Vec::new();
    images.push(&e, &Attributor::new(), &mut |e| written.push(e.clone()));
    images.finish(&mut |e| written.push(e.clone()));
    assert_eq!(written, [e]);
    assert_eq!(images.programs()[0].digest, Some(recorded));
}

/// A long run executes the same program millions of times: what is kept for the views is one
/// digest per image, and the per-process digests of the most recent processes only.
#[test]
fn the_digests_kept_for_views_stay_bounded_over_many_processes() {
    let digest = |n: u8| ImageDigest::Hashed {
        sha256: format!("{n:02x}").repeat(32),
        size: 1,
    };
    let mut images = Images::new(None);
    let attributor = Attributor::new();
    let runs = 3 * BY_PROCESS as u32;
    for pid in 1..=runs {
        let mut e = event(pid, u64::from(pid), exec("/usr/bin/cc"));
        // The file is replaced once, half-way through.
        set_digest(&mut e, digest(u8::from(pid > runs / 2)));
        images.push(&e, &attributor, &mut |_| {});
    }
    images.finish(&mut |_| {});
    assert!(
        images.by_process.len() <= BY_PROCESS,
        "{}",
        images.by_process.len()
    );
    assert_eq!(images.by_process.len(), images.by_process_order.len());
    assert_eq!(images.digest_of(runs, "/usr/bin/cc"), Some(&digest(1)));
    assert_eq!(images.digest_of(1, "/usr/bin/cc"), None);
    let cc = |d: u8| ("/usr/bin/cc".to_owned(), digest(d));
    assert_eq!(images.digests_since(0), [cc(0), cc(1)]);
    assert_eq!(
        images.programs().iter().map(|p| p.runs).sum::<u64>(),
        u64::from(runs)
    );
}
