//! Whole-module tests: the example profile, every error message (insta snapshots), rendering.
use std::path::Path;

use super::*;
use crate::attribution::Role;

/// The example from docs/profiles.md.
const EXAMPLE: &str = r#"# comments allowed anywhere
schema = 1                      # required
crate = "libz-sys"              # required; must equal the file stem
versions = "^1.1"               # optional

[build-script]
exec = ["cc", "ar", "${RUSTC_SYSROOT}/bin/rustc", "/usr/bin/pkg-config", "x86_64-*-gcc*"]
read = ["${CARGO_MANIFEST_DIR}/**", "/usr/include/**"]
write = ["${OUT_DIR}/**"]
sensitive-read = ["${HOME}/.netrc"]
network = ["127.0.0.1:8080", "10.0.0.0/8", "[::1]:443", "*:443", "crates.io:443", "unix:/run/pcscd/*", "unix:@abstract-name"]

[proc-macro]
read = ["${CARGO_MANIFEST_DIR}/**"]
"#;

const PATH: &str = "profiles/libz-sys.toml";

#[test]
fn parses_the_example() {
    let profile = parse(EXAMPLE, Path::new(PATH)).expect("example profile");
    assert_eq!(profile.krate, "libz-sys");
    assert_eq!(profile.source, ProfileSource::File(PATH.into()));
    assert_eq!(profile.versions.len(), 1);
    assert!(profile.covers(&semver::Version::new(1, 3, 0)));
    assert!(!profile.covers(&semver::Version::new(2, 0, 0)));
    let build = profile.rules(Role::BuildScript).expect("build-script");
    assert_eq!(build.exec.len(), 5);
    assert_eq!(build.exec[2].text, "${RUSTC_SYSROOT}/bin/rustc");
    assert_eq!(build.exec[0].location, Location { line: 7, col: 9 });
    assert_eq!(build.exec[1].location, Location { line: 7, col: 15 });
    assert_eq!(build.read.len(), 2);
    assert_eq!(build.write.len(), 1);
    assert_eq!(build.sensitive_read.len(), 1);
    assert_eq!(build.network.len(), 7);
    let proc_macro = profile.rules(Role::ProcMacro).expect("proc-macro");
    assert_eq!(proc_macro.read.len(), 1);
    assert!(proc_macro.exec.is_empty());
}

/// The format documentation: its examples must stay true.
const DOC: &str = include_str!("../../../docs/profiles.md");

/// The fenced blocks of `DOC` in language `lang`.
fn doc_blocks(lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    DOC.split(fence.as_str())
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(body, _)| body.to_owned()))
        .collect()
}

#[test]
fn documented_example_parses() {
    let blocks = doc_blocks("toml");
    let example = blocks.first().expect("an example in docs/profiles.md");
    let profile = parse(example, Path::new("libz-sys.toml")).expect("documented example");
    let build = profile.build_script.expect("build-script");
    assert_eq!(build.exec.len(), 5);
    assert_eq!(build.network.len(), 7);
    // The last block is the learning mode's review comment, which render writes.
    let review = blocks.last().expect("review block");
    assert!(render(&sample_doc()).ends_with(review.as_str()), "{review}");
}

#[test]
fn documented_errors_are_real() {
    // The error examples (other text blocks show command output).
    let blocks: Vec<String> = doc_blocks("text")
        .into_iter()
        .filter(|b| b.starts_with(".buildwatch/profiles/"))
        .collect();
    let texts = [
        "[build-script]\nread = [\"include/**\"]\n",
        "[build_script]\nexec = [\"cc\"]\n",
        "[build-script]\nexec = \"cc\"\n",
    ];
    assert_eq!(blocks.len(), texts.len());
    for (block, text) in blocks.iter().zip(texts) {
        let error = parse(
            &format!("schema = 1\ncrate = \"libz-sys\"\n{text}"),
            Path::new(".buildwatch/profiles/libz-sys.toml"),
        )
        .expect_err(text);
        assert_eq!(format!("{error}\n"), *block);
    }
}

#[test]
fn minimal_profile_allows_nothing() {
    let profile = parse("schema = 1\ncrate = \"libz-sys\"\n", Path::new(PATH)).expect("minimal");
    assert!(profile.versions.is_empty());
    assert!(profile.build_script.is_none());
    assert!(profile.proc_macro.is_none());
    assert!(profile.covers(&semver::Version::new(0, 1, 0)));
}

