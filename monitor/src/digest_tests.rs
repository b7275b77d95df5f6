use std::{
    io::Write as _,
    os::unix::fs::{PermissionsExt as _, symlink},
};

use super::*;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn request(pid: u32, path: &str, time_ns: u64, source: Source) -> Request {
    Request {
        id: 1,
        pid,
        path: path.to_owned(),
        time_ns,
        source,
    }
}

fn run(r: &Request, proc_root: &str, cache: &mut Cache) -> ImageDigest {
    let file = take_hold(r, proc_root);
    hash(
        Held {
            request: r.clone(),
            file,
        },
        cache,
    )
}

/// A program file written, then "run" a little later.
fn program(dir: &std::path::Path, name: &str, content: &[u8]) -> (String, u64) {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    std::thread::sleep(std::time::Duration::from_millis(20));
    (path.to_string_lossy().into_owned(), now_ns())
}

// SHA-256("abc"), FIPS 180-2 appendix B.1.
const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn hashes_the_file_the_process_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ran) = program(dir.path(), "tool", b"abc");
    // A /proc of one process whose exe is the program.
    let proc_root = dir.path().join("proc");
    std::fs::create_dir_all(proc_root.join("42")).expect("mkdir");
    symlink(&path, proc_root.join("42/exe")).expect("symlink");
    let digest = run(
        &request(42, &path, ran, Source::Exe),
        &proc_root.to_string_lossy(),
        &mut Cache::default(),
    );
    assert_eq!(
        digest,
        ImageDigest::Hashed {
            sha256: ABC.into(),
            size: 3
        }
    );
    assert_eq!(sha256_file(std::path::Path::new(&path)).expect("hash"), ABC);
}

#[test]
fn our_own_executable_through_proc() {
    let exe = std::env::current_exe().expect("exe");
    let path = exe.to_string_lossy().into_owned();
    let digest = run(
        &request(std::process::id(), &path, now_ns(), Source::Exe),
        "/proc",
        &mut Cache::default(),
    );
    assert_eq!(
        digest.sha256(),
        Some(sha256_file(&exe).expect("hash").as_str())
    );
}

#[test]
fn a_file_written_after_it_ran_is_changed_not_hashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = program(dir.path(), "tool", b"abc");
    let ran = now_ns();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Same size, same mtime set back: only the change time tells.
    let mtime = std::fs::metadata(&path)
        .expect("stat")
        .modified()
        .expect("mtime");
    std::fs::write(&path, b"xyz").expect("rewrite");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(mtime).expect("set mtime");
    drop(file);
    // The process is gone (no /proc entry): hashed through the path.
    let digest = run(
        &request(4_000_000, &path, ran, Source::Exe),
        "/nonexistent",
        &mut Cache::default(),
    );
    assert!(matches!(digest, ImageDigest::Changed { .. }), "{digest:?}");
    assert!(
        digest
            .describe()
            .starts_with(crate::model::digest::CHANGED_BEFORE_HASHING)
    );
}

#[test]
fn a_replaced_file_is_changed_and_a_removed_one_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ran) = program(dir.path(), "tool", b"abc");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let other = dir.path().join("other");
    std::fs::write(&other, b"abc").expect("write");
    std::fs::rename(&other, &path).expect("rename");
    let mut cache = Cache::default();
    let digest = run(
        &request(4_000_000, &path, ran, Source::Exe),
        "/nonexistent",
        &mut cache,
    );
    assert!(matches!(digest, ImageDigest::Changed { .. }), "{digest:?}");
    std::fs::remove_file(&path).expect("rm");
    let digest = run(
        &request(4_000_000, &path, ran, Source::Exe),
        "/nonexistent",
        &mut cache,
    );
    assert!(matches!(digest, ImageDigest::Changed { .. }), "{digest:?}");
}

