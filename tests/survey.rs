//! `buildwatch profiles` end to end, unprivileged: on a copy of a fixture workspace (with a build
//! script of its own added, and a user profile for one crate), it lists the crates that run code
//! at build time and which profile covers each, without building anything. Runs the real
//! `cargo metadata` (which may download the crates' manifests from crates.io).
mod support;

use std::path::Path;

use support::{bin, copy_fixture};

fn survey(dir: &Path, json: bool) -> std::process::Output {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("profiles")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--profiles")
        .arg(dir.join(".buildwatch/profiles"));
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run buildwatch profiles")
}

#[test]
fn lists_build_time_code_and_its_profiles_without_building() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("popular", dir.path());
    std::fs::write(dir.path().join("build.rs"), "fn main() {}\n").expect("build.rs");
    let profiles = dir.path().join(".buildwatch/profiles");
    std::fs::create_dir_all(&profiles).expect("profiles dir");
    std::fs::write(
        profiles.join("serde_derive.toml"),
        "schema = 1\ncrate = \"serde_derive\"\nversions = \"^1\"\n[proc-macro]\n",
    )
    .expect("user profile");
    // A profile for other versions replaces the shipped one all the same.
    std::fs::write(
        profiles.join("libz-sys.toml"),
        "schema = 1\ncrate = \"libz-sys\"\nversions = \"=0.1.0\"\n",
    )
    .expect("user profile");

    let out = survey(dir.path(), true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let crates = doc["crates"].as_array().expect("crates");
    let find = |name: &str| {
        crates
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {doc:#}"))
    };
    let serde_derive = find("serde_derive");
    assert_eq!(serde_derive["roles"], serde_json::json!(["proc-macro"]));
    assert_eq!(serde_derive["coverage"]["status"], "covered");
    assert_eq!(serde_derive["coverage"]["origin"], "user");
    let libz = find("libz-sys");
    assert_eq!(libz["roles"], serde_json::json!(["build-script"]));
    assert_eq!(libz["coverage"]["status"], "other-versions");
    assert_eq!(libz["coverage"]["versions"], serde_json::json!(["=0.1.0"]));
    let own = find("popular");
    assert_eq!(own["source"], "workspace");
    assert_eq!(own["coverage"]["status"], "none");
    // Everything else the fixture depends on has a shipped profile (the shipped-profiles test
    // builds it with zero findings).
    for c in crates {
        if ["serde_derive", "libz-sys", "popular"].contains(&c["name"].as_str().unwrap_or("")) {
            continue;
        }
        assert_eq!(c["coverage"]["origin"], "shipped", "{c:#}");
        assert_eq!(c["coverage"]["status"], "covered", "{c:#}");
        assert_eq!(c["source"], "registry", "{c:#}");
    }
    // Crates without build-time code (libc's dependants, cc) are not listed.
    assert!(!crates.iter().any(|c| c["name"] == "cc"), "{doc:#}");
    assert_eq!(doc["totals"]["user"], 1);
    assert_eq!(doc["totals"]["other_versions"], 1);
    assert_eq!(doc["totals"]["none"], 1);
    // Nothing was built.
    assert!(!dir.path().join("target").exists());

    let out = survey(dir.path(), false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("popular ")
            && l.contains("build-script (workspace)")
            && l.ends_with("NONE")),
        "{text}"
    );
    assert!(text.contains("crates run code at build time"), "{text}");
}

#[test]
fn a_bad_manifest_path_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = survey(dir.path(), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cargo metadata"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn features_decide_which_optional_dependencies_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture("popular", dir.path());
    // libsqlite3-sys becomes optional, behind a feature of the workspace's own (the lock file
    // stays as it is).
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let text = text.replace(
        "libsqlite3-sys = { version = \"0.30\", features = [\"bundled\"] }",
        "libsqlite3-sys = { version = \"0.30\", features = [\"bundled\"], optional = true }",
    ) + "\n[features]\nsqlite = [\"dep:libsqlite3-sys\"]\n";
    std::fs::write(&manifest, text).expect("manifest");
    let listed = |extra: &[&str]| -> bool {
        let out = std::process::Command::new(bin())
            .arg("profiles")
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--json")
            .args(extra)
            .output()
            .expect("run buildwatch profiles");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        doc["crates"]
            .as_array()
            .expect("crates")
            .iter()
            .any(|c| c["name"] == "libsqlite3-sys")
    };
    assert!(!listed(&[]));
    assert!(listed(&["--features", "sqlite"]));
    assert!(listed(&["--all-features"]));
}
