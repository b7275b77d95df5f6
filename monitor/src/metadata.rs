//! Workspace facts for attribution from `cargo metadata`, run (as the watched command's user,
//! offline, unwatched) next to the build when the watched command is a cargo invocation.
use std::{
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc::{Receiver, channel},
    time::Duration,
};

use crate::{attribution::BuildContext, command::find_program, user::TargetUser};

/// How long `cargo metadata` may take before it is abandoned.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The `--manifest-path` of a cargo command line, if it has one.
fn manifest_path(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--manifest-path" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--manifest-path=") {
            return Some(PathBuf::from(p));
        }
    }
    None
}

/// Starts `cargo metadata` for `command` (when it runs cargo) in the background; the receiver
/// yields the facts if it succeeds.
pub fn spawn(
    command: &[String],
    user: &TargetUser,
    env: &[(String, String)],
) -> Option<Receiver<BuildContext>> {
    let program = command.first()?;
    if program.rsplit('/').next() != Some("cargo") {
        return None;
    }
    let cargo = find_program(program, env)?;
    let mut cmd = Command::new(cargo);
    cmd.args(["metadata", "--format-version", "1", "--offline"]);
    if let Some(path) = manifest_path(&command[1..]) {
        cmd.arg("--manifest-path").arg(path);
    }
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if user.switch {
        // std drops supplementary groups when switching from root.
        cmd.uid(user.uid).gid(user.gid);
    }
    let cargo_home = env
        .iter()
        .find(|(k, _)| k == "CARGO_HOME")
        .map(|(_, v)| v.clone())
        .or_else(|| Some(user.home.join(".cargo").display().to_string()));
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("cargo-metadata".into())
        .spawn(move || {
            let Ok(mut child) = cmd.spawn() else { return };
            let stdout = child.stdout.take();
            let (out_tx, out_rx) = channel();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut s) = stdout {
                    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
                }
                let _ = out_tx.send(buf);
            });
            let Ok(buf) = out_rx.recv_timeout(TIMEOUT) else {
                let _ = child.kill();
                let _ = child.wait();
                return;
            };
            if !child.wait().is_ok_and(|s| s.success()) {
                return;
            }
            if let Ok(metadata) =
                cargo_metadata::MetadataCommand::parse(String::from_utf8_lossy(&buf))
            {
                let _ = tx.send(BuildContext::from_metadata(&metadata, cargo_home));
            }
        })
        .ok()?;
    Some(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_manifest_path() {
        let args: Vec<String> = ["build", "--manifest-path", "x/Cargo.toml"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(manifest_path(&args), Some(PathBuf::from("x/Cargo.toml")));
        let args: Vec<String> = ["build", "--manifest-path=y/Cargo.toml"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(manifest_path(&args), Some(PathBuf::from("y/Cargo.toml")));
        assert_eq!(manifest_path(&["build".to_string()]), None);
    }
}
