//! Runs `cargo metadata` for `buildwatch profiles`, as the user who invoked buildwatch (under
//! sudo, the sudo user: cargo must not write a root-owned lock file or registry cache into
//! their home), with that user's environment.
use std::{
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Stdio},
};

use cargo_metadata::cargo_platform::Cfg;
use thiserror::Error;

use super::Target;
use crate::{command::find_program, user::TargetUser};

/// `cargo metadata` could not be run or failed.
#[derive(Debug, Error)]
pub enum CargoError {
    /// No `cargo` (or `rustc`) in PATH.
    #[error("`{0}` is not in PATH")]
    NotFound(&'static str),
    /// The program could not be started.
    #[error("cannot run {program}: {error}")]
    Spawn {
        /// The program.
        program: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// It ran and failed; its own message follows.
    #[error("`{command}` failed:\n{stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Its output is not what `--format-version 1` promises.
    #[error("cannot read the output of cargo metadata: {0}")]
    Parse(String),
}

/// A command for `program`, run as `user` with exactly `env`.
fn as_user(
    program: &'static str,
    user: &TargetUser,
    env: &[(String, String)],
) -> Result<Command, CargoError> {
    let path = find_program(program, env).ok_or(CargoError::NotFound(program))?;
    let mut cmd = Command::new(path);
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    if user.switch {
        // std drops the supplementary groups when switching from root.
        cmd.uid(user.uid).gid(user.gid);
    }
    Ok(cmd)
}

fn output(program: &'static str, mut cmd: Command) -> Result<String, CargoError> {
    let out = cmd
        .output()
        .map_err(|error| CargoError::Spawn { program, error })?;
    if !out.status.success() {
        let command = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        return Err(CargoError::Failed {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host's target triple (`rustc -vV`), the platform whose dependencies a plain
/// `cargo build` builds.
fn host_triple(user: &TargetUser, env: &[(String, String)]) -> Result<String, CargoError> {
    let mut cmd = as_user("rustc", user, env)?;
    cmd.arg("-vV");
    let text = output("rustc", cmd)?;
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_owned())
        .ok_or_else(|| CargoError::Parse("`rustc -vV` printed no host line".to_owned()))
}

/// `rustc --print cfg` for `triple`: the cfg values a dependency's `[target.'cfg(..)']`
/// declaration is matched against.
fn target_cfg(
    triple: &str,
    user: &TargetUser,
    env: &[(String, String)],
) -> Result<Vec<Cfg>, CargoError> {
    let mut cmd = as_user("rustc", user, env)?;
    cmd.args(["--print", "cfg", "--target", triple]);
    output("rustc", cmd)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.parse::<Cfg>()
                .map_err(|e| CargoError::Parse(format!("`rustc --print cfg` printed {l:?}: {e}")))
        })
        .collect()
}

/// `cargo metadata` of the workspace at `manifest_path` (or the current directory's), for
/// `target` (default: the host) with the feature arguments `features` (`--features X`,
/// `--all-features`, `--no-default-features`, passed as given), as `user`, with that
/// platform's cfg values. Like `cargo build`, it uses Cargo.lock and may download the crates'
/// manifests; it builds nothing.
pub fn metadata(
    manifest_path: Option<&Path>,
    target: Option<&str>,
    features: &[String],
    user: &TargetUser,
    env: &[(String, String)],
) -> Result<(cargo_metadata::Metadata, Target), CargoError> {
    let platform = match target {
        Some(t) => t.to_owned(),
        None => host_triple(user, env)?,
    };
    let cfg = target_cfg(&platform, user, env)?;
    let mut cmd = as_user("cargo", user, env)?;
    cmd.args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(&platform)
        .args(features);
    if let Some(path) = manifest_path {
        cmd.arg("--manifest-path").arg(path);
    }
    let text = output("cargo", cmd)?;
    let metadata = cargo_metadata::MetadataCommand::parse(text)
        .map_err(|e| CargoError::Parse(e.to_string()))?;
    Ok((
        metadata,
        Target {
            triple: platform,
            cfg,
        },
    ))
}
