use super::*;
use crate::images::ImageActor;
use crate::model::{ImageDigest, Role};

fn image(path: &str, sha: Option<&str>) -> ProgramImage {
    ProgramImage {
        path: path.into(),
        kind: ImageKind::Exec,
        digest: Some(match sha {
            Some(s) => ImageDigest::Hashed {
                sha256: s.repeat(64),
                size: 1,
            },
            None => ImageDigest::Changed { detail: "x".into() },
        }),
        actors: [ImageActor {
            role: Role::Cargo,
            krate: None,
            version: None,
        }]
        .into_iter()
        .collect(),
        runs: 1,
    }
}

const V: &str = "rustc 1.95.0 (29483883e 2026-11-01)";

fn observed(cc: &str) -> Observed {
    let images = [
        image("/home/u/.rustup/toolchains/stable/bin/rustc", Some("a")),
        image("/home/u/.cargo/bin/cargo", Some("b")),
        image("/usr/bin/x86_64-linux-gnu-gcc-12", Some(cc)),
        image("/usr/bin/ld.bfd", Some("d")),
        image("/usr/bin/uname", Some("e")),
        image("/tmp/x/build-script-build", Some("f")),
        image("/usr/bin/as", None),
    ];
    observe(&images, Some(Path::new("/home/u")), Some(V.to_owned()))
}

#[test]
fn only_toolchain_programs_are_recorded_home_as_tilde() {
    let o = observed("c");
    assert_eq!(
        o.programs.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "/usr/bin/ld.bfd",
            "/usr/bin/x86_64-linux-gnu-gcc-12",
            "~/.cargo/bin/cargo",
            "~/.rustup/toolchains/stable/bin/rustc",
        ]
    );
    assert_eq!(o.unhashed.len(), 1);
}

#[test]
fn learn_then_check_round_trips_through_the_file() {
    let recorded = learn(Recorded::default(), &observed("c"));
    let text = render(&recorded);
    let back = parse(&text, Path::new("toolchain.toml")).expect("parses");
    assert_eq!(back, recorded);
    let (findings, notes) = check(&back, &observed("c"), Severity::Error);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(notes.len(), 1, "{notes:?}"); // the unhashed `as`
    // The same version's cc with another digest.
    let (findings, _) = check(&back, &observed("9"), Severity::Error);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, Code::ToolchainChanged);
    assert_eq!(findings[0].subject, "/usr/bin/x86_64-linux-gnu-gcc-12");
    assert!(findings[0].detail.contains(V));
}

#[test]
fn a_new_version_is_a_note_not_a_finding() {
    let recorded = learn(Recorded::default(), &observed("c"));
    let mut other = observed("9");
    other.version = Some("rustc 1.96.0 (0 2027-01-01)".into());
    let (findings, notes) = check(&recorded, &other, Severity::Error);
    assert!(findings.is_empty());
    assert!(
        notes[0].starts_with("toolchain version changed"),
        "{notes:?}"
    );
    // learn adds the new version beside the old one.
    let both = learn(recorded, &other);
    assert_eq!(both.toolchains.len(), 2);
}

#[test]
fn malformed_files_name_file_line_and_column() {
    let p = Path::new(".buildwatch/toolchain.toml");
    let cases = [
        (
            "version = 1\n[toolchain.\"v\".programs]\n\"/usr/bin/cc\" = \"xyz\"\n",
            3,
            "not a SHA-256",
        ),
        ("version = 2\n", 1, "not supported"),
        (
            "version = 1\n[toolchain.\"v\"]\nprogram = {}\n",
            3,
            "unknown field",
        ),
        ("version = 1\n[toolchain\n", 2, ""),
    ];
    for (text, line, what) in cases {
        let e = parse(text, p).expect_err(text).to_string();
        assert!(
            e.starts_with(&format!(".buildwatch/toolchain.toml:{line}:")) && e.contains(what),
            "{text:?}: {e}"
        );
    }
    assert!(
        load(Path::new("/nonexistent/toolchain.toml"))
            .expect("absent is fine")
            .is_none()
    );
}

#[test]
fn the_sysroot_rustc_reports_its_version() {
    // The rustc this test was built with, through its sysroot, as this user.
    let Ok(out) = std::process::Command::new("rustc")
        .arg("--print")
        .arg("sysroot")
        .output()
    else {
        return;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let version = rustc_version(&format!("{sysroot}/bin/rustc"), None).expect("a version");
    assert!(version.starts_with("rustc 1."), "{version}");
    assert_eq!(rustc_version("/nonexistent/rustc", None), None);
}
