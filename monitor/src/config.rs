//! `.buildwatch/config.toml`: settings a team keeps in its repository.
//!
//! ```toml
//! [policy]
//! fail-on = ["unexpected-network", "sensitive-read", "unexpected-exec"]   # or "all"
//! ```
//! Unknown keys are errors (fail closed), reported with the file and line.
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::policy::PolicyConfig;

/// The configuration file is unreadable or invalid.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// Reading failed.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// Parsing failed.
    #[error("{path}:{line}:{col}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
}

/// The settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `[policy]`.
    pub policy: PolicyConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    policy: Option<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPolicy {
    fail_on: Option<FailOn>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FailOn {
    All(String),
    Codes(Vec<String>),
}

/// Reads the configuration file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Config>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                error,
            });
        }
    };
    parse(&text, path).map(Some)
}

/// Parses configuration text.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let at = |offset: usize, message: String| {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::Parse {
            path: path.display().to_string(),
            line,
            col,
            message,
        }
    };
    let raw: Raw = toml::from_str(text)
        .map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().to_owned()))?;
    let mut config = Config::default();
    if let Some(fail_on) = raw.policy.and_then(|p| p.fail_on) {
        let spec = match fail_on {
            FailOn::All(s) => s,
            FailOn::Codes(codes) => codes.join(","),
        };
        let offset = text.find("fail-on").unwrap_or(0);
        config.policy.fail_on =
            PolicyConfig::parse_fail_on(&spec).map_err(|e| at(offset, format!("fail-on: {e}")))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Code;

    #[test]
    fn fail_on_lists_and_all() {
        let c = parse(
            "[policy]\nfail-on = [\"unexpected-exec\", \"sensitive-read\"]\n",
            Path::new("c.toml"),
        )
        .expect("parse");
        assert_eq!(
            c.policy.fail_on,
            [Code::SensitiveRead, Code::UnexpectedExec]
                .into_iter()
                .collect()
        );
        let c = parse("[policy]\nfail-on = \"all\"\n", Path::new("c.toml")).expect("parse");
        assert!(c.policy.fail_on.contains(&Code::DroppedExec));
        assert_eq!(
            parse("", Path::new("c.toml")).expect("empty").policy,
            PolicyConfig::default()
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse(
            "[policy]\nfail_on = []\n",
            Path::new(".buildwatch/config.toml"),
        )
        .expect_err("unknown key");
        assert!(
            e.to_string()
                .starts_with(".buildwatch/config.toml:2:1: unknown field `fail_on`"),
            "{e}"
        );
        let e =
            parse("[policy]\nfail-on = [\"bogus\"]\n", Path::new("c.toml")).expect_err("bad code");
        assert!(
            e.to_string()
                .starts_with("c.toml:2:1: fail-on: unknown finding code `bogus`"),
            "{e}"
        );
    }
}
