//! Path and program patterns: absolute globs that may start with a variable.
use globset::{Glob, GlobBuilder};

use super::{
    error::{ErrorKind, PathProblem},
    vars::{Var, Vars},
};

/// Stands for a variable's value while checking a pattern's glob syntax at parse time.
const PLACEHOLDER: &str = "/buildwatch-variable";

/// Builds a glob with the profile rules: `*` and `?` never match `/` (`**` does), `\` escapes.
pub(crate) fn glob(text: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(text)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// An absolute path glob, optionally starting with a variable (`${OUT_DIR}/**`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathPattern {
    base: Option<Var>,
    rest: String,
}

impl PathPattern {
    /// Parses and checks a path pattern: absolute (`/…`) or a variable followed by `/…` or
    /// nothing; no variable elsewhere; no `.`, `..` or empty components; valid glob syntax.
    pub fn parse(text: &str) -> Result<Self, ErrorKind> {
        let (base, rest) = split_variable(text)?;
        if base.is_none() && !rest.starts_with('/') {
            return Err(if rest.is_empty() {
                ErrorKind::BadPath {
                    text: text.to_owned(),
                    problem: PathProblem::Empty,
                }
            } else {
                ErrorKind::RelativePath {
                    text: text.to_owned(),
                }
            });
        }
        if rest.contains("${") {
            return Err(ErrorKind::MisplacedVariable {
                text: text.to_owned(),
            });
        }
        if let Some(problem) = path_problem(rest, base.is_some()) {
            return Err(ErrorKind::BadPath {
                text: text.to_owned(),
                problem,
            });
        }
        let check = match base {
            Some(_) => format!("{PLACEHOLDER}{rest}"),
            None => rest.to_owned(),
        };
        glob(&check).map_err(|error| ErrorKind::BadGlob {
            text: text.to_owned(),
            reason: error.kind().to_string(),
        })?;
        Ok(PathPattern {
            base,
            rest: rest.to_owned(),
        })
    }

    /// The variable the pattern starts with, if any.
    pub fn base(&self) -> Option<Var> {
        self.base
    }

    /// The glob after the variable (the whole pattern when there is none).
    pub fn rest(&self) -> &str {
        &self.rest
    }

    /// The glob with the variable replaced by its value (glob characters in the value
    /// escaped). `None` when the variable is unset: the pattern then matches nothing.
    pub fn resolve(&self, vars: &Vars) -> Option<String> {
        let Some(var) = self.base else {
            return Some(self.rest.clone());
        };
        let value = vars.get(var)?;
        Some(match (value, self.rest.is_empty()) {
            ("/", true) => "/".to_owned(),
            ("/", false) => self.rest.clone(),
            _ => format!("{}{}", globset::escape(value), self.rest),
        })
    }
}

/// Splits `${VAR}` off the front of `text`; checks that it is known and followed by `/` or
/// nothing.
fn split_variable(text: &str) -> Result<(Option<Var>, &str), ErrorKind> {
    let Some(after) = text.strip_prefix("${") else {
        return Ok((None, text));
    };
    let Some(end) = after.find('}') else {
        return Err(ErrorKind::UnterminatedVariable {
            text: text.to_owned(),
        });
    };
    let name = &after[..end];
    let var = Var::from_name(name).ok_or_else(|| ErrorKind::UnknownVariable {
        name: name.to_owned(),
    })?;
    let rest = &after[end + 1..];
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(ErrorKind::MisplacedVariable {
            text: text.to_owned(),
        });
    }
    Ok((Some(var), rest))
}

/// Checks the components of an absolute path (or of the part after a variable).
fn path_problem(path: &str, after_variable: bool) -> Option<PathProblem> {
    if path.is_empty() || (path == "/" && !after_variable) {
        return None;
    }
    if path.ends_with('/') {
        return Some(PathProblem::TrailingSlash);
    }
    for component in path.split('/').skip(1) {
        match component {
            "" => return Some(PathProblem::DoubleSlash),
            "." | ".." => return Some(PathProblem::DotComponent),
            _ => {}
        }
    }
    None
}

/// A program an `exec` entry allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExecPattern {
    /// A glob (no `/`) matched against the executable's file name: `cc`, `x86_64-*-gcc*`.
    Name(String),
    /// A glob matched against the executable's absolute path.
    Path(PathPattern),
}

