use std::path::Path;

use super::*;
use crate::profile::{parse, parse_builtin};

/// A package of the hand-made metadata: `kinds` are its targets' kinds.
fn package(name: &str, version: &str, source: Option<&str>, kinds: &[&str]) -> serde_json::Value {
    let id = format!("{name} {version}");
    let targets: Vec<serde_json::Value> = kinds
        .iter()
        .map(|k| {
            serde_json::json!({
                "name": if *k == "custom-build" { "build-script-build".to_owned() } else { name.replace('-', "_") },
                "kind": [k],
                "crate_types": [if *k == "proc-macro" { "proc-macro" } else { "bin" }],
                "src_path": format!("/src/{name}/src/lib.rs"),
                "edition": "2021",
            })
        })
        .collect();
    serde_json::json!({
        "name": name,
        "version": version,
        "id": id,
        "source": source,
        "dependencies": [],
        "targets": targets,
        "features": {},
        "manifest_path": format!("/src/{name}/Cargo.toml"),
    })
}

const CRATES_IO: Option<&str> = Some("registry+https://github.com/rust-lang/crates.io-index");

/// `app` (a workspace member with a build script) depends on serde_derive, libz-sys and
/// foo-sys (whose build-dependency is cc), and dev-depends on mockall_derive; the graph also
/// holds a git proc-macro and a path crate.
fn metadata() -> Metadata {
    let dep = |pkg: &str, kinds: &[Option<&str>]| {
        serde_json::json!({
            "name": pkg.split(' ').next(),
            "pkg": pkg,
            "dep_kinds": kinds.iter().map(|k| serde_json::json!({"kind": k, "target": null})).collect::<Vec<_>>(),
        })
    };
    let node = |id: &str, deps: Vec<serde_json::Value>| serde_json::json!({"id": id, "deps": deps, "dependencies": [], "features": []});
    let json = serde_json::json!({
        "packages": [
            package("app", "0.1.0", None, &["bin", "custom-build"]),
            package("serde_derive", "1.0.228", CRATES_IO, &["proc-macro"]),
            package("libz-sys", "1.1.20", CRATES_IO, &["lib", "custom-build"]),
            package("foo-sys", "0.3.0", CRATES_IO, &["lib", "custom-build"]),
            package("cc", "1.2.0", CRATES_IO, &["lib"]),
            package("mockall_derive", "0.13.1", CRATES_IO, &["proc-macro"]),
            package("gitmacro", "0.1.0", Some("git+https://example.org/gitmacro#0123"), &["proc-macro"]),
            package("local-build", "0.2.0", None, &["lib", "custom-build"]),
            package("unused-sys", "1.0.0", CRATES_IO, &["lib", "custom-build"]),
        ],
        "workspace_members": ["app 0.1.0"],
        "resolve": {
            "root": "app 0.1.0",
            "nodes": [
                node("app 0.1.0", vec![
                    dep("serde_derive 1.0.228", &[None]),
                    dep("libz-sys 1.1.20", &[None]),
                    dep("foo-sys 0.3.0", &[None]),
                    dep("mockall_derive 0.13.1", &[Some("dev")]),
                    dep("gitmacro 0.1.0", &[None]),
                    dep("local-build 0.2.0", &[Some("build")]),
                ]),
                node("serde_derive 1.0.228", vec![]),
                node("libz-sys 1.1.20", vec![dep("cc 1.2.0", &[Some("build")])]),
                node("foo-sys 0.3.0", vec![dep("cc 1.2.0", &[Some("build")])]),
                node("cc 1.2.0", vec![]),
                node("mockall_derive 0.13.1", vec![]),
                node("gitmacro 0.1.0", vec![]),
                node("local-build 0.2.0", vec![]),
            ],
        },
        "workspace_root": "/w",
        "target_directory": "/w/target",
        "version": 1,
    });
    serde_json::from_value(json).expect("hand-made metadata parses")
}

/// x86_64 Linux, as far as the tests' `[target]` declarations ask.
fn linux() -> Target {
    Target {
        triple: "x86_64-unknown-linux-gnu".to_owned(),
        cfg: ["unix", "target_os=\"linux\"", "target_arch=\"x86_64\""]
            .iter()
            .map(|c| c.parse().expect("cfg"))
            .collect(),
    }
}