#[test]
fn versions_list_any_may_match() {
    let text = "schema = 1\ncrate = \"libz-sys\"\nversions = [\"=1.0.0\", \">=2, <3\"]\n";
    let profile = parse(text, Path::new(PATH)).expect("versions list");
    assert!(profile.covers(&semver::Version::new(1, 0, 0)));
    assert!(profile.covers(&semver::Version::new(2, 5, 1)));
    assert!(!profile.covers(&semver::Version::new(1, 0, 1)));
}

#[test]
fn builtin_profiles_name_their_source() {
    let profile =
        parse_builtin("schema = 1\ncrate = \"cc\"\n", "profiles/cc.toml").expect("built in");
    assert_eq!(profile.source, ProfileSource::BuiltIn("profiles/cc.toml"));
    let error =
        parse_builtin("schema = 1\ncrate = \"c\"\n", "profiles/cc.toml").expect_err("mismatch");
    assert!(error.to_string().starts_with("profiles/cc.toml:2:9: "));
}

#[test]
fn first_error_in_file_order() {
    // Keys are visited in name order; errors are still reported in file order.
    let text = "schema = 1\nzzz = 1\ncrate = \"libz-sys\"\naaa = 2\n";
    let error = parse(text, Path::new(PATH)).expect_err("unknown keys");
    assert_eq!(error.location, Some(Location { line: 2, col: 1 }));
    let problems = parse::parse_all(text, Path::new(PATH), ProfileSource::BuiltIn("x"))
        .expect_err("unknown keys")
        .into_vec();
    let lines: Vec<_> = problems
        .iter()
        .map(|p| p.location.map(|l| l.line))
        .collect();
    assert_eq!(lines, [Some(2), Some(4)]);
}

#[test]
fn schema_is_checked_before_anything_else() {
    let text = "schema = 2\ncrate = \"other\"\n[build-script]\nexec = \"cc\"\nnew-key = 1\n";
    let error = parse(text, Path::new(PATH)).expect_err("schema 2");
    assert!(matches!(*error.kind, ErrorKind::UnsupportedSchema { .. }));
}

/// Snapshots the exact message of the error `text` gives when read from `file`.
macro_rules! error_message {
    ($name:ident, $text:expr) => {
        error_message!($name, PATH, $text);
    };
    ($name:ident, $file:expr, $text:expr) => {
        #[test]
        fn $name() {
            let text: &str = $text;
            let error = parse(text, Path::new($file)).expect_err("the profile is invalid");
            insta::with_settings!({ description => text, omit_expression => true }, {
                insta::assert_snapshot!(error.to_string());
            });
        }
    };
}

const HEAD: &str = "schema = 1\ncrate = \"libz-sys\"\n";

