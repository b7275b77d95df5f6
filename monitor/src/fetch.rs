//! `ci --offline-build`: `cargo fetch` first, then the build offline, so that any network during
//! the build proper stands out. Fetching downloads and unpacks crates but runs none of their code
//! (no build script, no proc-macro), so it runs before the sensor, as the build's user.

use thiserror::Error;

use crate::{
    command::{self, SpawnError, Status},
    user::TargetUser,
};

/// The variable that makes cargo (and every cargo the build starts) stay offline.
pub const OFFLINE_ENV: (&str, &str) = ("CARGO_NET_OFFLINE", "true");

/// Why the fetch failed; the build was not started.
#[derive(Debug, Error)]
pub enum FetchError {
    /// `cargo fetch` could not be started.
    #[error("--offline-build: cannot run `{command}`: {source}")]
    Spawn {
        /// The fetch command line.
        command: String,
        /// Why.
        source: SpawnError,
    },
    /// `cargo fetch` failed.
    #[error(
        "--offline-build: `{command}` failed ({status}); the build was not started. Fix the fetch \
         (network, lock file) or run without --offline-build"
    )]
    Failed {
        /// The fetch command line.
        command: String,
        /// How it ended.
        status: String,
    },
}

/// The `cargo fetch` matching a watched command: the same cargo (and `+toolchain`) when the
/// command is a cargo invocation, with its `--manifest-path`, `--target`s and lock-file flags;
/// plain `cargo fetch` (cargo from PATH, the current directory) otherwise.
pub fn fetch_command(command: &[String]) -> Vec<String> {
    let is_cargo = command
        .first()
        .is_some_and(|p| p.rsplit('/').next() == Some("cargo"));
    if !is_cargo {
        return vec!["cargo".to_owned(), "fetch".to_owned()];
    }
    let mut fetch = vec![command[0].clone()];
    let mut rest = command[1..].iter().peekable();
    if let Some(toolchain) = rest.next_if(|a| a.starts_with('+')) {
        fetch.push(toolchain.clone());
    }
    fetch.push("fetch".to_owned());
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--locked" | "--frozen" => fetch.push(arg.clone()),
            "--manifest-path" | "--target" => {
                if let Some(value) = rest.next() {
                    fetch.extend([arg.clone(), value.clone()]);
                }
            }
            "--" => break,
            _ if arg.starts_with("--manifest-path=") || arg.starts_with("--target=") => {
                fetch.push(arg.clone());
            }
            _ => {}
        }
    }
    fetch
}

/// Runs the fetch for `command` as `user`, with the command's environment, and waits for it.
pub fn run(
    command: &[String],
    user: &TargetUser,
    env: &[(String, String)],
) -> Result<(), FetchError> {
    let fetch = fetch_command(command);
    let line = fetch.join(" ");
    eprintln!("buildwatch: --offline-build: {line} (not watched: it runs no crate code)");
    let child = command::spawn(&fetch, user, env, false, |_| Ok(())).map_err(|source| {
        FetchError::Spawn {
            command: line.clone(),
            source,
        }
    })?;
    match child.wait() {
        Ok(Status::Exited(0)) => Ok(()),
        Ok(status) => Err(FetchError::Failed {
            command: line,
            status: describe(status),
        }),
        Err(source) => Err(FetchError::Spawn {
            command: line,
            source,
        }),
    }
}

fn describe(status: Status) -> String {
    match status {
        Status::Exited(code) => format!("exit status {code}"),
        Status::Signaled(signal) => format!("killed by signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::fetch_command;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_cargo_build_fetches_with_the_same_cargo_manifest_and_targets() {
        assert_eq!(
            fetch_command(&args(
                "/opt/cargo +nightly build --release --manifest-path w/Cargo.toml --locked \
                 --target x86_64-unknown-linux-musl -p foo --target=aarch64-unknown-linux-gnu"
            )),
            args(
                "/opt/cargo +nightly fetch --manifest-path w/Cargo.toml --locked --target \
                 x86_64-unknown-linux-musl --target=aarch64-unknown-linux-gnu"
            )
        );
    }

    #[test]
    fn arguments_after_a_double_dash_are_not_cargo_s() {
        assert_eq!(
            fetch_command(&args("cargo run -- --target x")),
            args("cargo fetch")
        );
    }

    #[test]
    fn another_command_gets_a_plain_cargo_fetch() {
        assert_eq!(fetch_command(&args("sh -c make")), args("cargo fetch"));
        assert_eq!(fetch_command(&[]), args("cargo fetch"));
    }
}
