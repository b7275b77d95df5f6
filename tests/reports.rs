//! The reports of a real run, end to end through the binary: `buildwatch replay` of the hostile
//! stream the real sensor recorded (tests/fixtures/streams), in a directory holding the fixture's
//! Cargo.lock and a profile for one crate. The SARIF must be valid against the official schema
//! and point where docs/reports.md says. No privileges needed.
mod support;

use std::{collections::BTreeSet, path::Path};

use serde_json::Value;
use support::{buildwatch_in, read_report, repo};

const PROFILE: &str = r#"schema = 1
crate = "keyscan"

[build-script]
read = ["/nonexistent/keyscan.conf"]
"#;

struct Reports {
    dir: tempfile::TempDir,
    json: Value,
    sarif: Value,
    markdown: String,
}

fn replay_hostile() -> Reports {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo().join("tests/fixtures/hostile/Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .expect("copy Cargo.lock");
    std::fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
    std::fs::write(dir.path().join("profiles/keyscan.toml"), PROFILE).expect("profile");
    let stream = repo().join("tests/fixtures/streams/attribution-hostile.jsonl.gz");
    let stream = stream.display().to_string();
    let out = buildwatch_in(
        dir.path(),
        &[
            "replay",
            &stream,
            "--profiles",
            "profiles",
            "--report",
            "out.json",
            "--sarif",
            "out.sarif",
            "--summary",
            "out.md",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| {
        std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let sarif = serde_json::from_str(&read("out.sarif")).expect("SARIF is JSON");
    Reports {
        json: read_report(&dir.path().join("out.json")),
        sarif,
        markdown: read("out.md"),
        dir,
    }
}

fn schema_errors(sarif: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/sarif/sarif-schema-2.1.0.json"))
            .expect("schema"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles");
    validator
        .iter_errors(sarif)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The canonical `file://` URI of a file in `dir` (what buildwatch writes, symlinks resolved).
fn file_uri(dir: &Path, name: &str) -> String {
    let path = dir.canonicalize().expect("canonical").join(name);
    format!("file://{}", path.display())
}

#[test]
fn replayed_run_sarif_is_valid_and_located() {
    let r = replay_hostile();
    let errors = schema_errors(&r.sarif);
    assert!(
        errors.is_empty(),
        "not valid SARIF 2.1.0:\n{}",
        errors.join("\n")
    );

    let results = r.sarif["runs"][0]["results"].as_array().expect("results");
    let findings = r.json["findings"].as_array().expect("findings");
    assert_eq!(results.len(), findings.len(), "one result per finding");
    assert!(
        results.iter().any(|x| x["ruleId"] == "unexpected-network"),
        "the hostile stream connects out"
    );
    let lock = file_uri(r.dir.path(), "Cargo.lock");
    let profile = file_uri(r.dir.path(), "profiles/keyscan.toml");
    let lockfile = std::fs::read_to_string(r.dir.path().join("Cargo.lock")).expect("lock");
    let mut hashes = BTreeSet::new();
    for x in results {
        let physical = &x["locations"][0]["physicalLocation"];
        let uri = text(&physical["artifactLocation"]["uri"]);
        let line = physical["region"]["startLine"].as_u64().expect("startLine") as usize;
        let name = text(&x["properties"]["crate"]);
        let version = text(&x["properties"]["version"]);
        if name == "keyscan" {
            // The crate with a profile: located in it, at its `[build-script]` table (line 4) or
            // the allow entry that matched nothing (line 5).
            assert_eq!(uri, profile, "{x}");
            let expected = if x["ruleId"] == "unused-allow" { 5 } else { 4 };
            assert_eq!(line, expected, "{x}");
        } else if !name.is_empty() {
            // The others: their `version = ` line in Cargo.lock.
            assert_eq!(uri, lock, "{x}");
            let at = lockfile.lines().nth(line - 1).unwrap_or_default();
            assert_eq!(at, format!("version = \"{version}\""), "{x}");
            let above = lockfile.lines().nth(line - 2).unwrap_or_default();
            assert_eq!(above, format!("name = \"{name}\""), "{x}");
            assert!(
                text(&x["message"]["text"]).starts_with(&format!("{name} {version} (")),
                "{x}"
            );
        }
        assert!(
            hashes.insert(text(&x["partialFingerprints"]["primaryLocationLineHash"]).to_owned()),
            "fingerprints are unique: {x}"
        );
    }
    assert!(
        results.iter().any(|x| x["ruleId"] == "unused-allow"),
        "the keyscan profile's entry matched nothing"
    );
}

#[test]
fn replayed_run_json_and_markdown() {
    let r = replay_hostile();
    assert_eq!(r.json["schema"], 1);
    assert!(
        r.json["exit_status"].is_null(),
        "a replay has no exit status"
    );
    let crates = r.json["crates"].as_array().expect("crates");
    let netprobe = crates
        .iter()
        .find(|c| c["name"] == "netprobe")
        .expect("netprobe");
    assert_eq!(netprobe["version"], "0.3.1");
    assert_eq!(
        netprobe["roles"],
        serde_json::json!(["rustc", "build-script"])
    );
    assert!(
        netprobe["network"]
            .as_array()
            .expect("network")
            .iter()
            .any(|n| text(n).starts_with("127.0.0.1:"))
    );
    assert!(
        r.markdown.starts_with("## buildwatch: ❌ "),
        "{}",
        r.markdown
    );
    assert!(
        r.markdown
            .contains("| ❌ error | `unexpected-network` | `netprobe 0.3.1` |")
    );
    assert!(
        r.markdown
            .contains("<details><summary>Build scripts and proc-macros")
    );
}
