//! Property tests of the parsers of hostile input: the checks of [`super`] on arbitrary bytes and
//! on inputs shaped like the real thing, fast enough for every CI run (the fuzz targets run the
//! same checks for minutes: `cargo xtask fuzz`). Inputs the fuzzer found are kept below as
//! regression tests.
use std::{io::Read, path::Path};

use monitor_common::{COMM_LEN, Record as _, RecordHeader, kind};
use proptest::prelude::*;

use crate::replay::{self, ReplayError};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The first events of a recorded stream, one JSON object per line.
fn recorded_lines() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/streams/attribution-hostile.jsonl.gz");
    let events = replay::read_events(&path).unwrap_or_else(|e| panic!("{e}"));
    events
        .iter()
        .take(80)
        .map(|e| serde_json::to_string(e).expect("serializes"))
        .collect()
}

/// A reader that hands out at most `chunk` bytes per read, as a pipe does.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("memory");
    gz.finish().expect("memory")
}

fn read_all(data: Vec<u8>, chunk: usize) -> Result<Vec<crate::model::Event>, ReplayError> {
    let reader = replay::events_reader(Trickle { data, at: 0, chunk }).expect("memory");
    let mut events = Vec::new();
    replay::for_each_event(reader, Path::new("e.jsonl"), |e| events.push(e))?;
    Ok(events)
}

/// A profile-like text: the schema's keys and tables, entries from the patterns' alphabet.
fn profile_text() -> impl Strategy<Value = String> {
    let entry = "[-a-zA-Z0-9_./*?{}\\[\\]!$:@,]{0,24}";
    let list = prop::collection::vec(entry, 0..4);
    let key = prop_oneof![
        Just("exec"),
        Just("read"),
        Just("write"),
        Just("sensitive-read"),
        Just("network"),
        Just("other")
    ];
    let table = (
        prop_oneof![Just("build-script"), Just("proc-macro"), Just("x")],
        prop::collection::vec((key, list), 0..4),
    );
    (
        prop_oneof![Just("schema = 1\n"), Just("schema = 2\n"), Just("")],
        prop_oneof![Just("crate = \"fuzz\"\n"), Just("crate = \"other\"\n")],
        prop::option::of("[-^~=<>*., 0-9a-z]{0,16}"),
        prop::collection::vec(table, 0..3),
    )
        .prop_map(|(schema, krate, versions, tables)| {
            let mut text = format!("{schema}{krate}");
            if let Some(v) = versions {
                text.push_str(&format!("versions = {}\n", toml_quote(&v)));
            }
            for (name, lists) in tables {
                text.push_str(&format!("[{name}]\n"));
                for (key, entries) in lists {
                    let entries: Vec<String> = entries.iter().map(|e| toml_quote(e)).collect();
                    text.push_str(&format!("{key} = [{}]\n", entries.join(", ")));
                }
            }
            text
        })
}

/// A TOML basic string: JSON's escapes are TOML's (the alphabets above have no DEL).
fn toml_quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A record with a real kind and header, then arbitrary bytes: the decoder's paths per kind.
fn record() -> impl Strategy<Value = Vec<u8>> {
    let kinds = vec![
        kind::FORK,
        kind::EXEC,
        kind::EXIT,
        kind::OPEN,
        kind::CONNECT,
        kind::DNS,
        kind::TAMPER,
        kind::IO_URING,
        kind::COMPAT,
        kind::MACRO_LIB,
    ];
    (
        prop::sample::select(kinds),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..1200),
    )
        .prop_map(|(kind, size, tail)| {
            let header = RecordHeader {
                kind,
                size,
                time_ns: 1,
                tgid: 10,
                tid: 10,
                comm: [b'a'; COMM_LEN],
            };
            let mut bytes = header.as_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            bytes
        })
}

