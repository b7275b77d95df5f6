//! Who the watched command runs as: never with the monitor's privileges.
//!
//! Under sudo it runs as SUDO_UID/SUDO_GID with that user's HOME; `--user NAME` names the user
//! explicitly; a monitor run by real root without sudo runs the command as root; a monitor run
//! by an ordinary user with capabilities runs it as that user.
use std::{ffi::CString, path::PathBuf};

use nix::unistd::{Gid, Uid, User};
use thiserror::Error;

/// The user the watched command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUser {
    /// User name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Home directory.
    pub home: PathBuf,
    /// Whether the monitor must switch to this user (it runs as someone else).
    pub switch: bool,
}

/// The user could not be determined.
#[derive(Debug, Error)]
pub enum UserError {
    /// `--user` names nobody.
    #[error("--user {0}: no such user in the password database")]
    NoSuchUser(String),
    /// SUDO_UID is set but malformed or unknown.
    #[error("SUDO_UID={0} does not name a user in the password database; pass --user NAME")]
    BadSudoUid(String),
    /// `--user` needs root.
    #[error("--user {0} needs buildwatch to run as root (it switches to that user)")]
    NotRoot(String),
    /// Looking users up failed.
    #[error("looking up users failed: {0}")]
    Lookup(String),
}

/// Picks the user from `--user`, then sudo's variables, then the monitor's own identity.
pub fn resolve(explicit: Option<&str>) -> Result<TargetUser, UserError> {
    let euid = Uid::effective();
    if let Some(name) = explicit {
        let user = match name.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(name),
        }
        .map_err(|e| UserError::Lookup(e.to_string()))?
        .ok_or_else(|| UserError::NoSuchUser(name.to_owned()))?;
        if !euid.is_root() && user.uid != euid {
            return Err(UserError::NotRoot(name.to_owned()));
        }
        return target(user, None, euid);
    }
    if euid.is_root()
        && let Ok(sudo_uid) = std::env::var("SUDO_UID")
    {
        let uid: u32 = sudo_uid
            .trim()
            .parse()
            .map_err(|_| UserError::BadSudoUid(sudo_uid.clone()))?;
        let user = User::from_uid(Uid::from_raw(uid))
            .map_err(|e| UserError::Lookup(e.to_string()))?
            .ok_or_else(|| UserError::BadSudoUid(sudo_uid.clone()))?;
        let gid = std::env::var("SUDO_GID")
            .ok()
            .and_then(|g| g.trim().parse().ok());
        return target(user, gid, euid);
    }
    let user = User::from_uid(euid)
        .map_err(|e| UserError::Lookup(e.to_string()))?
        .ok_or_else(|| UserError::Lookup(format!("uid {euid} has no password database entry")))?;
    target(user, None, euid)
}

fn target(user: User, gid: Option<u32>, euid: Uid) -> Result<TargetUser, UserError> {
    let gid = gid.unwrap_or(user.gid.as_raw());
    let groups = CString::new(user.name.clone())
        .ok()
        .and_then(|name| nix::unistd::getgrouplist(&name, Gid::from_raw(gid)).ok())
        .map(|gs| gs.into_iter().map(Gid::as_raw).collect())
        .unwrap_or_else(|| vec![gid]);
    Ok(TargetUser {
        switch: user.uid != euid,
        name: user.name,
        uid: user.uid.as_raw(),
        gid,
        groups,
        home: user.dir,
    })
}

/// The environment for the watched command: the monitor's own, with the identity variables of
/// the target user. Under sudo, whose `secure_path` usually lacks the user's rustup proxies,
/// `~/.cargo/bin` of that user is put first in PATH so that `cargo` is the user's own cargo.
pub fn command_env(user: &TargetUser) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if !user.switch {
        return env;
    }
    let mut set = |key: &str, value: String| {
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value));
    };
    set("HOME", user.home.to_string_lossy().into_owned());
    set("USER", user.name.clone());
    set("LOGNAME", user.name.clone());
    let cargo_bin = user.home.join(".cargo/bin");
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
    if cargo_bin.is_dir() && !std::env::split_paths(&path).any(|p| p == cargo_bin) {
        set("PATH", format!("{}:{path}", cargo_bin.display()));
    }
    env
}
