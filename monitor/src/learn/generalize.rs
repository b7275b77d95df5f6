//! Turning concrete observations into profile entries: machine-specific prefixes become
//! variables, directories of many files become globs.
use std::collections::{BTreeMap, BTreeSet};

use crate::profile::{Var, Vars};

/// Writes `path` with the longest matching variable prefix: `/w/target/debug/build/x-1/out/a.rs`
/// → `${OUT_DIR}/a.rs`. Paths under no variable stay as they are.
pub fn substitute(path: &str, vars: &Vars) -> String {
    let mut best: Option<(Var, usize)> = None;
    for var in Var::ALL {
        let Some(value) = vars.get(var) else { continue };
        let value = value.trim_end_matches('/');
        if value.is_empty() || value == "/" {
            continue;
        }
        let under = path == value
            || (path.starts_with(value) && path.as_bytes().get(value.len()) == Some(&b'/'));
        if under && best.is_none_or(|(_, len)| value.len() > len) {
            best = Some((var, value.len()));
        }
    }
    match best {
        Some((var, len)) => format!("${{{}}}{}", var.name(), &path[len..]),
        None => path.to_owned(),
    }
}

/// A `link-injection` subject as a `link` entry: the search directory with its variable
/// (`search:${OUT_DIR}/lib`), variables' values replaced wherever they appear in an argument or
/// a variable's value (`arg:-Wl,-rpath,${OUT_DIR}/lib`), glob characters escaped.
pub fn link_entry(subject: &str, vars: &Vars) -> String {
    if let Some(dir) = subject.strip_prefix("search:") {
        return format!("search:{}", escape_glob_keep_vars(&substitute(dir, vars)));
    }
    let mut text = escape_glob(subject);
    let mut values: Vec<(Var, String)> = Var::ALL
        .into_iter()
        .filter_map(|var| {
            let v = vars.get(var)?.trim_end_matches('/');
            (v.len() > 1).then(|| (var, escape_glob(v)))
        })
        .collect();
    // The longest first: OUT_DIR before the TARGET_DIR it is in.
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (var, value) in values {
        text = replace_dir(&text, &value, &format!("${{{}}}", var.name()));
    }
    text
}

