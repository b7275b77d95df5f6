//! Profile errors: where (file, line, column), what, and how to fix it.
//!
//! Display is one line `path:line:col: message`, then `  help: …` on a second line when a fix is
//! known. Profiles fail closed: every one of these stops the profile from loading.
use std::{fmt, path::PathBuf};

use super::vars::Var;

/// A 1-based line and column (in characters) in a profile file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub col: u32,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text; mid-character offsets count
    /// as the character they fall in).
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let col = before[line_start..].chars().count() + 1;
        Location {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A profile that could not be loaded: the file, the place in it, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}{}", path.display(), At(*location), Help(kind.help()))]
pub struct ProfileError {
    /// The profile file (or the built-in profile's name).
    pub path: PathBuf,
    /// Where in the file; `None` when the error is about the file as a whole.
    pub location: Option<Location>,
    /// What is wrong (boxed: errors are rare, results that carry them common).
    pub kind: Box<ErrorKind>,
}

impl ProfileError {
    /// An error about `path`, at `location`.
    pub fn new(path: impl Into<PathBuf>, location: Option<Location>, kind: ErrorKind) -> Self {
        ProfileError {
            path: path.into(),
            location,
            kind: Box::new(kind),
        }
    }
}

/// Formats `:line:col` when there is a location.
struct At(Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, ":{location}"),
            None => Ok(()),
        }
    }
}

/// Formats the help line, when there is one.
struct Help(Option<String>);

impl fmt::Display for Help {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(help) => write!(f, "\n  help: {help}"),
            None => Ok(()),
        }
    }
}

/// What is wrong with a profile. The message is the first line of [`ProfileError`]'s Display;
/// [`ErrorKind::help`] gives the second.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read the profile: {error}")]
    Io {
        /// The underlying error.
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("invalid TOML: {message}")]
    Syntax {
        /// The TOML parser's message.
        message: String,
    },
    /// A top-level key that schema 1 does not have.
    #[error("unknown key `{key}`")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The known key it most likely means.
        suggestion: Option<&'static str>,
    },
    /// A top-level table that is not a role table.
    #[error("unknown table `[{name}]`")]
    UnknownRoleTable {
        /// The table name as written.
        name: String,
        /// The role table it most likely means.
        suggestion: Option<&'static str>,
    },
    /// A key inside `[build-script]` or `[proc-macro]` that schema 1 does not have.
    #[error("unknown key `{key}` in `[{role}]`")]
    UnknownRoleKey {
        /// The role table (`build-script`, `proc-macro`).
        role: &'static str,
        /// The key as written.
        key: String,
        /// The known key it most likely means.
        suggestion: Option<&'static str>,
    },
    /// A value of the wrong TOML type.
    #[error("{what} must be {expected}, found {found}")]
    WrongType {
        /// What has the wrong type: "`build-script.exec`", "entry 2 of `build-script.exec`".
        what: String,
        /// What the key takes.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
        /// How the key is written correctly.
        example: String,
    },
    /// No `schema` key.
    #[error("missing `schema`")]
    MissingSchema,
    /// A schema version this buildwatch does not read.
    #[error("schema = {found} is not supported; this buildwatch reads schema 1")]
    UnsupportedSchema {
        /// The version found, as written.
        found: String,
    },
    /// No `crate` key.
    #[error("missing `crate`")]
    MissingCrate {
        /// The file name without `.toml`, which `crate` must equal.
        stem: String,
    },
    /// `crate` is not a crate name.
    #[error("`{name}` is not a crate name")]
    BadCrateName {
        /// The name as written.
        name: String,
    },
    /// `crate` differs from the file name.
    #[error("crate = \"{krate}\" does not match the file name `{stem}.toml`")]
    CrateMismatch {
        /// The crate named in the file.
        krate: String,
        /// The file name without `.toml`.
        stem: String,
    },
    /// A `versions` entry that is not a semver requirement.
    #[error("invalid version requirement \"{text}\": {reason}")]
    BadVersionReq {
        /// The entry as written.
        text: String,
        /// semver's explanation.
        reason: String,
    },
    /// `versions = []`, which would cover no version at all.
    #[error("`versions` is an empty list, which covers no version")]
    EmptyVersions,
    /// A path or program glob that does not compile.
    #[error("invalid glob \"{text}\": {reason}")]
    BadGlob {
        /// The entry as written.
        text: String,
        /// globset's explanation.
        reason: String,
    },
    /// A path pattern that is neither absolute nor starts with a variable.
    #[error("path pattern \"{text}\" is not absolute")]
    RelativePath {
        /// The entry as written.
        text: String,
    },
    /// A path pattern with a malformed path.
    #[error("path pattern \"{text}\" {problem}")]
    BadPath {
        /// The entry as written.
        text: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// `${NAME}` with a name that is not one of the variables.
    #[error("unknown variable `${{{name}}}`")]
    UnknownVariable {
        /// The name between the braces.
        name: String,
    },
    /// `${` without its closing `}`.
    #[error("unterminated variable in \"{text}\"")]
    UnterminatedVariable {
        /// The entry as written.
        text: String,
    },
    /// A variable anywhere but at the start of a pattern, or not followed by `/`.
    #[error(
        "misplaced variable in \"{text}\": a variable can only start a pattern, followed by `/`"
    )]
    MisplacedVariable {
        /// The entry as written.
        text: String,
    },
    /// A network entry whose host is an invalid IP address.
    #[error("invalid IP address \"{host}\"{}", within(.text, .host))]
    BadIp {
        /// The entry as written.
        text: String,
        /// The host part.
        host: String,
    },
    /// A network entry whose host is an invalid CIDR block.
    #[error("invalid CIDR \"{host}\"{}: {reason}", within(.text, .host))]
    BadCidr {
        /// The entry as written.
        text: String,
        /// The host part.
        host: String,
        /// Why it is invalid.
        reason: String,
        /// The block that was probably meant (host bits cleared).
        suggestion: Option<String>,
    },
    /// A network entry with an invalid port.
    #[error("invalid port \"{port}\" in \"{text}\"")]
    BadPort {
        /// The entry as written.
        text: String,
        /// The port part.
        port: String,
    },
    /// A network entry whose host is not an address, a CIDR block, `*` or a DNS name.
    #[error("invalid host \"{host}\"{}: {reason}", within(.text, .host))]
    BadHost {
        /// The entry as written.
        text: String,
        /// The host part.
        host: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A malformed `unix:` network entry.
    #[error("invalid unix socket entry \"{text}\": {reason}")]
    BadUnix {
        /// The entry as written.
        text: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A `link` entry that is not `search:`, `arg:`, `env:` or a library.
    #[error("invalid link entry \"{text}\": {reason}")]
    BadLink {
        /// The entry as written.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// Two files of one profile directory are for the same crate.
    #[error("a second profile for crate `{krate}`: {} already has one", other.display())]
    DuplicateProfile {
        /// The crate.
        krate: String,
        /// The file that was loaded first.
        other: PathBuf,
    },
}

/// ` in "<text>"` when `part` is only part of the entry `text`.
fn within(text: &str, part: &str) -> String {
    if text == part {
        String::new()
    } else {
        format!(" in \"{text}\"")
    }
}

/// What is wrong with a path pattern's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// The pattern is empty.
    Empty,
    /// A `.` or `..` component: watched paths are resolved, so it could never match.
    DotComponent,
    /// An empty component (`//`).
    DoubleSlash,
    /// A trailing `/`.
    TrailingSlash,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::Empty => "is empty",
            PathProblem::DotComponent => "has a `.` or `..` component",
            PathProblem::DoubleSlash => "has an empty component (`//`)",
            PathProblem::TrailingSlash => "ends with `/`",
        })
    }
}