#[test]
fn a_process_running_another_program_is_not_trusted_for_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ran) = program(dir.path(), "tool", b"abc");
    let (decoy, _) = program(dir.path(), "decoy", b"not it");
    let proc_root = dir.path().join("proc");
    std::fs::create_dir_all(proc_root.join("42")).expect("mkdir");
    symlink(&decoy, proc_root.join("42/exe")).expect("symlink");
    let digest = run(
        &request(42, &path, ran, Source::Exe),
        &proc_root.to_string_lossy(),
        &mut Cache::default(),
    );
    assert_eq!(digest.sha256(), Some(ABC));
}

#[test]
fn a_relative_path_is_not_hashed() {
    let digest = run(
        &request(1, "tool", now_ns(), Source::Exe),
        "/nonexistent",
        &mut Cache::default(),
    );
    assert!(
        matches!(digest, ImageDigest::Unavailable { .. }),
        "{digest:?}"
    );
}

#[test]
fn a_library_must_be_the_one_mapped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ran) = program(dir.path(), "libm.so", b"abc");
    let meta = std::fs::metadata(&path).expect("stat");
    let proc_root = dir.path().join("proc");
    std::fs::create_dir_all(proc_root.join("7")).expect("mkdir");
    let dev = meta.dev();
    let line = |ino: u64| {
        format!(
            "7f00-7f10 r-xp 00000000 {:x}:{:x} {ino}   {path}\n",
            libc::major(dev),
            libc::minor(dev)
        )
    };
    std::fs::write(proc_root.join("7/maps"), line(meta.ino())).expect("maps");
    let root = proc_root.to_string_lossy().into_owned();
    let digest = run(
        &request(7, &path, ran, Source::Mapped),
        &root,
        &mut Cache::default(),
    );
    assert_eq!(digest.sha256(), Some(ABC));
    std::fs::write(proc_root.join("7/maps"), line(meta.ino() + 1)).expect("maps");
    let digest = run(
        &request(7, &path, ran, Source::Mapped),
        &root,
        &mut Cache::default(),
    );
    assert!(matches!(digest, ImageDigest::Changed { .. }), "{digest:?}");
}

#[test]
fn maps_lines() {
    let maps = "55d0-55d1 r--p 00000000 fd:01 1234  /usr/bin/rustc\n\
                7f00-7f10 r-xp 00001000 103:02 99  /t/lib x.so (deleted)\n\
                7fff-8000 rw-p 00000000 00:00 0  [stack]\n";
    assert_eq!(
        parse_maps_identity(maps, "/usr/bin/rustc"),
        Some((libc::makedev(0xfd, 1), 1234))
    );
    assert_eq!(
        parse_maps_identity(maps, "/t/lib x.so"),
        Some((libc::makedev(0x103, 2), 99))
    );
    assert_eq!(parse_maps_identity(maps, "/nope"), None);
}

#[test]
fn the_worker_answers_every_request_and_caches_by_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ran) = program(dir.path(), "tool", b"abc");
    let mut digester = Digester::start().expect("start");
    let ids: Vec<u64> = (0..5)
        .map(|_| {
            digester
                .submit(4_000_000, &path, ran, Source::Exe)
                .expect("queued")
        })
        .collect();
    digester.close();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answers = Vec::new();
    while answers.len() < ids.len() {
        answers.push(digester.wait(deadline).expect("an answer"));
    }
    assert_eq!(answers.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    assert!(answers.iter().all(|(_, d)| d.sha256() == Some(ABC)));
    assert!(digester.submit(1, &path, ran, Source::Exe).is_err());
}

