//! Where a guarded build's profiles and policy come from: its workspace, found from the root
//! process's working directory (or `--manifest-path`) by walking up to the `Cargo.toml` that
//! `.buildwatch/` sits next to, else to the outermost `Cargo.toml`. The workspace's
//! `.buildwatch/profiles` and `.buildwatch/config.toml` then apply exactly as they do to
//! `buildwatch ci` run in that directory, with the shipped profiles for every crate they leave
//! out; a build outside any workspace is checked with the shipped profiles and the default
//! policy.
use std::path::{Path, PathBuf};

use crate::{
    attribution::BuildContext,
    config,
    model::Exec,
    policy::PolicyConfig,
    profile::{self, ProfileSet},
    shipped,
};

/// How far up the walk goes.
const MAX_UP: usize = 32;

/// What a guarded build is checked with.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The workspace's root (None: no Cargo.toml above the build's directory).
    pub root: Option<PathBuf>,
    /// The workspace's profiles and the shipped ones.
    pub profiles: ProfileSet,
    /// The workspace's policy, or the default.
    pub policy: PolicyConfig,
    /// Problems with the workspace's own files (they were ignored: shipped profiles, default
    /// policy), to be reported with the build.
    pub problems: Vec<String>,
}

/// The directory a cargo command line runs in: its `--manifest-path`'s directory (relative to
/// `cwd`), else `cwd`.
pub fn start_dir(exec: &Exec) -> Option<PathBuf> {
    let cwd = PathBuf::from(exec.cwd.as_deref()?);
    let mut args = exec.argv.iter().skip(1);
    while let Some(a) = args.next() {
        let manifest = if a == "--manifest-path" {
            args.next().map(String::as_str)
        } else {
            a.strip_prefix("--manifest-path=")
        };
        if let Some(m) = manifest {
            let path = cwd.join(m);
            return path.parent().map(Path::to_path_buf);
        }
    }
    Some(cwd)
}

/// The workspace root for a build started in `dir`: the nearest directory with both a
/// `Cargo.toml` and `.buildwatch/`, else the outermost directory with a `Cargo.toml`.
pub fn find_root(dir: &Path) -> Option<PathBuf> {
    let mut outermost = None;
    for d in dir.ancestors().take(MAX_UP) {
        if d.join("Cargo.toml").is_file() {
            if d.join(".buildwatch").is_dir() {
                return Some(d.to_path_buf());
            }
            outermost = Some(d.to_path_buf());
        }
    }
    outermost
}

/// The shipped profiles, parsed once: every build root would otherwise parse them again.
fn shipped_profiles() -> &'static Result<Vec<profile::Profile>, String> {
    static SHIPPED: std::sync::OnceLock<Result<Vec<profile::Profile>, String>> =
        std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| shipped::profiles().map_err(|e| e.to_string()))
}

impl Workspace {
    /// The workspace of a build started in `dir`, its profiles and policy loaded.
    pub fn for_dir(dir: Option<&Path>) -> Self {
        let root = dir.and_then(find_root);
        let mut problems = Vec::new();
        let user = match &root {
            Some(r) if r.join(".buildwatch/profiles").is_dir() => {
                let dir = r.join(".buildwatch/profiles");
                profile::load_dir(&dir).unwrap_or_else(|errors| {
                    problems.push(format!(
                        "invalid profiles in {} (ignored: the shipped profiles alone apply): {}",
                        dir.display(),
                        errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                    Vec::new()
                })
            }
            _ => Vec::new(),
        };
        let shipped = match shipped_profiles() {
            Ok(profiles) => profiles.clone(),
            Err(e) => {
                problems.push(format!("the shipped profiles do not load: {e}"));
                Vec::new()
            }
        };
        let policy = match &root {
            Some(r) => match config::load(&r.join(".buildwatch/config.toml")) {
                Ok(Some(cfg)) => cfg.policy,
                Ok(None) => PolicyConfig::default(),
                Err(e) => {
                    problems.push(format!("{e} (ignored: the default policy applies)"));
                    PolicyConfig::default()
                }
            },
            None => PolicyConfig::default(),
        };
        Self {
            root,
            profiles: ProfileSet::new(user, shipped),
            policy,
            problems,
        }
    }

    /// What attribution can know without `cargo metadata` (which the guard does not run: it
    /// would be a build of its own, and would run as root in the user's project).
    pub fn context(&self, exec: &Exec, home: Option<&Path>) -> BuildContext {
        let root = self.root.as_ref().map(|r| r.display().to_string());
        let target_dir = exec
            .env
            .get("CARGO_TARGET_DIR")
            .cloned()
            .or_else(|| root.as_ref().map(|r| format!("{r}/target")));
        let cargo_home = exec.env.get("CARGO_HOME").cloned().or_else(|| {
            exec.env
                .get("HOME")
                .map(PathBuf::from)
                .or_else(|| home.map(Path::to_path_buf))
                .map(|h| h.join(".cargo").display().to_string())
        });
        BuildContext {
            workspace_root: root,
            target_dir,
            cargo_home,
            ..BuildContext::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(cwd: &str, argv: &[&str]) -> Exec {
        Exec {
            cwd: Some(cwd.to_owned()),
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            ..Exec::default()
        }
    }

    #[test]
    fn the_manifest_path_decides_where_to_look() {
        assert_eq!(
            start_dir(&exec("/w", &["cargo", "build"])),
            Some(PathBuf::from("/w"))
        );
        assert_eq!(
            start_dir(&exec(
                "/w",
                &["cargo", "check", "--manifest-path", "a/Cargo.toml"]
            )),
            Some(PathBuf::from("/w/a"))
        );
        assert_eq!(
            start_dir(&exec("/w", &["cargo", "--manifest-path=/x/Cargo.toml"])),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(start_dir(&Exec::default()), None);
    }

    #[test]
    fn profiles_next_to_the_workspace_else_the_outermost_manifest() {
        let root = std::env::temp_dir().join(format!("bw-guard-ws-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let member = root.join("ws/crates/a");
        std::fs::create_dir_all(member.join("src")).expect("mkdir");
        std::fs::write(root.join("ws/Cargo.toml"), "[workspace]\n").expect("write");
        std::fs::write(member.join("Cargo.toml"), "[package]\n").expect("write");
        assert_eq!(find_root(&member.join("src")), Some(root.join("ws")));
        std::fs::create_dir_all(member.join(".buildwatch/profiles")).expect("mkdir");
        assert_eq!(find_root(&member.join("src")), Some(member.clone()));
        // A broken profile is reported and left out, never fatal.
        std::fs::write(member.join(".buildwatch/profiles/x.toml"), "not = [toml").expect("w");
        let ws = Workspace::for_dir(Some(&member));
        assert_eq!(ws.root.as_deref(), Some(member.as_path()));
        assert_eq!(ws.problems.len(), 1, "{:?}", ws.problems);
        assert!(ws.problems[0].contains("x.toml"), "{:?}", ws.problems);
        let outside = Workspace::for_dir(Some(Path::new("/")));
        assert!(outside.root.is_none() && outside.problems.is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }
}
