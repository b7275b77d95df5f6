//! Attribution end to end: a real `cargo build` of the hostile fixture workspace under the real
//! sensor. Every hostile action must be attributed to the right crate, version and role; benign
//! crates must get none of it. The build runs once; each test checks one behaviour.
mod support;

use std::{
    io::Read as _,
    net::TcpListener,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use buildwatch::{
    attribution::{Actor, Role},
    model::{Event, EventKind},
};
use support::{Run, copy_fixture, real_home_dir, require_root, watch_in};

struct Build {
    run: Run,
    port: u16,
    fake_home: PathBuf,
    secret: PathBuf,
    received: Arc<Mutex<Vec<String>>>,
}

fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        require_root();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        {
            let received = received.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let mut stream = stream;
                    let mut buf = String::new();
                    let _ = stream.read_to_string(&mut buf);
                    received.lock().expect("lock").push(buf);
                }
            });
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).expect("mkdir");
        copy_fixture("hostile", &ws);
        let fake_home = dir.path().join("home");
        std::fs::create_dir_all(fake_home.join(".ssh")).expect("mkdir .ssh");
        std::fs::write(fake_home.join(".ssh/id_rsa"), "-----BEGIN FAKE KEY-----\n").expect("key");
        let secret = dir.path().join("secret.txt");
        std::fs::write(&secret, "s3cr3t").expect("secret");
        // The real toolchain, a fake HOME; `sleep` keeps watching after the build so that the
        // lingering grandchild's late connect is seen.
        let script = format!(
            "cd {} && HOME={} CARGO_HOME={} RUSTUP_HOME={} BW_PORT={port} BW_SECRET_FILE={} cargo build --offline && sleep 2",
            ws.display(),
            fake_home.display(),
            real_home_dir("CARGO_HOME", ".cargo"),
            real_home_dir("RUSTUP_HOME", ".rustup"),
            secret.display(),
        );
        let run = watch_in(dir, &[], &["sh", "-c", &script]);
        assert_eq!(run.code(), Some(0), "{}", run.describe());
        Build { run, port, fake_home, secret, received }
    })
}

fn actor(e: &Event) -> &Actor {
    e.actor
        .as_ref()
        .unwrap_or_else(|| panic!("event without actor: {e:?}"))
}

fn connects_to(b: &Build) -> Vec<&Event> {
    b.run
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Connect(c) if c.port == b.port && c.addr == "127.0.0.1"))
        .collect()
}

fn opens_of<'a>(b: &'a Build, path: &Path) -> Vec<&'a Event> {
    let path = path
        .canonicalize()
        .expect("canonical")
        .display()
        .to_string();
    b.run
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Open(o) if o.path == path))
        .collect()
}

fn assert_actor(e: &Event, role: Role, krate: &str, version: &str) {
    let a = actor(e);
    assert_eq!(
        (a.policy_role(), a.krate.as_deref(), a.version.as_deref()),
        (role, Some(krate), Some(version)),
        "wrong attribution: {a:?} for {e:?}"
    );
    assert!(a.exact, "attribution must be exact: {a:?}");
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn build_script_connecting_to_loopback() {
    let b = build();
    let e = connects_to(b)
        .into_iter()
        .find(|e| actor(e).krate.as_deref() == Some("netprobe"))
        .unwrap_or_else(|| panic!("no connect by netprobe\n{}", b.run.describe()));
    assert_actor(e, Role::BuildScript, "netprobe", "0.3.1");
    assert_eq!(actor(e).role, Role::BuildScript);
    assert!(
        b.received
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m == "netprobe")
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn build_script_reading_an_ssh_key() {
    let b = build();
    let reads = opens_of(b, &b.fake_home.join(".ssh/id_rsa"));
    assert!(
        !reads.is_empty(),
        "no read of the fake key\n{}",
        b.run.describe()
    );
    for e in reads {
        assert_actor(e, Role::BuildScript, "keyscan", "0.1.4");
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn proc_macro_reading_a_file_at_expansion() {
    let b = build();
    let reads = opens_of(b, &b.secret);
    assert!(
        !reads.is_empty(),
        "no read of the secret\n{}",
        b.run.describe()
    );
    for e in reads {
        assert_actor(e, Role::ProcMacro, "peek-macro", "0.2.0");
        let compiling = actor(e).compiling.as_ref().map(|c| c.name.as_str());
        assert_eq!(compiling, Some("app"), "expanded while compiling app");
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn proc_macro_connecting_to_loopback() {
    let b = build();
    let e = connects_to(b)
        .into_iter()
        .find(|e| actor(e).krate.as_deref() == Some("phone-home"))
        .unwrap_or_else(|| panic!("no connect by phone-home\n{}", b.run.describe()));
    assert_actor(e, Role::ProcMacro, "phone-home", "1.0.0");
    assert_eq!(
        actor(e).compiling.as_ref().map(|c| c.name.as_str()),
        Some("lib-b")
    );
    assert!(
        b.received
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m == "phone-home")
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn grandchild_connecting_after_its_build_script_exited() {
    let b = build();
    let e = connects_to(b)
        .into_iter()
        .find(|e| actor(e).krate.as_deref() == Some("lingerer"))
        .unwrap_or_else(|| panic!("no connect by lingerer's grandchild\n{}", b.run.describe()));
    assert_actor(e, Role::BuildScript, "lingerer", "0.4.0");
    // It is a grandchild of the build script, which had exited by then.
    let bs = b
        .run
        .events
        .iter()
        .find(|x| {
            x.kind.name() == "exec"
                && matches!(&x.actor, Some(a) if a.role == Role::Cargo)
                && matches!(&x.kind, EventKind::Exec(ex) if ex.image().contains("/build/lingerer-"))
        })
        .expect("lingerer's build script exec");
    let bs_exit = b
        .run
        .of_kind("exit")
        .find(|x| x.pid == bs.pid)
        .expect("build script exit");
    assert!(
        bs_exit.time_ns < e.time_ns,
        "the build script exited before the connect"
    );
    assert_ne!(e.pid, bs.pid);
    assert!(
        b.received
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m == "lingerer")
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn benign_crates_get_none_of_it() {
    let b = build();
    let secret_paths = [
        b.fake_home
            .join(".ssh/id_rsa")
            .canonicalize()
            .expect("canonical")
            .display()
            .to_string(),
        b.secret
            .canonicalize()
            .expect("canonical")
            .display()
            .to_string(),
    ];
    for e in &b.run.events {
        let Some(a) = &e.actor else { continue };
        let benign = |name: &str| {
            a.krate.as_deref() == Some(name) || a.candidates.iter().any(|c| c.name == name)
        };
        let hostile = match &e.kind {
            EventKind::Connect(c) => c.port == b.port,
            EventKind::Open(o) => secret_paths.contains(&o.path),
            _ => false,
        };
        if hostile {
            assert!(
                !benign("benign-bs")
                    && !benign("benign-derive")
                    && !benign("app")
                    && !benign("lib-b"),
                "a hostile action was pinned on a benign crate: {e:?}"
            );
        }
        if benign("benign-bs") || benign("benign-derive") {
            assert!(
                !matches!(e.kind, EventKind::Connect(_)),
                "benign crate with network: {e:?}"
            );
        }
    }
    // Every connect to the listener is one of the three hostile crates'.
    let mut who: Vec<&str> = connects_to(b)
        .iter()
        .filter_map(|e| actor(e).krate.as_deref())
        .collect();
    who.sort_unstable();
    who.dedup();
    assert_eq!(who, ["lingerer", "netprobe", "phone-home"]);
}
