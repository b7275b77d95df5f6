//! Planted programs and files: each hostile crate of `tests/fixtures/planted` plants something
//! that changes what runs later (a dropped program, the application's sources, another crate's
//! archive, the CI job's environment, editor tasks) or reads the project (its `.git`), and each
//! test proves the trick really happened (the program ran, the file changed, the final binary
//! took the trojan) and that `buildwatch ci` with the default policy failed on it, naming the
//! crate, version and role exactly, in the JSON report, SARIF, the Markdown summary and the
//! plain summary. The benign crates (a compile-and-run probe in OUT_DIR, a -sys crate linking its
//! own OUT_DIR archive) stay quiet.
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

/// The codes this fixture's tricks must produce.
const CODES: [&str; 5] = [
    "dropped-exec",
    "source-tamper",
    "artifact-tamper",
    "project-read",
    "persistence-write",
];

struct Build {
    out: Output,
    report: Value,
    sarif: Value,
    summary: String,
    /// The workspace (canonical: the kernel reports resolved paths).
    ws: PathBuf,
    home: PathBuf,
}

impl Build {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn findings(&self, code: &str, krate: &str) -> Vec<&Value> {
        self.report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["code"] == code && f["crate"]["name"] == krate)
            .collect()
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
        let all = self.findings(code, krate);
        let found = all
            .iter()
            .find(|f| subject(f["subject"].as_str().unwrap_or_default()))
            .unwrap_or_else(|| {
                panic!(
                    "no matching {code} finding on {krate}; its findings: {all:#?}\nall: {:#}\n{}",
                    self.report["findings"],
                    self.stderr()
                )
            });
        assert_eq!(found["crate"]["version"], VERSION, "{found:#}");
        assert_eq!(found["role"], role, "{found:#}");
        assert_eq!(found["severity"], "error", "fails ci by default: {found:#}");
        assert_eq!(found["exact"], true, "{found:#}");
        assert_eq!(
            found["candidates"].as_array().map_or(0, Vec::len),
            0,
            "{found:#}"
        );
        found
    }

    fn ws(&self, rel: &str) -> String {
        self.ws.join(rel).display().to_string()
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
        let dir = fresh_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("planted"));
        copy_fixture("planted", &dir);
        let ws = dir.join("ws").canonicalize().expect("workspace");
        // The project's repository: what gitpeek goes looking for.
        std::fs::create_dir_all(ws.join(".git")).expect("mkdir .git");
        std::fs::write(
            ws.join(".git/config"),
            "[remote \"origin\"]\n\turl = https://example.invalid/planted-secret.git\n",
        )
        .expect("write .git/config");
        std::fs::write(ws.join(".git/HEAD"), "ref: refs/heads/main\n").expect("write HEAD");
        // The throwaway HOME, armed.
        let home = fresh_dir(Path::new("/tmp/buildwatch-planted-home"));
        std::fs::write(home.join(".buildwatch-planted"), "armed\n").expect("marker");
        let github_env = home.join("github_env");
        std::fs::write(&github_env, "").expect("github_env");
        let path = |name: &str| dir.join(name).display().to_string();
        let (report, sarif, summary, events, profiles) = (
            path("report.json"),
            path("report.sarif"),
            path("summary.md"),
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
            "--summary",
            &summary,
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
            ("GITHUB_ENV", github_env.display().to_string()),
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
        let sarif_value = read_report(Path::new(&sarif));
        let summary_text = std::fs::read_to_string(&summary).expect("summary");
        Build {
            out,
            report: report_value,
            sarif: sarif_value,
            summary: summary_text,
            ws,
            home,
        }
    })
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_planted_build_fails_ci_with_exit_3() {
    let b = build();
    assert_eq!(b.out.status.code(), Some(3), "{}", b.stderr());
    assert_eq!(b.report["lost_events"], 0, "no events lost");
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_dropped_program_and_a_dropped_script_that_ran() {
    let b = build();
    assert!(
        b.home.join("dropped-binary-ran").exists(),
        "the dropped binary ran"
    );
    assert!(
        b.home.join("dropped-script-ran").exists(),
        "the dropped script ran"
    );
    let bin = b.finding("dropped-exec", "dropper", "build-script", |s| {
        s.contains("/bw-dropper-") && s.ends_with("/rust-setup")
    });
    assert!(
        bin["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("build-script of dropper 0.1.0"),
        "the detail names the writer: {bin:#}"
    );
    b.finding("dropped-exec", "dropper", "build-script", |s| {
        s.contains("/bw-dropper-") && s.ends_with("/setup.sh")
    });
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn writing_the_applications_sources() {
    let b = build();
    let planted = b.ws("app/src/planted.rs");
    assert!(Path::new(&planted).exists(), "the source file was planted");
    let f = b.finding("source-tamper", "src-writer", "build-script", |s| {
        s == planted
    });
    assert!(
        f["detail"].as_str().unwrap_or_default().contains("source"),
        "{f:#}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn swapping_another_crates_archive_reaches_the_final_binary() {
    let b = build();
    let run = Command::new(b.ws.join("target/debug/app"))
        .output()
        .expect("run app");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "victim_value=666",
        "the final link took the trojan archive"
    );
    let victim_build = b.ws("target/debug/build/victim-sys-");
    b.finding("artifact-tamper", "artifact-writer", "build-script", |s| {
        s.starts_with(&victim_build) && s.ends_with("/out/libvictim.a")
    });
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn appending_to_the_ci_jobs_environment() {
    let b = build();
    let github_env = b.home.join("github_env");
    let text = std::fs::read_to_string(&github_env).expect("github_env");
    assert!(
        text.contains("BW_PLANTED_BY_CI_ENV=1"),
        "the variable was appended"
    );
    let path = github_env.display().to_string();
    let f = b.finding("persistence-write", "ci-env", "build-script", |s| s == path);
    assert!(
        f["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ci-channel"),
        "{f:#}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn planting_editor_tasks() {
    let b = build();
    let user = b.home.join(".config/Code/User/tasks.json");
    let folder = b.ws.join(".vscode/tasks.json");
    for (path, what) in [(&user, "user"), (&folder, "folder")] {
        assert!(path.exists(), "the {what} task was planted");
        let path = path.display().to_string();
        let f = b.finding("persistence-write", "editor-plant", "build-script", |s| {
            s == path
        });
        assert!(
            f["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("(editor)"),
            "{f:#}"
        );
    }
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn a_dependency_reading_the_projects_git() {
    let b = build();
    let peeked = std::fs::read_dir(b.ws.join("target/debug/build"))
        .expect("build dir")
        .flatten()
        .map(|e| e.path().join("out/peeked"))
        .find(|p| p.exists())
        .expect("gitpeek copied what it read");
    let text = std::fs::read_to_string(peeked).expect("peeked");
    assert!(
        text.contains("planted-secret.git"),
        "it read the remote: {text}"
    );
    let config = b.ws(".git/config");
    let head = b.ws(".git/HEAD");
    b.finding("project-read", "gitpeek", "build-script", |s| s == config);
    b.finding("project-read", "gitpeek", "build-script", |s| s == head);
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn the_benign_crates_stay_quiet() {
    let b = build();
    let probe = std::fs::read_dir(b.ws.join("target/debug/build"))
        .expect("build dir")
        .flatten()
        .map(|e| e.path().join("out/probe.txt"))
        .find(|p| p.exists())
        .expect("the probe ran");
    assert!(
        !std::fs::read_to_string(probe)
            .unwrap_or_default()
            .trim()
            .is_empty()
    );
    for krate in ["probe", "victim-sys", "app"] {
        let theirs: Vec<&Value> = b.report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["crate"]["name"] == krate)
            .collect();
        assert!(theirs.is_empty(), "{krate} is quiet: {theirs:#?}");
    }
    // No crate gets a catch-all finding: the ones without a profile are listed instead.
    let codes: Vec<&str> = b.report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(!codes.contains(&"no-profile"), "{codes:?}");
    let unprofiled = b.report["unprofiled"].as_array().expect("unprofiled list");
    assert!(
        unprofiled
            .iter()
            .any(|c| c["name"] == "probe" && c["role"] == "build-script"),
        "{unprofiled:#?}"
    );
}

#[test]
#[ignore = "privileged: run with cargo xtask test"]
fn every_report_format_names_code_and_crate() {
    let b = build();
    let rules: Vec<&str> = b.sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    let results = b.sarif["runs"][0]["results"].as_array().expect("results");
    let stderr = b.stderr();
    for (code, krate) in [
        ("dropped-exec", "dropper"),
        ("source-tamper", "src-writer"),
        ("artifact-tamper", "artifact-writer"),
        ("project-read", "gitpeek"),
        ("persistence-write", "ci-env"),
        ("persistence-write", "editor-plant"),
    ] {
        assert!(CODES.contains(&code));
        assert!(rules.contains(&code), "SARIF rule {code}: {rules:?}");
        assert!(
            results.iter().any(|r| r["ruleId"] == code
                && r["level"] == "error"
                && r["message"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(krate)),
            "SARIF result {code} on {krate}"
        );
        assert!(
            b.summary
                .lines()
                .any(|l| l.contains(code) && l.contains(krate)),
            "Markdown summary {code} on {krate}:\n{}",
            b.summary
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!("ERROR {code}: {krate} {VERSION}"))),
            "plain summary {code} on {krate}:\n{stderr}"
        );
    }
}
