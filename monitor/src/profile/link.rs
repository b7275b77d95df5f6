//! `link` entries: the link directives a crate's build script may give cargo.
//!
//! Each entry names directives the way `link-injection` findings name them:
//!
//! - `search:<path glob>`: a library search directory (`rustc-link-search`), a path pattern as
//!   in `read` (`search:${OUT_DIR}/lib`, `search:/opt/vendor/**`);
//! - `arg:<glob>`: one linker argument (`rustc-link-arg*`), e.g. `arg:-Wl,-rpath,$ORIGIN`;
//! - `env:<NAME>=<glob>`: a variable set with `rustc-env` (`env:PATH=${OUT_DIR}/bin:*`);
//! - `lib:<spec>` or the bare spec: a library (`rustc-link-lib`), e.g. `static=z`,
//!   `dylib=ssl`.
//!
//! Variables (`${OUT_DIR}`, ...) may appear anywhere in `arg`, `env` and `lib` entries; `*`
//! there matches any text, `/` included.
use globset::{GlobBuilder, GlobMatcher};

use super::{
    error::ErrorKind,
    pattern::{PathPattern, glob},
    vars::{Var, Vars},
};

/// One `link` entry, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LinkPattern {
    /// `search:<path pattern>`.
    Search(PathPattern),
    /// `arg:`, `env:` or `lib:` and the text after it (variables unresolved).
    Text {
        /// `arg`, `env` or `lib`.
        kind: &'static str,
        /// The glob, which may hold `${VAR}`s.
        text: String,
    },
}

impl LinkPattern {
    /// Parses a `link` entry.
    pub fn parse(entry: &str) -> Result<Self, ErrorKind> {
        let bad = |reason: &str| ErrorKind::BadLink {
            text: entry.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(dir) = entry.strip_prefix("search:") {
            return PathPattern::parse(dir).map(LinkPattern::Search);
        }
        let (kind, text) = match entry.split_once(':') {
            Some(("arg", t)) => ("arg", t),
            Some(("env", t)) => ("env", t),
            Some(("lib", t)) => ("lib", t),
            _ if entry.contains('=') || !entry.contains(':') => ("lib", entry),
            _ => return Err(bad("it starts with neither search:, arg:, env: nor lib:")),
        };
        if text.is_empty() {
            return Err(bad("nothing follows the kind"));
        }
        if kind == "env" && text.split_once('=').is_none_or(|(n, _)| n.is_empty()) {
            return Err(bad("an env entry is NAME=VALUE"));
        }
        // Checked with every variable standing for a plain value.
        let check = substitute(text, &|_| Some("v"))?;
        text_glob(&check).map_err(|error| ErrorKind::BadGlob {
            text: entry.to_owned(),
            reason: error.kind().to_string(),
        })?;
        Ok(LinkPattern::Text {
            kind,
            text: text.to_owned(),
        })
    }

    /// The matcher for subjects (`search:/dir`, `arg:-B/x`), with the variables of one crate
    /// instance; `None` when a variable it uses is unset (it then matches nothing).
    pub(crate) fn compile(&self, vars: &Vars) -> Option<Result<GlobMatcher, globset::Error>> {
        Some(match self {
            LinkPattern::Search(path) => {
                let resolved = path.resolve(vars)?;
                glob(&format!("search:{resolved}")).map(|g| g.compile_matcher())
            }
            LinkPattern::Text { kind, text } => {
                let resolved = substitute(text, &|var| vars.get(var)).ok()?;
                text_glob(&format!("{kind}:{resolved}")).map(|g| g.compile_matcher())
            }
        })
    }
}

/// A glob over free text: `*` matches `/` too; `\` escapes.
fn text_glob(text: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(text)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
}

/// `text` with each `${VAR}` replaced by its value, glob characters escaped. An unknown,
/// unterminated or unset variable is an error (at compile time, an unset one makes the entry
/// match nothing).
fn substitute<'v>(text: &str, value: &dyn Fn(Var) -> Option<&'v str>) -> Result<String, ErrorKind> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ErrorKind::UnterminatedVariable {
                text: text.to_owned(),
            })?;
        let name = &after[..end];
        let var = Var::from_name(name).ok_or_else(|| ErrorKind::UnknownVariable {
            name: name.to_owned(),
        })?;
        let v = value(var).ok_or_else(|| ErrorKind::UnknownVariable {
            name: name.to_owned(),
        })?;
        out.push_str(&globset::escape(v));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            out_dir: Some("/w/target/debug/build/z-1/out".into()),
            ..Vars::default()
        }
    }

    fn matches(entry: &str, subject: &str) -> bool {
        let pattern = LinkPattern::parse(entry).expect("entry");
        pattern
            .compile(&vars())
            .expect("variables set")
            .expect("glob")
            .is_match(subject)
    }

    #[test]
    fn entries_match_the_subjects_of_findings() {
        assert!(matches(
            "search:${OUT_DIR}/lib",
            "search:/w/target/debug/build/z-1/out/lib"
        ));
        assert!(!matches("search:${OUT_DIR}/lib", "search:/opt/lib"));
        assert!(matches("static=z", "lib:static=z"));
        assert!(matches("lib:dylib=ssl", "lib:dylib=ssl"));
        assert!(matches("arg:-Wl,-rpath,$ORIGIN", "arg:-Wl,-rpath,$ORIGIN"));
        assert!(matches(
            "env:PATH=${OUT_DIR}/bin:*",
            "env:PATH=/w/target/debug/build/z-1/out/bin:/usr/bin:/bin"
        ));
        assert!(!matches(
            "env:PATH=${OUT_DIR}/bin:*",
            "env:PATH=/tmp/x:/usr/bin"
        ));
    }

    #[test]
    fn bad_entries_say_why() {
        for bad in [
            "what:x",
            "arg:",
            "env:=x",
            "env:X",
            "arg:${NOPE}",
            "search:rel",
        ] {
            assert!(LinkPattern::parse(bad).is_err(), "{bad}");
        }
        let unset = LinkPattern::parse("arg:${HOME}/x").expect("entry");
        assert!(unset.compile(&vars()).is_none());
    }
}
