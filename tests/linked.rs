//! Link injection: each hostile crate of `tests/fixtures/linked` steers the link through the
//! directives its build script prints for cargo (a `-B` directory holding a planted linker, a
//! `--defsym` rewiring a function, an archive linked from a search directory outside OUT_DIR,
//! `rustc-env=LD_PRELOAD`), and each test proves the trick really happened (the planted linker
//! ran, the binary's function changed, the application took the archive, the preloaded library
//! ran inside rustc) and that `buildwatch ci` with the default policy failed with
//! `link-injection` on the crate whose build script emitted the directive, what the injected
//! code did being attributed to that build script. The benign crates (a -sys crate linking its
//! own OUT_DIR archive, a build script printing only system library directives) stay quiet.
//!
//! One watched `cargo build` of the fixture serves every test.
mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use serde_json::Value;
use support::{buildwatch_in, copy_fixture, read_report, real_home_dir, require_root};

const VERSION: &str = "0.1.0";
const HOME: &str = "/tmp/buildwatch-linked-home";

struct Build {
    out: Output,
    report: Value,
    sarif: Value,
    ws: PathBuf,
    home: PathBuf,
}

impl Build {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn all(&self) -> &Vec<Value> {
        self.report["findings"].as_array().expect("findings")
    }

    /// The finding with `code` on `krate` whose subject satisfies `subject`, checked to be an
    /// error attributed exactly to `role` of `krate` 0.1.0.
    fn finding(
        &self,
        code: &str,
        krate: &str,
        role: &str,
        subject: impl Fn(&str) -> bool,
    ) -> &Value {
        let found = self
            .all()
            .iter()
            .find(|f| {
                f["code"] == code
                    && f["crate"]["name"] == krate
                    && subject(f["subject"].as_str().unwrap_or_default())
            })
            .unwrap_or_else(|| {
                panic!(
                    "no matching {code} finding on {krate}; all: {:#}\n{}",
                    self.report["findings"],
                    self.stderr()
                )
            });
        assert_eq!(found["crate"]["version"], VERSION, "{found:#}");
        assert_eq!(found["role"], role, "{found:#}");
        assert_eq!(found["severity"], "error", "fails ci by default: {found:#}");
        assert_eq!(found["exact"], true, "{found:#}");
        found
    }