fn framed(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let len = u16::try_from(r.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&r[..usize::from(len)]);
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_profile_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        super::profile(&data);
    }

    #[test]
    fn profile_like_text(text in profile_text()) {
        super::profile(text.as_bytes());
    }

    #[test]
    fn any_config_text(text in ".{0,200}") {
        super::config(text.as_bytes());
    }

    #[test]
    fn config_like_text(codes in prop::collection::vec("[-a-z]{0,20}", 0..4), all in any::<bool>()) {
        let value = if all {
            toml_quote(&codes.join(","))
        } else {
            format!("[{}]", codes.iter().map(|c| toml_quote(c)).collect::<Vec<_>>().join(", "))
        };
        super::config(format!("[policy]\nfail-on = {value}\n").as_bytes());
    }

    #[test]
    fn any_replay_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        super::replay(&data);
    }

    #[test]
    fn any_records(records in prop::collection::vec(record(), 0..6), noise in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut data = framed(&records);
        data.extend_from_slice(&noise);
        super::records(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..config() })]

    /// A stream read in pieces of any size, gzipped or not, gives the events of the whole file.
    #[test]
    fn streams_read_the_same_in_any_pieces(chunk in 1usize..9, gz in any::<bool>()) {
        let text = recorded_lines().join("\n") + "\n";
        let want = read_all(text.clone().into_bytes(), 1 << 16).expect("the recorded stream");
        let data = if gz { gzip(text.as_bytes()) } else { text.into_bytes() };
        let got = read_all(data, chunk).expect("the recorded stream");
        prop_assert_eq!(got, want);
    }

    /// One bad line among real events: the error names exactly that line, gzipped or not.
    #[test]
    fn a_bad_line_is_named(
        at in 0usize..80,
        bad in prop_oneof![
            "[{}\\[\\]\":,a-z0-9]{1,40}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 1..40),
        ],
        gz in any::<bool>(),
    ) {
        let mut lines: Vec<Vec<u8>> = recorded_lines().into_iter().map(String::into_bytes).collect();
        let at = at.min(lines.len());
        let bad: Vec<u8> = bad.into_iter().filter(|&b| b != b'\n').collect();
        prop_assume!(!bad.is_empty() && !String::from_utf8_lossy(&bad).trim().is_empty());
        prop_assume!(serde_json::from_slice::<crate::model::Event>(&bad).is_err());
        lines.insert(at, bad);
        let data = lines.join(&b'\n');
        let data = if gz { gzip(&data) } else { data };
        match read_all(data, 4096) {
            Err(ReplayError::Parse { line, .. }) => prop_assert_eq!(line, at + 1),
            other => prop_assert!(false, "line {}: {:?}", at + 1, other.map(|e| e.len())),
        }
    }
}

#[test]
fn invalid_utf8_names_the_line() {
    let mut data = recorded_lines()[..3].join("\n").into_bytes();
    data.extend_from_slice(b"\n{\"kind\":\"exit\xff\"}\n");
    let e = read_all(data, 7).expect_err("invalid UTF-8");
    assert!(
        e.to_string()
            .starts_with("e.jsonl:4: not a buildwatch event: invalid UTF-8"),
        "{e}"
    );
}

#[test]
fn corrupt_gzip_is_an_error_with_the_line() {
    let text = recorded_lines().join("\n") + "\n";
    let mut data = gzip(text.as_bytes());
    let cut = data.len() / 2;
    data.truncate(cut);
    let e = read_all(data.clone(), 3).expect_err("truncated gzip");
    assert!(
        matches!(e, ReplayError::Read { line, .. } if line > 1),
        "{e}"
    );
    // Bytes flipped in the middle of the stream.
    let mut data = gzip(text.as_bytes());
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    data[mid + 1] ^= 0x55;
    let e = read_all(data, 64).expect_err("corrupt gzip");
    assert!(
        matches!(e, ReplayError::Read { .. } | ReplayError::Parse { .. }),
        "{e}"
    );
}

#[test]
fn an_overlong_line_is_refused_without_reading_it_whole() {
    let data = vec![b' '; replay::MAX_LINE + 10];
    let e = read_all(data, 1 << 20).expect_err("overlong");
    assert!(e.to_string().contains("longer than 16 MiB"), "{e}");
}

#[test]
fn an_empty_or_blank_stream_has_no_events() {
    assert!(read_all(Vec::new(), 1).expect("empty").is_empty());
    assert!(
        read_all(b"\n \n\t\n".to_vec(), 1)
            .expect("blank")
            .is_empty()
    );
    // A lone gzip magic number, nothing after it.
    assert!(read_all(vec![0x1f, 0x8b], 1).is_err());
}

/// Found by `cargo xtask fuzz` (decode, 2026-12-07): a 32-bit syscall record whose result is
/// i64::MIN. Naming its errno negated it, which overflows (a panic with debug assertions, and
/// a wrong name without).
#[test]
fn fuzz_decode_compat_result_i64_min() {
    super::records(&DECODE_COMPAT_RESULT_I64_MIN);
    // Without debug assertions the negation wrapped silently: the error must be the number.
    let decoder = crate::decode::Decoder::new(0);
    let mut rest = &DECODE_COMPAT_RESULT_I64_MIN[..];
    let mut errors = Vec::new();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        if let Ok(event) = decoder.decode(&rest[2..end])
            && let crate::model::EventKind::CompatSyscall(c) = event.kind
        {
            errors.push((c.result, c.error));
        }
        rest = &rest[end..];
    }
    assert_eq!(
        errors,
        [(i64::MIN, Some(format!("result {}", i64::MIN)))],
        "the record is a 32-bit syscall whose result is i64::MIN"
    );
}

const DECODE_COMPAT_RESULT_I64_MIN: [u8; 121] = [
    0x0a, 0xf8, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x0f, 0x00, 0x0a, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x76, 0x9b, 0x97, 0x73, 0x69, 0x6f, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x97, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x74, 0x65, 0x78, 0x74, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x6e, 0x69, 0x00, 0x6f, 0x00,
];