impl ExecPattern {
    /// Parses an `exec` entry: a path pattern when it starts with `/` or a variable, else a
    /// file-name glob (which must not contain `/`).
    pub fn parse(text: &str) -> Result<Self, ErrorKind> {
        if text.starts_with('/') || text.starts_with('$') || text.starts_with('~') {
            return PathPattern::parse(text).map(ExecPattern::Path);
        }
        if text.is_empty() {
            return Err(ErrorKind::BadPath {
                text: String::new(),
                problem: PathProblem::Empty,
            });
        }
        if text.contains('/') {
            return Err(ErrorKind::RelativePath {
                text: text.to_owned(),
            });
        }
        glob(text).map_err(|error| ErrorKind::BadGlob {
            text: text.to_owned(),
            reason: error.kind().to_string(),
        })?;
        Ok(ExecPattern::Name(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            out_dir: Some("/t/build/x-1/out".into()),
            home: Some("/home/u [1]".into()),
            tmpdir: Some("/".into()),
            ..Vars::default()
        }
    }

    #[test]
    fn parses_absolute_and_variable_patterns() {
        let p = PathPattern::parse("/usr/include/**").expect("absolute");
        assert_eq!((p.base(), p.rest()), (None, "/usr/include/**"));
        let p = PathPattern::parse("${OUT_DIR}/**").expect("variable");
        assert_eq!((p.base(), p.rest()), (Some(Var::OutDir), "/**"));
        let p = PathPattern::parse("${OUT_DIR}").expect("bare variable");
        assert_eq!((p.base(), p.rest()), (Some(Var::OutDir), ""));
        assert!(PathPattern::parse("/").is_ok());
    }

    #[test]
    fn rejects_bad_paths() {
        let kind = |text: &str| PathPattern::parse(text).expect_err(text);
        assert!(matches!(kind("include/**"), ErrorKind::RelativePath { .. }));
        assert!(matches!(kind("~/.netrc"), ErrorKind::RelativePath { .. }));
        assert!(matches!(kind(""), ErrorKind::BadPath { .. }));
        assert!(matches!(kind("/a/../b"), ErrorKind::BadPath { .. }));
        assert!(matches!(kind("/a/./b"), ErrorKind::BadPath { .. }));
        assert!(matches!(kind("/a//b"), ErrorKind::BadPath { .. }));
        assert!(matches!(kind("/a/"), ErrorKind::BadPath { .. }));
        assert!(matches!(kind("${OUT_DIR}/"), ErrorKind::BadPath { .. }));
        assert!(matches!(
            kind("${PATH}/x"),
            ErrorKind::UnknownVariable { .. }
        ));
        assert!(matches!(
            kind("${OUT_DIR/x"),
            ErrorKind::UnterminatedVariable { .. }
        ));
        assert!(matches!(
            kind("${OUT_DIR}x"),
            ErrorKind::MisplacedVariable { .. }
        ));
        assert!(matches!(
            kind("/x/${HOME}"),
            ErrorKind::MisplacedVariable { .. }
        ));
        assert!(matches!(kind("/usr/[inc"), ErrorKind::BadGlob { .. }));
        assert!(matches!(kind("${HOME}/{a,b"), ErrorKind::BadGlob { .. }));
    }

    #[test]
    fn resolves_with_escaped_values() {
        let vars = vars();
        let resolve = |text: &str| PathPattern::parse(text).expect(text).resolve(&vars);
        assert_eq!(
            resolve("${OUT_DIR}/**").as_deref(),
            Some("/t/build/x-1/out/**")
        );
        assert_eq!(
            resolve("${HOME}/.netrc").as_deref(),
            Some("/home/u [[]1[]]/.netrc")
        );
        assert_eq!(resolve("${TMPDIR}/x").as_deref(), Some("/x"));
        assert_eq!(resolve("${TMPDIR}").as_deref(), Some("/"));
        assert_eq!(resolve("${CARGO_HOME}/x"), None);
        assert_eq!(resolve("/etc/x").as_deref(), Some("/etc/x"));
    }

    #[test]
    fn exec_patterns() {
        assert_eq!(
            ExecPattern::parse("x86_64-*-gcc*").expect("name"),
            ExecPattern::Name("x86_64-*-gcc*".into())
        );
        assert!(matches!(
            ExecPattern::parse("${RUSTC_SYSROOT}/bin/rustc").expect("path"),
            ExecPattern::Path(_)
        ));
        assert!(matches!(
            ExecPattern::parse("bin/cc"),
            Err(ErrorKind::RelativePath { .. })
        ));
        assert!(matches!(
            ExecPattern::parse("$CC"),
            Err(ErrorKind::RelativePath { .. })
        ));
        assert!(matches!(
            ExecPattern::parse("cc[").expect_err("glob"),
            ErrorKind::BadGlob { .. }
        ));
        assert!(matches!(
            ExecPattern::parse(""),
            Err(ErrorKind::BadPath { .. })
        ));
    }
}