    fn run(&self, bin: &str) -> String {
        let out = Command::new(self.ws.join("target/debug").join(bin))
            .output()
            .expect("run the binary");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn fresh_dir(path: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(path);
    std::fs::create_dir_all(path).expect("mkdir");
    path.to_path_buf()
}

fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        require_root();
        let dir = fresh_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("linked"));
        copy_fixture("linked", &dir);
        let ws = dir.join("ws").canonicalize().expect("workspace");
        // The throwaway HOME, armed, with a key for the injected code to reach for.
        let home = fresh_dir(Path::new(HOME));
        std::fs::write(home.join(".buildwatch-linked"), "armed\n").expect("marker");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir .ssh");
        std::fs::write(home.join(".ssh/id_rsa"), "not a key\n").expect("key");
        let path = |name: &str| dir.join(name).display().to_string();
        let (report, sarif, events, profiles) = (
            path("report.json"),
            path("report.sarif"),
            path("events.jsonl"),
            path("no-profiles"),
        );
        let args = [
            "ci",
            "--profiles",
            &profiles,
            "--report",
            &report,
            "--sarif",
            &sarif,
            "--events",
            &events,
            "--",
            "cargo",
            "build",
            "--offline",
        ];
        let env = [
            ("CARGO_HOME", real_home_dir("CARGO_HOME", ".cargo")),
            ("RUSTUP_HOME", real_home_dir("RUSTUP_HOME", ".rustup")),
            ("HOME", home.display().to_string()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = buildwatch_in(&ws, &args, &env);
        let report_value = read_report(Path::new(&report));
        assert_eq!(
            report_value["exit_status"],
            0,
            "the fixture builds\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Build {
            out,
            report: report_value,
            sarif: read_report(Path::new(&sarif)),
            ws,
            home,
        }
    })
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_linked_build_fails_ci_with_exit_3() {
    let b = build();
    assert_eq!(b.out.status.code(), Some(3), "{}", b.stderr());
    assert_eq!(b.report["lost_events"], 0, "no events lost");
    let rules: Vec<&str> = b.sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(rules.contains(&"link-injection"), "{rules:?}");
}

/// `-B<dir>` with a planted `ld.bfd` (and `-fuse-ld=bfd`): the link ran it, and what it did is
/// the build script's.
#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_planted_linker_in_a_b_directory() {
    let b = build();
    assert!(
        b.home.join("link-prefix-ran").exists(),
        "the planted linker ran"
    );
    assert_eq!(
        b.run("prefix-ld").trim(),
        "prefix-ld",
        "and linked the binary"
    );
    let dir = b.home.join("bw-ld").display().to_string();
    let f = b.finding("link-injection", "prefix-ld", "build-script", |s| {
        s == format!("arg:-B{dir}")
    });
    let detail = f["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("build script of prefix-ld 0.1.0"), "{f:#}");
    b.finding("link-injection", "prefix-ld", "build-script", |s| {
        s == "arg:-fuse-ld=bfd"
    });
    // The key the planted linker read: the build script's doing, not rustc's.
    let key = b.home.join(".ssh/id_rsa").display().to_string();
    let read = b.finding("sensitive-read", "prefix-ld", "build-script", |s| s == key);
    let chain: Vec<&str> = read["process"]["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        chain.iter().any(|c| c.contains("from arg:-B")),
        "the chain says how the program got into the link: {read:#}"
    );
    assert!(
        !b.all()
            .iter()
            .any(|f| f["role"] == "rustc" && f["code"] == "sensitive-read"),
        "not blamed on rustc"
    );
}

/// `-Wl,--defsym=bw_greeting=bw_evil_greeting`: the binary's function changed.
#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_function_rewired_with_defsym() {
    let b = build();
    assert_eq!(
        b.run("defsym").trim(),
        "greeting=666",
        "the link took the defsym"
    );
    b.finding("link-injection", "defsym", "build-script", |s| {
        s == "arg:-Wl,--defsym=bw_greeting=bw_evil_greeting"
    });
}

/// An archive linked from a directory outside OUT_DIR: the application took it, and the search
/// directory is the emitting crate's, not the application's whose rustc also received it.
#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn an_archive_from_a_search_directory_outside_out_dir() {
    let b = build();
    assert!(
        b.run("app").contains("extra=777"),
        "the application took the archive"
    );
    let dir = b.home.join("bw-lib").display().to_string();
    b.finding("link-injection", "extra-search", "build-script", |s| {
        s == format!("search:{dir}")
    });
    let on_app: Vec<&Value> = b
        .all()
        .iter()
        .filter(|f| f["crate"]["name"] == "app")
        .collect();
    assert!(on_app.is_empty(), "nothing on the application: {on_app:#?}");
}

/// `rustc-env=LD_PRELOAD=$OUT_DIR/libbwpreload.so`: the library ran inside rustc; its reads are
/// the build script's, and it is no proc-macro.
#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_library_preloaded_into_rustc() {
    let b = build();
    assert!(
        b.home.join("preload-ran").exists(),
        "the preloaded library ran"
    );
    let f = b.finding("link-injection", "preload", "build-script", |s| {
        s.starts_with("env:LD_PRELOAD=") && s.ends_with("/out/libbwpreload.so")
    });
    assert!(
        f["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("rustc-env"),
        "{f:#}"
    );
    let key = b.home.join(".ssh/id_rsa").display().to_string();
    b.finding("sensitive-read", "preload", "build-script", |s| s == key);
    for f in b.all() {
        assert_ne!(
            f["role"], "proc-macro",
            "no proc-macro in this build: {f:#}"
        );
        assert_ne!(f["crate"]["name"], "bwpreload", "{f:#}");
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_benign_crates_stay_quiet() {
    let b = build();
    let app = b.run("app");
    assert!(app.contains("own=42") && app.contains("cos0=1"), "{app}");
    for krate in ["own-sys", "sys-only", "app"] {
        let theirs: Vec<&Value> = b
            .all()
            .iter()
            .filter(|f| f["crate"]["name"] == krate)
            .collect();
        assert!(theirs.is_empty(), "{krate} is quiet: {theirs:#?}");
    }
}