fn profiles() -> ProfileSet {
    let user = vec![
        parse(
            "schema = 1\ncrate = \"serde_derive\"\n[proc-macro]\n",
            Path::new(".buildwatch/profiles/serde_derive.toml"),
        )
        .expect("user profile"),
        // The user's foo-sys profile is for 0.2 only, and replaces the shipped one.
        parse(
            "schema = 1\ncrate = \"foo_sys\"\nversions = \"~0.2\"\n[build-script]\n",
            Path::new(".buildwatch/profiles/foo_sys.toml"),
        )
        .expect("user profile"),
    ];
    let shipped = vec![
        parse_builtin(
            "schema = 1\ncrate = \"serde_derive\"\nversions = \"^1\"\n",
            "profiles/serde_derive.toml",
        )
        .expect("shipped"),
        parse_builtin(
            "schema = 1\ncrate = \"libz-sys\"\nversions = \"^1\"\n",
            "profiles/libz-sys.toml",
        )
        .expect("shipped"),
        parse_builtin(
            "schema = 1\ncrate = \"foo-sys\"\nversions = \"^0.3\"\n",
            "profiles/foo-sys.toml",
        )
        .expect("shipped"),
        parse_builtin(
            "schema = 1\ncrate = \"mockall_derive\"\nversions = \"~0.12\"\n",
            "profiles/mockall_derive.toml",
        )
        .expect("shipped"),
    ];
    ProfileSet::new(user, shipped)
}

fn entry<'e>(entries: &'e [Entry], name: &str) -> &'e Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not listed: {entries:#?}"))
}

#[test]
fn lists_the_crates_that_run_code_at_build_time() {
    let entries = survey(&metadata(), &linux(), &profiles());
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    // cc runs no code of its own (it is a library of build scripts); unused-sys is not in the
    // resolve (nothing enabled it).
    assert_eq!(
        names,
        [
            "app",
            "foo-sys",
            "gitmacro",
            "libz-sys",
            "local-build",
            "mockall_derive",
            "serde_derive"
        ]
    );
    assert_eq!(entry(&entries, "app").roles, [Role::BuildScript]);
    assert_eq!(entry(&entries, "app").source, Source::Workspace);
    assert_eq!(entry(&entries, "serde_derive").roles, [Role::ProcMacro]);
    assert_eq!(entry(&entries, "gitmacro").source, Source::Git);
    assert_eq!(entry(&entries, "local-build").source, Source::Path);
    assert_eq!(entry(&entries, "libz-sys").source, Source::Registry);
}

#[test]
fn says_which_profile_covers_each_version() {
    let entries = survey(&metadata(), &linux(), &profiles());
    // The user's profile wins over the shipped one.
    assert_eq!(
        entry(&entries, "serde_derive").coverage,
        Coverage::Covered {
            origin: Origin::User,
            profile: ".buildwatch/profiles/serde_derive.toml".to_owned()
        }
    );
    assert_eq!(
        entry(&entries, "libz-sys").coverage,
        Coverage::Covered {
            origin: Origin::Shipped,
            profile: "profiles/libz-sys.toml".to_owned()
        }
    );
    // A user profile for other versions still replaces the shipped one that would cover it,
    // as in a run.
    assert_eq!(
        entry(&entries, "foo-sys").coverage,
        Coverage::OtherVersions {
            origin: Origin::User,
            profile: ".buildwatch/profiles/foo_sys.toml".to_owned(),
            versions: vec!["~0.2".to_owned()],
        }
    );
    assert_eq!(
        entry(&entries, "mockall_derive").coverage,
        Coverage::OtherVersions {
            origin: Origin::Shipped,
            profile: "profiles/mockall_derive.toml".to_owned(),
            versions: vec!["~0.12".to_owned()],
        }
    );
    assert_eq!(entry(&entries, "app").coverage, Coverage::None);
    assert_eq!(
        Totals::of(&entries),
        Totals {
            crates: 7,
            user: 1,
            shipped: 1,
            other_versions: 2,
            none: 3,
        }
    );
}

#[test]
fn dev_dependencies_are_test_only() {
    let entries = survey(&metadata(), &linux(), &profiles());
    assert!(entry(&entries, "mockall_derive").test_only);
    assert!(!entry(&entries, "serde_derive").test_only);
    // A build-dependency is built by `cargo build`.
    assert!(!entry(&entries, "local-build").test_only);
}