error_message!(
    error_toml_syntax,
    "schema = 1\ncrate = \"libz-sys\nversions = \"1\"\n"
);
error_message!(
    error_duplicate_key,
    "schema = 1\ncrate = \"a\"\ncrate = \"b\"\n"
);
error_message!(
    error_unknown_top_level_key,
    &format!("{HEAD}version = \"^1\"\n")
);
error_message!(
    error_unknown_top_level_key_no_suggestion,
    &format!("{HEAD}color = \"blue\"\n")
);
error_message!(
    error_unknown_role_key,
    &format!("{HEAD}[build-script]\nexecs = [\"cc\"]\n")
);
error_message!(
    error_unknown_role_table,
    &format!("{HEAD}[build_script]\nexec = [\"cc\"]\n")
);
error_message!(
    error_unknown_role_table_no_suggestion,
    &format!("{HEAD}[rustc]\nexec = [\"cc\"]\n")
);
error_message!(error_missing_schema, "crate = \"libz-sys\"\n");
error_message!(
    error_wrong_schema_version,
    "schema = 2\ncrate = \"libz-sys\"\n"
);
error_message!(error_schema_not_an_integer, "schema = \"1\"\n");
error_message!(error_missing_crate, "schema = 1\n");
error_message!(error_crate_mismatch, "schema = 1\ncrate = \"zlib\"\n");
error_message!(
    error_bad_crate_name,
    "profiles/libz sys.toml",
    "schema = 1\ncrate = \"libz sys\"\n"
);
error_message!(
    error_bad_semver,
    &format!("{HEAD}versions = [\"^1.1\", \"one.two\"]\n")
);
error_message!(error_empty_versions, &format!("{HEAD}versions = []\n"));
error_message!(error_versions_wrong_type, &format!("{HEAD}versions = 1\n"));
error_message!(
    error_bad_glob,
    &format!("{HEAD}[build-script]\nread = [\"/usr/include/[abc\"]\n")
);
error_message!(
    error_bad_exec_glob,
    &format!("{HEAD}[build-script]\nexec = [\"gcc-{{9,10\"]\n")
);
error_message!(
    error_relative_path,
    &format!("{HEAD}[build-script]\nread = [\"include/**\"]\n")
);
error_message!(
    error_tilde_path,
    &format!("{HEAD}[build-script]\nsensitive-read = [\"~/.netrc\"]\n")
);
error_message!(
    error_relative_exec_path,
    &format!("{HEAD}[build-script]\nexec = [\"bin/cc\"]\n")
);
error_message!(
    error_dot_component,
    &format!("{HEAD}[build-script]\nread = [\"${{OUT_DIR}}/../x\"]\n")
);
error_message!(
    error_trailing_slash,
    &format!("{HEAD}[build-script]\nread = [\"/usr/include/\"]\n")
);
error_message!(
    error_unknown_variable,
    &format!("{HEAD}[build-script]\nwrite = [\"${{OUTDIR}}/**\"]\n")
);
error_message!(
    error_unterminated_variable,
    &format!("{HEAD}[build-script]\nwrite = [\"${{OUT_DIR/**\"]\n")
);
error_message!(
    error_misplaced_variable,
    &format!("{HEAD}[build-script]\nread = [\"/cache/${{HOME}}/x\"]\n")
);
error_message!(
    error_bad_cidr,
    &format!("{HEAD}[build-script]\nnetwork = [\"10.0.0.0/33\"]\n")
);
error_message!(
    error_cidr_host_bits,
    &format!("{HEAD}[build-script]\nnetwork = [\"10.1.2.3/8\"]\n")
);
error_message!(
    error_bad_ip,
    &format!("{HEAD}[build-script]\nnetwork = [\"300.0.0.1:80\"]\n")
);
error_message!(
    error_unbracketed_ipv6,
    &format!("{HEAD}[proc-macro]\nnetwork = [\"::1:443\"]\n")
);
error_message!(
    error_bad_port,
    &format!("{HEAD}[build-script]\nnetwork = [\"127.0.0.1:99999\"]\n")
);
error_message!(
    error_bad_host,
    &format!("{HEAD}[build-script]\nnetwork = [\"http://crates.io\"]\n")
);
error_message!(
    error_bad_unix,
    &format!("{HEAD}[build-script]\nnetwork = [\"unix:run/pcscd.comm\"]\n")
);
error_message!(
    error_wrong_value_type,
    &format!("{HEAD}[build-script]\nexec = \"cc\"\n")
);
error_message!(
    error_wrong_entry_type,
    &format!("{HEAD}[build-script]\nexec = [\"cc\", 3]\n")
);
error_message!(
    error_role_not_a_table,
    &format!("{HEAD}build-script = [\"cc\"]\n")
);

#[test]
fn error_display_shape() {
    let error = parse("schema = 2\n", Path::new(PATH)).expect_err("schema 2");
    let text = error.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        "profiles/libz-sys.toml:1:10: schema = 2 is not supported; this buildwatch reads schema 1"
    );
    assert!(lines[1].starts_with("  help: "), "{text}");
}

#[test]
fn io_errors_have_no_location() {
    let error = ProfileError::new(
        "p/x.toml",
        None,
        ErrorKind::Io {
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        },
    );
    assert_eq!(
        error.to_string(),
        "p/x.toml: cannot read the profile: permission denied"
    );
}