/// The variables, as written in help text.
fn variable_list() -> String {
    Var::ALL
        .iter()
        .map(|var| format!("${{{}}}", var.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

const GLOB_HELP: &str = "globs: `*` and `?` stay within one path component, `**` spans any \
                         number of them, `[abc]` is a class, `{a,b}` alternatives; \\ escapes";
const NETWORK_HELP: &str = "write host[:port] with host an IPv4 address, [IPv6], a CIDR block \
                            (10.0.0.0/8, [fd00::/8]), * or a DNS name, and port a number or *";

impl ErrorKind {
    /// What the user can do about it, when buildwatch knows.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ErrorKind::Io { .. } | ErrorKind::Syntax { .. } => return None,
            ErrorKind::BadVersionReq { .. } => "write a semver requirement such as \"^1.2\", \
                \">=1.0, <3\" or \"=0.4.7\" (several: a list, any may match)"
                .to_owned(),
            ErrorKind::UnknownKey { suggestion, .. } => with_suggestion(
                suggestion.map(|s| format!("`{s}`")),
                "the top-level keys are schema, crate, versions, [build-script] and [proc-macro]",
            ),
            ErrorKind::UnknownRoleTable { suggestion, .. } => with_suggestion(
                suggestion.map(|s| format!("`[{s}]`")),
                "a profile's tables are [build-script] and [proc-macro]",
            ),
            ErrorKind::UnknownRoleKey { suggestion, .. } => with_suggestion(
                suggestion.map(|s| format!("`{s}`")),
                "a role's keys are exec, read, write, sensitive-read, network and link",
            ),
            ErrorKind::WrongType { example, .. } => format!("write it as {example}"),
            ErrorKind::MissingSchema => "add `schema = 1` at the top of the file".to_owned(),
            ErrorKind::UnsupportedSchema { .. } => {
                "write `schema = 1`, or use a buildwatch that reads this schema".to_owned()
            }
            ErrorKind::MissingCrate { stem } => {
                format!("add `crate = \"{stem}\"` (the file name without .toml)")
            }
            ErrorKind::BadCrateName { .. } => {
                "a crate name has only letters, digits, `-` and `_`".to_owned()
            }
            ErrorKind::CrateMismatch { krate, stem } => {
                format!("rename the file to `{krate}.toml`, or write `crate = \"{stem}\"`")
            }
            ErrorKind::EmptyVersions => {
                "remove `versions` to cover every version, or list requirements".to_owned()
            }
            ErrorKind::BadGlob { .. } => GLOB_HELP.to_owned(),
            ErrorKind::RelativePath { text } => {
                if let Some(rest) = text.strip_prefix("~/") {
                    format!("write ~ as ${{HOME}}: \"${{HOME}}/{rest}\"")
                } else if text.starts_with('$') {
                    format!(
                        "write variables in braces; the variables are {}",
                        variable_list()
                    )
                } else {
                    format!(
                        "start it with `/` or a variable such as \"${{CARGO_MANIFEST_DIR}}/{text}\""
                    )
                }
            }
            ErrorKind::BadPath { problem, .. } => match problem {
                PathProblem::Empty => "remove the entry".to_owned(),
                PathProblem::DotComponent => {
                    "write the path without `.` and `..`: buildwatch sees resolved paths".to_owned()
                }
                PathProblem::DoubleSlash => "write a single `/` between components".to_owned(),
                PathProblem::TrailingSlash => {
                    "remove the trailing `/`; write `dir/**` for everything under a directory"
                        .to_owned()
                }
            },
            ErrorKind::UnknownVariable { .. } | ErrorKind::UnterminatedVariable { .. } => {
                format!("the variables are {}", variable_list())
            }
            ErrorKind::MisplacedVariable { .. } => {
                "every variable is an absolute directory: write it first, as in \
                 \"${OUT_DIR}/**\""
                    .to_owned()
            }
            ErrorKind::BadIp { host, .. } => {
                if host.contains(':') {
                    "write IPv6 addresses in brackets, as in [::1]:443".to_owned()
                } else {
                    "write IPv4 addresses as four numbers 0-255, as in 127.0.0.1".to_owned()
                }
            }
            ErrorKind::BadCidr { suggestion, .. } => match suggestion {
                Some(block) => format!("did you mean {block}?"),
                None => "write an address and a prefix length, as in 10.0.0.0/8 or [fd00::/8]"
                    .to_owned(),
            },
            ErrorKind::BadPort { .. } => {
                "a port is a number from 1 to 65535, or * for any port".to_owned()
            }
            ErrorKind::BadHost { .. } => NETWORK_HELP.to_owned(),
            ErrorKind::BadLink { .. } => "write search:/dir/glob, arg:LINKER-ARGUMENT, \
                env:NAME=VALUE or a library such as static=z (docs/profiles.md, `link`)"
                .to_owned(),
            ErrorKind::BadUnix { .. } => "write unix:/absolute/path/glob for a socket file, or \
                                          unix:@name for an abstract socket"
                .to_owned(),
            ErrorKind::DuplicateProfile { .. } => {
                "keep one file per crate (`-` and `_` in crate names are the same)".to_owned()
            }
        })
    }
}