/// `text` with the directory `dir` replaced where it is a whole path prefix (followed by the
/// end, `/` or a separator: `/w` is not in `/work`).
fn replace_dir(text: &str, dir: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(dir) {
        let after = &rest[at + dir.len()..];
        let whole = after
            .chars()
            .next()
            .is_none_or(|c| matches!(c, '/' | ':' | ',' | '=' | ' '));
        out.push_str(&rest[..at]);
        out.push_str(if whole { with } else { dir });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Escapes glob metacharacters in a literal path component.
pub fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Directories whose whole subtree is allowed at once when anything in them is seen.
const WHOLE_TREE: [&str; 4] = [
    "${OUT_DIR}",
    "${CARGO_MANIFEST_DIR}",
    "${TARGET_DIR}",
    "${RUSTC_SYSROOT}",
];

/// Most files listed one by one in a directory before the directory becomes `dir/*`.
const MAX_FILES_PER_DIR: usize = 3;

/// Generalizes a set of (already substituted) paths into few patterns:
/// - anything under `${OUT_DIR}`, `${CARGO_MANIFEST_DIR}`, `${TARGET_DIR}` or `${RUSTC_SYSROOT}`
///   becomes that directory's `/**`;
/// - more than three files in one directory become `dir/*`, and a directory with several such
///   subdirectories becomes `dir/**`;
/// - the rest stay literal (escaped for the glob syntax).
pub fn collapse(paths: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    'paths: for p in paths {
        for root in WHOLE_TREE {
            if p == root || p.starts_with(&format!("{root}/")) {
                out.insert(format!("{root}/**"));
                continue 'paths;
            }
        }
        if let Some(glob) = temporary_names(p) {
            out.insert(glob);
            continue;
        }
        let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
        by_dir.entry(dir).or_default().push(name);
    }
    // Directories that are crowded become globs; their parents, when several children are
    // crowded, become recursive globs.
    let mut crowded: BTreeSet<&str> = BTreeSet::new();
    for (dir, names) in &by_dir {
        if names.len() > MAX_FILES_PER_DIR {
            crowded.insert(dir);
        }
    }
    let mut parents: BTreeMap<&str, usize> = BTreeMap::new();
    for dir in &crowded {
        if let Some((parent, _)) = dir.rsplit_once('/') {
            *parents.entry(parent).or_default() += 1;
        }
    }
    let recursive: BTreeSet<&str> = parents
        .into_iter()
        .filter(|(p, n)| *n > 1 && p.matches('/').count() >= 2)
        .map(|(p, _)| p)
        .collect();
    for (dir, names) in by_dir {
        if let Some(r) = recursive
            .iter()
            .find(|r| dir == **r || dir.starts_with(&format!("{r}/")))
        {
            out.insert(format!("{}/**", escape_prefix(r)));
        } else if crowded.contains(dir) {
            out.insert(format!("{}/*", escape_prefix(dir)));
        } else {
            for name in names {
                out.insert(format!("{}/{}", escape_prefix(dir), escape_glob(name)));
            }
        }
    }
    out
}

/// Directories where programs create files and directories under random names (mkstemp,
/// mkdtemp, the tempfile crate): a name learned there literally would never be seen again.
const TEMPORARY_ROOTS: [&str; 4] = ["${TMPDIR}/", "/tmp/", "/var/tmp/", "/dev/shm/"];

/// The fewest characters a random suffix has: mkstemp's `XXXXXX` and the tempfile crate's
/// default both use six from `[A-Za-z0-9]`.
const RANDOM_SUFFIX: usize = 6;

/// A path under a temporary directory with a randomly named component
/// (`${TMPDIR}/rmetaOYY63Q/full.rmeta`) as a glob that the next run's names also match
/// (`${TMPDIR}/rmeta*/full.rmeta`); `None` when it has no such component.
fn temporary_names(path: &str) -> Option<String> {
    let root = TEMPORARY_ROOTS.iter().find(|r| path.starts_with(**r))?;
    let rest = &path[root.len()..];
    let mut random = false;
    let parts: Vec<String> = rest
        .split('/')
        .map(|component| match random_suffix(component) {
            Some(stem) => {
                random = true;
                format!("{}*", escape_glob(stem))
            }
            None => escape_glob(component),
        })
        .collect();
    random.then(|| format!("{}{}", escape_prefix(root), parts.join("/")))
}

/// The part of `name` before a random suffix: its last six characters are ASCII letters and
/// digits that mix upper and lower case, or letters and digits (names people choose rarely end
/// so; `tmp.XXXXXX` suffixes almost always do: all six of one kind has a chance under 1 %).
/// Only asked of names in temporary directories, where a wider rule costs little.
fn random_suffix(name: &str) -> Option<&str> {
    let bytes = name.as_bytes();
    let start = bytes
        .iter()
        .rposition(|b| !b.is_ascii_alphanumeric())
        .map_or(0, |i| i + 1);
    let tail = &bytes[bytes.len().saturating_sub(RANDOM_SUFFIX).max(start)..];
    if tail.len() < RANDOM_SUFFIX {
        return None;
    }
    let upper = tail.iter().any(u8::is_ascii_uppercase);
    let lower = tail.iter().any(u8::is_ascii_lowercase);
    let digit = tail.iter().any(u8::is_ascii_digit);
    ((upper && lower) || ((upper || lower) && digit)).then(|| &name[..name.len() - RANDOM_SUFFIX])
}

/// A program entry: a bare name or a path (which may start with a `${VAR}`), escaped.
pub fn escape_program(entry: &str) -> String {
    if entry.contains('/') {
        escape_glob_keep_vars(entry)
    } else {
        escape_glob(entry)
    }
}

/// Escapes a path that may start with a `${VAR}`, keeping the variable.
pub fn escape_glob_keep_vars(path: &str) -> String {
    escape_prefix(path)
}

/// Escapes a path that may start with a `${VAR}`.
fn escape_prefix(dir: &str) -> String {
    if let Some(rest) = dir.strip_prefix("${")
        && let Some((var, tail)) = rest.split_once('}')
    {
        return format!("${{{var}}}{}", escape_glob(tail));
    }
    escape_glob(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            out_dir: Some("/w/target/debug/build/foo-0123456789abcdef/out".into()),
            manifest_dir: Some("/home/u/.cargo/registry/src/idx/foo-1.0.0".into()),
            target_dir: Some("/w/target".into()),
            cargo_home: Some("/home/u/.cargo".into()),
            rustc_sysroot: Some("/home/u/.rustup/toolchains/stable".into()),
            home: Some("/home/u".into()),
            tmpdir: Some("/tmp".into()),
            workspace: Some("/w".into()),
        }
    }

    #[test]
    fn link_entries_name_the_crates_places_by_variable() {
        let v = vars();
        let out = "/w/target/debug/build/foo-0123456789abcdef/out";
        assert_eq!(
            link_entry(&format!("search:{out}/lib"), &v),
            "search:${OUT_DIR}/lib"
        );
        assert_eq!(
            link_entry(&format!("arg:-Wl,-rpath,{out}/lib"), &v),
            "arg:-Wl,-rpath,${OUT_DIR}/lib"
        );
        assert_eq!(
            link_entry("env:PATH=/home/u/bin:/usr/bin", &v),
            "env:PATH=${HOME}/bin:/usr/bin"
        );
        assert_eq!(link_entry("arg:-fuse-ld=mold", &v), "arg:-fuse-ld=mold");
        assert_eq!(link_entry("search:/work/lib", &v), "search:/work/lib");
        assert_eq!(link_entry("arg:-L/work/lib", &v), "arg:-L/work/lib");
        // What learning writes reads back and allows the same subject.
        let entry = link_entry(&format!("arg:-B{out}/bin*"), &v);
        let pattern = crate::profile::LinkPattern::parse(&entry).expect("entry");
        let vars = crate::profile::Vars {
            out_dir: v.out_dir.clone(),
            ..crate::profile::Vars::default()
        };
        let m = pattern.compile(&vars).expect("set").expect("glob");
        assert!(m.is_match(format!("arg:-B{out}/bin*")));
        assert!(!m.is_match(format!("arg:-B{out}/binx")));
    }

    #[test]
    fn longest_variable_wins() {
        let v = vars();
        assert_eq!(
            substitute("/w/target/debug/build/foo-0123456789abcdef/out/gen.rs", &v),
            "${OUT_DIR}/gen.rs"
        );
        assert_eq!(
            substitute("/w/target/debug/deps/x.rlib", &v),
            "${TARGET_DIR}/debug/deps/x.rlib"
        );
        assert_eq!(
            substitute("/home/u/.cargo/registry/src/idx/foo-1.0.0/src/a.c", &v),
            "${CARGO_MANIFEST_DIR}/src/a.c"
        );
        assert_eq!(
            substitute("/home/u/.config/foo.toml", &v),
            "${HOME}/.config/foo.toml"
        );
        assert_eq!(substitute("/w", &v), "${WORKSPACE}");
        assert_eq!(substitute("/wx/y", &v), "/wx/y");
        assert_eq!(substitute("/etc/os-release", &v), "/etc/os-release");
    }

    #[test]
    fn many_generated_files_become_one_glob() {
        let paths: BTreeSet<String> = (0..5000)
            .map(|i| format!("${{OUT_DIR}}/gen/file{i}.rs"))
            .collect();
        assert_eq!(
            collapse(&paths),
            BTreeSet::from(["${OUT_DIR}/**".to_owned()])
        );
    }

    #[test]
    fn random_temporary_names_become_globs() {
        let paths: BTreeSet<String> = [
            "${TMPDIR}/rmetaOYY63Q/full.rmeta",
            "${TMPDIR}/rmetaPHULnw/full.rmeta",
            "${TMPDIR}/rmetaja4wrb/full.rmeta",
            "/tmp/.tmpA1b2C3",
            "/tmp/cc-build/tmp.Xy12Zq/conftest.c",
            "${TMPDIR}/rustix_test_can_compile",
            "/tmp/README",
            "/usr/share/x/ABCdef",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            collapse(&paths),
            BTreeSet::from(
                [
                    "${TMPDIR}/rmeta*/full.rmeta",
                    "/tmp/.tmp*",
                    "/tmp/cc-build/tmp.*/conftest.c",
                    "${TMPDIR}/rustix_test_can_compile",
                    "/tmp/README",
                    "/usr/share/x/ABCdef",
                ]
                .map(String::from)
            )
        );
    }

    #[test]
    fn crowded_directories_become_globs() {
        let mut paths: BTreeSet<String> = (0..5)
            .map(|i| format!("/usr/share/foo/data/f{i}"))
            .collect();
        paths.insert("/etc/foo.conf".into());
        paths.insert("/opt/x[1]/y".into());
        let got = collapse(&paths);
        assert_eq!(
            got,
            BTreeSet::from([
                "/usr/share/foo/data/*".to_owned(),
                "/etc/foo.conf".to_owned(),
                "/opt/x\\[1\\]/y".to_owned()
            ])
        );
        let mut deep: BTreeSet<String> = BTreeSet::new();
        for d in ["a", "b"] {
            for i in 0..4 {
                deep.insert(format!("/usr/share/tree/{d}/f{i}"));
            }
        }
        assert_eq!(
            collapse(&deep),
            BTreeSet::from(["/usr/share/tree/**".to_owned()])
        );
    }
}