#[test]
fn outputs() {
    let entries = survey(&metadata(), &linux(), &profiles());
    let text = output::text(&entries);
    assert!(text.starts_with("CRATE "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("libz-sys ") && l.ends_with("shipped profiles/libz-sys.toml")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("app ") && l.contains("build-script (workspace)")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("mockall_derive ") && l.contains("(tests only)")),
        "{text}"
    );
    assert!(
        text.contains("7 crates run code at build time: 1 covered by your profiles, 1 by shipped"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&output::json(&entries)).expect("JSON");
    let libz = &json["crates"]
        .as_array()
        .expect("crates")
        .iter()
        .find(|c| c["name"] == "libz-sys")
        .expect("libz-sys");
    assert_eq!(libz["version"], "1.1.20");
    assert_eq!(libz["roles"], serde_json::json!(["build-script"]));
    assert_eq!(libz["source"], "registry");
    assert_eq!(libz["test_only"], false);
    assert_eq!(
        libz["coverage"],
        serde_json::json!({"status": "covered", "origin": "shipped", "profile": "profiles/libz-sys.toml"})
    );
    assert_eq!(json["totals"]["none"], 3);
}

#[test]
fn no_resolve_lists_nothing() {
    let mut m = metadata();
    m.resolve = None;
    assert!(survey(&m, &linux(), &profiles()).is_empty());
}

/// `app` depends on `tz`, whose feature `alloc` (enabled) names its optional dependency
/// `fmt-derive` only weakly (and which pins fmt-derive's version with a declaration for no
/// platform, and dev-depends on it), and whose feature `clock` (enabled) enables `clock-sys`;
/// `cargo metadata` lists both edges.
fn weak_metadata() -> Metadata {
    let mut app = package("app", "0.1.0", None, &["bin"]);
    app["dependencies"] = serde_json::json!([
        {"name": "tz", "req": "^1", "kind": null, "optional": false, "uses_default_features": true, "features": [], "target": null, "rename": null, "registry": null, "source": null},
    ]);
    let mut tz = package("tz", "1.0.0", CRATES_IO, &["lib"]);
    let optional = |name: &str| serde_json::json!({"name": name, "req": "^1", "kind": null, "optional": true, "uses_default_features": true, "features": [], "target": null, "rename": null, "registry": null, "source": null});
    // Its version pinned the way serde and jiff do it: for a platform that matches nothing.
    let mut pin = optional("fmt-derive");
    pin["optional"] = false.into();
    pin["target"] = "cfg(any())".into();
    // And its own tests use fmt-derive: never built for app.
    let mut tests = optional("fmt-derive");
    tests["optional"] = false.into();
    tests["kind"] = "dev".into();
    tz["dependencies"] =
        serde_json::json!([optional("fmt-derive"), optional("clock-sys"), pin, tests]);
    tz["features"] = serde_json::json!({
        "alloc": ["fmt-derive?/alloc"],
        "clock": ["dep:clock-sys"],
        "fmt": ["dep:fmt-derive"],
    });
    let dep = |pkg: &str| serde_json::json!({"name": pkg.split(' ').next(), "pkg": pkg, "dep_kinds": [{"kind": null, "target": null}]});
    let json = serde_json::json!({
        "packages": [
            app,
            tz,
            package("fmt-derive", "1.0.0", CRATES_IO, &["proc-macro"]),
            package("clock-sys", "1.0.0", CRATES_IO, &["lib", "custom-build"]),
        ],
        "workspace_members": ["app 0.1.0"],
        "resolve": {
            "root": "app 0.1.0",
            "nodes": [
                {"id": "app 0.1.0", "deps": [dep("tz 1.0.0")], "dependencies": [], "features": []},
                {"id": "tz 1.0.0", "deps": [dep("fmt-derive 1.0.0"), dep("clock-sys 1.0.0")], "dependencies": [], "features": ["alloc", "clock"]},
                {"id": "fmt-derive 1.0.0", "deps": [], "dependencies": [], "features": []},
                {"id": "clock-sys 1.0.0", "deps": [], "dependencies": [], "features": []},
            ],
        },
        "workspace_root": "/w",
        "target_directory": "/w/target",
        "version": 1,
    });
    serde_json::from_value(json).expect("hand-made metadata parses")
}

#[test]
fn an_optional_dependency_named_only_weakly_is_not_built() {
    let names = |m: &Metadata| -> Vec<String> {
        survey(m, &linux(), &profiles())
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(names(&weak_metadata()), ["clock-sys"]);
    // Once a feature enables it for real, it is built.
    let mut m = weak_metadata();
    if let Some(resolve) = &mut m.resolve {
        resolve.nodes[1]
            .features
            .push(cargo_metadata::FeatureName::new("fmt".to_owned()));
    }
    assert_eq!(names(&m), ["clock-sys", "fmt-derive"]);
}
