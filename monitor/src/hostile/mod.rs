//! The checks every hostile input must pass, shared by the fuzz targets (`fuzz/`, run by
//! `cargo xtask fuzz`) and the property tests of the normal suite, so that both exercise the same
//! paths with the same oracles. Each function takes raw bytes, runs one parser (and what runs on
//! its output) and panics only when an invariant breaks: rejecting the input is fine, panicking
//! on it or accepting something that does not survive its own round trip is not.
use std::{io::Write as _, path::Path, sync::OnceLock};

use crate::{
    decode::Decoder,
    model::Event,
    pipeline::{Pipeline, PipelineOptions},
    profile::{self, ProfileDoc, ProfileSet, RoleRules, RuleList, Vars},
    replay::{self, ReplayError},
    report::{RunMeta, Sources},
};

/// A profile file: parse; what parses compiles without problems, matches paths, and renders to
/// text that parses again into the same rules (what `learn` relies on when it extends a profile).
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The file name must be the crate's: take it from the text so that real profiles get in.
    let stem = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("crate")?.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty() && !s.contains(['/', '\0']) && *s != "." && *s != "..")
        .unwrap_or_else(|| "fuzz".to_owned());
    let path = Path::new("profiles").join(format!("{stem}.toml"));
    let parsed = match profile::parse(text, &path) {
        Ok(p) => p,
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            let _ = e.kind.help();
            return;
        }
    };
    for rules in [&parsed.build_script, &parsed.proc_macro]
        .into_iter()
        .flatten()
    {
        check_rules(rules);
    }
    let rendered = profile::render(&ProfileDoc::from_profile(&parsed));
    let again = profile::parse(&rendered, &path)
        .unwrap_or_else(|e| panic!("a rendered profile does not parse: {e}\n{rendered}"));
    assert_eq!(again.krate, parsed.krate);
    let versions = |p: &profile::Profile| {
        let mut v: Vec<String> = p.versions.iter().map(ToString::to_string).collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(versions(&again), versions(&parsed), "{rendered}");
    let texts = |r: &Option<RoleRules>| {
        r.as_ref().map(|r| {
            RuleList::ALL.map(|list| {
                let mut t: Vec<String> = r
                    .entries(list)
                    .into_iter()
                    .map(|(t, _)| t.to_owned())
                    .collect();
                t.sort();
                t.dedup();
                t
            })
        })
    };
    assert_eq!(texts(&again.build_script), texts(&parsed.build_script));
    assert_eq!(texts(&again.proc_macro), texts(&parsed.proc_macro));
}

fn check_rules(rules: &RoleRules) {
    let vars = Vars {
        out_dir: Some("/w/target/debug/build/x-0123456789abcdef/out".into()),
        manifest_dir: Some("/home/u/.cargo/registry/src/idx/x-1.0.0".into()),
        target_dir: Some("/w/target".into()),
        cargo_home: Some("/home/u/.cargo".into()),
        rustc_sysroot: Some("/home/u/.rustup/toolchains/stable".into()),
        home: Some("/home/u".into()),
        tmpdir: Some("/tmp".into()),
        workspace: Some("/w".into()),
    };
    let compiled = rules.compile(&vars);
    assert!(
        compiled.problems().is_empty(),
        "a parsed profile fails to compile: {:?}",
        compiled.problems()
    );
    for path in [
        "/home/u/.ssh/id_rsa",
        "/w/target/debug/build/x/out/a.rs",
        "/usr/bin/cc",
    ] {
        let _ = (
            compiled.read(path),
            compiled.write(path),
            compiled.exec(path),
        );
        let _ = compiled.sensitive_read(path);
    }
}

/// The configuration file.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = crate::config::parse(text, Path::new(".buildwatch/config.toml")) {
        assert!(e.to_string().starts_with(".buildwatch/config.toml:"), "{e}");
    }
}

fn shipped() -> ProfileSet {
    static SHIPPED: OnceLock<Vec<profile::Profile>> = OnceLock::new();
    let shipped = SHIPPED.get_or_init(|| crate::shipped::profiles().unwrap_or_default());
    ProfileSet::new(Vec::new(), shipped.clone())
}

/// An event stream given to `replay`. The first byte chooses how the rest is given: as is (it
/// may itself be gzip), or gzipped first (so that the lines inside a valid gzip stream are
/// reached); and whether the pipeline learns. The whole pipeline runs on what parses, and every
/// report renders.
pub fn replay(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(rest).expect("writing to memory");
        gz.finish().expect("writing to memory")
    } else {
        rest.to_vec()
    };
    let reader = replay::events_reader(std::io::Cursor::new(bytes)).expect("reading memory");
    let options = PipelineOptions {
        profiles: shipped(),
        learn: mode & 2 == 2,
        ..PipelineOptions::default()
    };
    let lines = rest.split(|&b| b == b'\n').count();
    match replay::replay_from(reader, Path::new("events.jsonl"), options) {
        Ok(report) => render_all(&report),
        // Inside gzip (given so, or made so), the lines are not those of `rest`.
        Err(ReplayError::Parse { line, .. })
            if mode & 1 == 1 || rest.starts_with(&[0x1f, 0x8b]) =>
        {
            assert!(line >= 1)
        }
        Err(ReplayError::Parse { line, .. }) => assert!((1..=lines).contains(&line), "{line}"),
        Err(ReplayError::Read { line, .. }) => assert!(line >= 1),
        Err(e @ (ReplayError::Open { .. } | ReplayError::Write { .. })) => {
            panic!("no file is opened or written: {e}")
        }
    }
}

fn render_all(report: &crate::pipeline::RunReport) {
    let meta = RunMeta {
        command: vec!["cargo".into(), "build".into()],
        exit_status: None,
        user: None,
    };
    let _ = report.render();
    let json = crate::report::json(report, &meta);
    serde_json::from_str::<serde_json::Value>(&json).expect("the JSON report is JSON");
    let _ = crate::report::markdown(report, &meta);
    let sarif = crate::report::sarif(report, &meta, &Sources::default());
    serde_json::from_str::<serde_json::Value>(&sarif).expect("the SARIF report is JSON");
}

/// Records as the kernel's ring buffer delivers them: a sequence of (u16 little-endian length,
/// record). Each decodes or is rejected; what decodes survives the JSON round trip that
/// `--events` and `replay` make, and goes through the whole pipeline.
pub fn records(data: &[u8]) {
    let decoder = Decoder::new(0);
    let mut pipeline = Pipeline::new(PipelineOptions {
        profiles: shipped(),
        ..PipelineOptions::default()
    })
    .expect("no output to open");
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let record = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[(2 + len).min(rest.len())..];
        let Ok(event) = decoder.decode(record) else {
            continue;
        };
        let json = serde_json::to_string(&event).expect("an event serializes");
        let back: Event = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("an event does not read back: {e}\n{json}"));
        assert_eq!(back, event, "{json}");
        pipeline.process(event).expect("no output to write");
    }
    let (report, _) = pipeline.finish().expect("no output to write");
    render_all(&report);
}

#[cfg(test)]
mod tests;