#[test]
fn digests_round_trip_in_events() {
    let mut f = tempfile::NamedTempFile::new().expect("tmp");
    f.write_all(b"x").expect("write");
    let digest = ImageDigest::Hashed {
        sha256: ABC.into(),
        size: 3,
    };
    let json = serde_json::to_string(&digest).expect("json");
    assert_eq!(
        json,
        format!(r#"{{"status":"hashed","sha256":"{ABC}","size":3}}"#)
    );
    assert_eq!(
        serde_json::from_str::<ImageDigest>(&json).expect("parse"),
        digest
    );
}

/// A store in a fresh private directory; `settled` as given.
fn store_in(dir: &std::path::Path, settled: Duration) -> Option<crate::digest_store::Store> {
    let store_dir = dir.join("cache");
    crate::digest_store::Store::open(&store_dir.join("digests"), settled)
}

#[test]
fn digests_are_reused_between_runs_only_for_the_same_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ran) = program(dir.path(), "tool", b"abc");
    // Run 1 hashes it and stores the digest (settled: 0, so the fresh file counts).
    let mut cache = Cache::with_store(store_in(dir.path(), Duration::ZERO));
    let r = request(4_000_000, &path, ran, Source::Exe);
    assert_eq!(run(&r, "/proc", &mut cache).sha256(), Some(ABC));
    let stored = std::fs::read_to_string(dir.path().join("cache/digests")).expect("stored");
    assert_eq!(stored.lines().count(), 1, "{stored}");
    assert!(stored.trim_end().ends_with(ABC), "{stored}");

    // Run 2 takes the stored digest without reading: proven by a store that says otherwise
    // for the same identity and change time.
    let fake = "f".repeat(64);
    let forged = stored.replace(ABC, &fake);
    std::fs::write(dir.path().join("cache/digests"), &forged).expect("forge");
    let mut cache = Cache::with_store(store_in(dir.path(), Duration::ZERO));
    assert_eq!(
        run(&r, "/proc", &mut cache).sha256(),
        Some(fake.as_str()),
        "the stored digest is used for an unchanged file"
    );

    // Written since (same size, mtime put back): the change time differs, the file is read.
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&path, b"abd").expect("rewrite");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(mtime))
        .expect("put the mtime back");
    std::thread::sleep(Duration::from_millis(20));
    let ran = now_ns();
    let r = request(4_000_000, &path, ran, Source::Exe);
    let mut cache = Cache::with_store(store_in(dir.path(), Duration::ZERO));
    let digest = run(&r, "/proc", &mut cache);
    assert!(
        digest.sha256().is_some_and(|d| d != fake && d != ABC),
        "{digest:?}"
    );
}

#[test]
fn a_fresh_file_is_not_stored_and_a_foreign_store_is_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ran) = program(dir.path(), "tool", b"abc");
    // Changed within the settling time: hashed, not stored (a write in the same clock tick
    // would leave its change time as it is).
    let mut cache = Cache::with_store(store_in(dir.path(), Duration::from_secs(3600)));
    let r = request(4_000_000, &path, ran, Source::Exe);
    assert_eq!(run(&r, "/proc", &mut cache).sha256(), Some(ABC));
    let stored = std::fs::read_to_string(dir.path().join("cache/digests")).unwrap_or_default();
    assert_eq!(stored, "", "nothing stored for a file changed a moment ago");

    // A store others may write is not used at all.
    let file = dir.path().join("cache/digests");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    assert!(store_in(dir.path(), Duration::ZERO).is_none());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::set_permissions(
        dir.path().join("cache"),
        std::fs::Permissions::from_mode(0o777),
    )
    .expect("chmod");
    assert!(store_in(dir.path(), Duration::ZERO).is_none());
    std::fs::set_permissions(
        dir.path().join("cache"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    // Malformed lines are skipped, good ones kept.
    std::fs::write(
        &file,
        "garbage\n1 2 3 4 5 xyz\n1 2 3 4 5 ".to_owned() + ABC + "\n",
    )
    .expect("write");
    let store = store_in(dir.path(), Duration::ZERO).expect("store");
    let id = Identity {
        dev: 1,
        ino: 2,
        size: 3,
        mtime_ns: 4,
    };
    assert_eq!(store.get(&id, 5).map(String::as_str), Some(ABC));
    assert_eq!(store.get(&id, 6), None, "another change time");
}