fn sample_doc() -> ProfileDoc {
    let entry = |text: &str, comment: Option<&str>| DocEntry {
        text: text.to_owned(),
        comment: comment.map(str::to_owned),
    };
    ProfileDoc {
        krate: "libz-sys".into(),
        versions: vec!["^1.1".into(), "=0.9.3".into(), "^1.1".into()],
        header: vec![
            "Learned by buildwatch from `cargo build`.".into(),
            "Review before committing.".into(),
        ],
        build_script: Some(RoleDoc {
            exec: vec![
                entry("cc", Some("C compiler")),
                entry("${RUSTC_SYSROOT}/bin/rustc", None),
                entry("ar", None),
                entry("cc", None),
            ],
            read: vec![
                entry("/usr/include/**", None),
                entry("${CARGO_MANIFEST_DIR}/**", Some("sources\nwith a newline")),
                entry(r#"/tmp/we"ird\dir/**"#, Some("quote and backslash")),
            ],
            write: vec![entry("${OUT_DIR}/**", None)],
            sensitive_read: vec![],
            network: vec![entry("127.0.0.1:8080", None), entry("unix:@x", None)],
            link: vec![
                entry("search:${OUT_DIR}/lib", None),
                entry("static=z", None),
            ],
        }),
        proc_macro: Some(RoleDoc::default()),
        not_allowed: vec![
            NotAllowed {
                kind: "sensitive-read".into(),
                text: "${HOME}/.ssh/id_ed25519".into(),
            },
            NotAllowed {
                kind: "network".into(),
                text: "93.184.216.34:443".into(),
            },
        ],
    }
}

/// Each list's (text, pattern) pairs sorted by text: a profile's meaning without locations
/// and order.
type Shape = Vec<(Role, RuleList, Vec<(String, String)>)>;

fn shape(profile: &Profile) -> (String, Vec<String>, Shape) {
    fn pairs<P: std::fmt::Debug>(rules: &[Rule<P>]) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = rules
            .iter()
            .map(|r| (r.text.clone(), format!("{:?}", r.pattern)))
            .collect();
        pairs.sort();
        pairs
    }
    let mut lists = Vec::new();
    for role in [Role::BuildScript, Role::ProcMacro] {
        if let Some(rules) = profile.rules(role) {
            lists.push((role, RuleList::Exec, pairs(&rules.exec)));
            lists.push((role, RuleList::Read, pairs(&rules.read)));
            lists.push((role, RuleList::Write, pairs(&rules.write)));
            lists.push((role, RuleList::SensitiveRead, pairs(&rules.sensitive_read)));
            lists.push((role, RuleList::Network, pairs(&rules.network)));
        }
    }
    let mut versions: Vec<_> = profile.versions.iter().map(ToString::to_string).collect();
    versions.sort();
    (profile.krate.clone(), versions, lists)
}

#[test]
fn render_is_stable_and_readable() {
    insta::assert_snapshot!(render(&sample_doc()));
}

#[test]
fn render_parses_back() {
    let doc = sample_doc();
    let text = render(&doc);
    let profile = parse(&text, Path::new("libz-sys.toml")).expect("rendered profile parses");
    let build = profile.build_script.as_ref().expect("build-script");
    let read: Vec<&str> = build.read.iter().map(|r| r.text.as_str()).collect();
    assert!(read.contains(&r#"/tmp/we"ird\dir/**"#), "{read:?}");
    assert_eq!(build.exec.len(), 3, "duplicates merged");
    assert!(profile.proc_macro.is_some());
    // Rendering the parsed profile again gives the same rules.
    let again = render(&ProfileDoc::from_profile(&profile));
    let reparsed = parse(&again, Path::new("libz-sys.toml")).expect("re-rendered profile");
    assert_eq!(shape(&reparsed), shape(&profile));
    // Deterministic.
    assert_eq!(render(&doc), text);
}

#[test]
fn example_round_trips() {
    let profile = parse(EXAMPLE, Path::new(PATH)).expect("example");
    let text = render(&ProfileDoc::from_profile(&profile));
    let back = parse(&text, Path::new(PATH)).expect("rendered example");
    assert_eq!(shape(&back), shape(&profile));
}

#[test]
fn hostile_strings_stay_inside_their_string_or_comment() {
    let doc = ProfileDoc {
        krate: "x".into(),
        header: vec!["line\nschema = 2".into()],
        build_script: Some(RoleDoc {
            read: vec![DocEntry {
                text: "/a\"\nwrite = \"/**".into(),
                comment: Some("c\r\nnetwork = [\"*\"]".into()),
            }],
            ..RoleDoc::default()
        }),
        not_allowed: vec![NotAllowed {
            kind: "network\n[proc-macro]".into(),
            text: "x\ny".into(),
        }],
        ..ProfileDoc::default()
    };
    let text = render(&doc);
    let profile = parse(&text, Path::new("x.toml")).expect("parses");
    let build = profile.build_script.expect("build-script");
    assert_eq!(build.read.len(), 1);
    assert_eq!(build.read[0].text, "/a\"\nwrite = \"/**");
    assert!(build.write.is_empty());
    assert!(build.network.is_empty());
    assert!(profile.proc_macro.is_none());
}
