use super::*;
use crate::images::{ImageActor, ProgramImage};
use crate::model::{ImageDigest, Role};

fn run() -> RunReport {
    let images = vec![ProgramImage {
        path: "/w/target/debug/build/x-1/build-script-build".into(),
        kind: ImageKind::Exec,
        digest: Some(ImageDigest::Hashed {
            sha256: "ab".repeat(32),
            size: 9,
        }),
        actors: [ImageActor {
            role: Role::BuildScript,
            krate: Some("x".into()),
            version: Some("1.0.0".into()),
        }]
        .into_iter()
        .collect(),
        runs: 1,
    }];
    RunReport {
        images,
        evidence: crate::images::RunEvidence {
            span: Some((1_796_601_600_000_000_000, 1_796_601_661_000_000_000)),
            ..Default::default()
        },
        ..RunReport::default()
    }
}

fn meta() -> RunMeta {
    RunMeta {
        command: vec!["cargo".into(), "build".into(), "--release".into()],
        exit_status: Some(0),
        user: Some("dev".into()),
    }
}

#[test]
fn timestamps_are_rfc3339_utc() {
    assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    assert_eq!(timestamp(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
    assert_eq!(timestamp(1_796_601_661_000_000_000), "2026-12-07T00:01:01Z");
}

#[test]
fn artifact_dirs_follow_the_command_line_when_rustc_did_not_run() {
    let ctx = AttestationContext {
        working_dir: Some("/w".into()),
        ..AttestationContext::default()
    };
    assert_eq!(
        artifact_dirs(&run(), &meta(), &ctx),
        [PathBuf::from("/w/target/release")]
    );
    let meta = RunMeta {
        command: [
            "cargo",
            "build",
            "--profile",
            "dev",
            "--target",
            "x86_64-unknown-linux-musl",
        ]
        .map(String::from)
        .to_vec(),
        ..RunMeta::default()
    };
    assert_eq!(
        artifact_dirs(&run(), &meta, &ctx),
        [PathBuf::from("/w/target/x86_64-unknown-linux-musl/debug")]
    );
    let mut with_rustc = run();
    with_rustc
        .evidence
        .output_dirs
        .insert("/t/release".to_owned());
    assert_eq!(
        artifact_dirs(&with_rustc, &meta, &ctx),
        [PathBuf::from("/t/release")]
    );
}

#[test]
fn statement_subjects_are_the_artifacts_with_their_digests() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("target/release");
    std::fs::create_dir_all(profile.join("deps")).expect("mkdir");
    std::fs::write(profile.join("app"), b"abc").expect("write");
    std::fs::set_permissions(profile.join("app"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::write(profile.join("libapp.rlib"), b"abc").expect("write");
    std::fs::write(profile.join("app.d"), b"deps").expect("write");
    std::fs::write(profile.join(".cargo-lock"), b"").expect("write");
    let ctx = AttestationContext {
        working_dir: Some(dir.path().to_owned()),
        ..AttestationContext::default()
    };
    let s = statement(&run(), &meta(), &ctx, &["sched_process_exec"]).expect("statement");
    assert_eq!(s["_type"], STATEMENT_TYPE);
    assert_eq!(s["predicateType"], PREDICATE_TYPE);
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(
        s["subject"],
        json!([
            {"name": "target/release/app", "digest": {"sha256": abc}},
            {"name": "target/release/libapp.rlib", "digest": {"sha256": abc}},
        ])
    );
    let p = &s["predicate"];
    assert_eq!(
        p["monitor"]["tracePolicy"]["hooks"],
        json!(["sched_process_exec"])
    );
    assert_eq!(p["monitoredProcess"]["event"], "cargo build --release");
    assert_eq!(
        p["monitorLog"]["process"][0]["digest"]["sha256"],
        "ab".repeat(32)
    );
    assert_eq!(p["monitorLog"]["process"][0]["actors"][0]["crate"], "x");
    assert_eq!(p["metadata"]["buildStartedOn"], "2026-12-07T00:00:00Z");
    // Nothing built: no statement (in-toto requires a subject).
    std::fs::remove_dir_all(&profile).expect("rm");
    assert!(matches!(
        statement(&run(), &meta(), &ctx, &[]),
        Err(AttestationError::NoSubject(_))
    ));
}

#[test]
fn github_actions_names_the_run_attempt() {
    let ctx = AttestationContext {
        env: [
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into_iter()
        .collect(),
        ..AttestationContext::default()
    };
    let p = monitored_process(&meta(), &ctx);
    assert_eq!(p["hostID"], "https://github.com");
    assert_eq!(
        p["event"],
        "https://github.com/o/r/actions/runs/42/attempts/2"
    );
}

#[test]
fn envelope_signature_verifies_over_the_pae() {
    use ed25519_dalek::Verifier as _;
    let key = SigningKey::from_bytes(&[7; 32]);
    let env = envelope(b"{}", &key);
    assert_eq!(env["payloadType"], PAYLOAD_TYPE);
    assert_eq!(env["payload"], "e30=");
    let sig = STANDARD
        .decode(env["signatures"][0]["sig"].as_str().expect("sig"))
        .expect("base64");
    let sig = ed25519_dalek::Signature::from_slice(&sig).expect("64 bytes");
    assert_eq!(
        pae(PAYLOAD_TYPE, b"{}"),
        b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    );
    key.verifying_key()
        .verify(&pae(PAYLOAD_TYPE, b"{}"), &sig)
        .expect("verifies");
    assert!(key.verifying_key().verify(b"other", &sig).is_err());
}

#[test]
fn a_bad_key_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("key.pem");
    std::fs::write(&path, "not a key").expect("write");
    let e = load_key(&path).expect_err("rejected").to_string();
    assert!(e.contains("key.pem") && e.contains("PKCS#8"), "{e}");
}