fn with_suggestion(suggestion: Option<String>, known: &str) -> String {
    match suggestion {
        Some(suggestion) => format!("did you mean {suggestion}? {known}"),
        None => known.to_owned(),
    }
}

/// The candidate `word` most likely means: equal up to case and `-`/`_`, a prefix of it (or
/// it of the candidate), or within edit distance 2.
pub(crate) fn suggest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let word = norm(word);
    candidates
        .iter()
        .map(|&candidate| {
            let c = norm(candidate);
            let score = if c == word {
                0
            } else if word.len() >= 3 && (c.starts_with(&word) || word.starts_with(&c)) {
                1
            } else {
                edit_distance(&word, &c) + 1
            };
            (score, candidate)
        })
        .filter(|&(score, _)| score <= 3)
        .min_by_key(|&(score, _)| score)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(Location::from_offset(text, 0), Location { line: 1, col: 1 });
        assert_eq!(Location::from_offset(text, 6), Location { line: 2, col: 1 });
        // 'é' is two bytes but one column.
        assert_eq!(
            Location::from_offset(text, 12),
            Location { line: 2, col: 6 }
        );
        assert_eq!(
            Location::from_offset(text, 999),
            Location { line: 3, col: 1 }
        );
    }

    #[test]
    fn suggestions() {
        let roles = ["build-script", "proc-macro"];
        assert_eq!(suggest("build_script", &roles), Some("build-script"));
        assert_eq!(suggest("buildscript", &roles), Some("build-script"));
        assert_eq!(suggest("Proc_Macro", &roles), Some("proc-macro"));
        assert_eq!(suggest("build", &roles), Some("build-script"));
        assert_eq!(suggest("rustc", &roles), None);
        let keys = ["exec", "read", "write", "sensitive-read", "network"];
        assert_eq!(suggest("execs", &keys), Some("exec"));
        assert_eq!(suggest("sensitive_read", &keys), Some("sensitive-read"));
        assert_eq!(suggest("net", &keys), Some("network"));
        assert_eq!(suggest("files", &keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
