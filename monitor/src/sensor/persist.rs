//! Persistence targets by identity, for `--enforce`'s kill in the kernel: at start, the files
//! and directories `persistence-write` names (shell startup files, `~/.profile`, crontabs,
//! systemd user units, autostart entries, `~/.cargo/bin`, editor hooks, the workspace's git
//! hooks, the CI job's channel files) are resolved to (device, inode). An open for writing of
//! one of those files, or of any file in one of those directories (a file created there
//! included), is known to the kernel whatever name reached it, and kills.
//!
//! Decided by the same classifier as the finding: a file is a target when
//! `persistence_write(path)` says so, a directory when a file created in it would be. What is
//! decided by path only, in userspace (reported, not killed): a target that did not exist at
//! start and whose directory is not a persistence directory (a new `~/.bash_profile`, a new
//! `~/.ssh/authorized_keys`), persistence reached by rename or link onto the target (the rename
//! completes; the kernel only sees the descriptor of an open), and git hooks of repositories
//! other than the workspace's.
use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
};

use monitor_common::InodeKey;

use crate::{model::ProtectedFile, policy::CiChannels, profile::sensitive};

/// Most targets given to the kernel (the size of its `PERSIST` map).
pub const MAX_PERSIST: usize = 16384;
/// How deep the walk goes under a persistence tree.
const MAX_DEPTH: usize = 6;
/// Most directory entries the walk of one tree looks at.
const TREE_BUDGET: usize = 4096;
/// Bit of a `PERSIST` value marking a directory (as `enforce_kill::PERSIST_DIR` in the kernel).
const PERSIST_DIR: u32 = 1 << 31;

/// The persistence targets, in the order the kernel numbers them, and their identities.
#[derive(Debug, Default)]
pub struct PersistSet {
    /// The targets (`KillRecord::object` of a persistence kill is an index here, plus one).
    pub targets: Vec<ProtectedFile>,
    /// Their identities and whether each is a directory, one per target.
    pub keys: Vec<(InodeKey, bool)>,
    /// Targets found but not given to the kernel (more than [`MAX_PERSIST`]).
    pub left_out: usize,
}

impl PersistSet {
    /// Resolves the targets under `homes`, the system-wide ones, the git hooks of the
    /// repository `workspace` is in, and the CI channels `ci` names.
    pub fn resolve(homes: &[&Path], workspace: Option<&Path>, ci: &CiChannels) -> Self {
        let mut set = Self::default();
        let mut seen = HashSet::new();
        let mut places: Vec<(PathBuf, Option<String>)> = Vec::new();
        for home in homes {
            let text = home.to_string_lossy().into_owned();
            for place in sensitive::persistence_places(&text) {
                places.push((PathBuf::from(place), Some(text.clone())));
            }
        }
        // /etc/crontab, /etc/cron.d, /etc/cron.daily, ...
        if let Ok(entries) = fs::read_dir("/etc") {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("cron") {
                    places.push((e.path(), None));
                }
            }
        }
        if let Some(ws) = workspace
            && let Some(repo) = ws.ancestors().find(|d| d.join(".git").is_dir())
        {
            places.push((repo.join(".git/hooks"), None));
        }
        for place in ci.places() {
            places.push((PathBuf::from(place), None));
        }
        for (place, home) in places {
            let mut budget = TREE_BUDGET;
            // The place itself may be a symlink (a dotfile kept in a repository): what the
            // kernel sees opened is what it points to.
            let Ok(meta) = fs::metadata(&place) else {
                continue;
            };
            set.walk(&place, meta, home.as_deref(), ci, 0, &mut budget, &mut seen);
        }
        set
    }

    #[expect(clippy::too_many_arguments, reason = "one recursive walk's state")]
    fn walk(
        &mut self,
        path: &Path,
        meta: fs::Metadata,
        home: Option<&str>,
        ci: &CiChannels,
        depth: usize,
        budget: &mut usize,
        seen: &mut HashSet<InodeKey>,
    ) {
        let text = path.to_string_lossy();
        let category =
            |p: &str| sensitive::persistence_write(p, home).or_else(|| ci.persistence_write(p));
        if meta.is_dir() {
            // A persistence directory when a file created in it would be persistence.
            if let Some(c) = category(&format!("{text}/x")) {
                self.add(&text, c, &meta, true, seen);
            }
            if depth >= MAX_DEPTH {
                return;
            }
            let Ok(entries) = fs::read_dir(path) else {
                return;
            };
            for entry in entries.flatten() {
                if *budget == 0 {
                    return;
                }
                *budget -= 1;
                // Inside a tree symlinks are not followed (they may point anywhere).
                if let Ok(m) = fs::symlink_metadata(entry.path()) {
                    self.walk(&entry.path(), m, home, ci, depth + 1, budget, seen);
                }
            }
        } else if meta.is_file()
            && let Some(c) = category(&text)
        {
            self.add(&text, c, &meta, false, seen);
        }
    }

    fn add(
        &mut self,
        path: &str,
        category: &str,
        meta: &fs::Metadata,
        dir: bool,
        seen: &mut HashSet<InodeKey>,
    ) {
        let key = super::protected::inode_key(meta);
        if !seen.insert(key) {
            return;
        }
        if self.targets.len() >= MAX_PERSIST {
            self.left_out += 1;
            return;
        }
        self.keys.push((key, dir));
        self.targets.push(ProtectedFile {
            path: path.to_owned(),
            category: category.to_owned(),
        });
    }
}

impl super::Sensor {
    /// Gives the kernel the identities of `set` (its `PERSIST` map: identity → index + 1, with
    /// the directory bit).
    pub fn persist(&mut self, set: &PersistSet) -> Result<(), super::SensorError> {
        let failed = super::maps::map_failed("PERSIST");
        let mut map: aya::maps::HashMap<_, InodeKey, u32> = self.named_map("PERSIST")?;
        for (i, (key, dir)) in set.keys.iter().enumerate() {
            let value = (i as u32 + 1) | if *dir { PERSIST_DIR } else { 0 };
            map.insert(key, value, 0).map_err(failed)?;
        }
        Ok(())
    }

    /// Lets crate group `group` do `class` (a `monitor_common::kill_class` bit) to `object`
    /// (a secret's or persistence target's number plus one; 0: any) without being killed.
    pub fn allow_kill(
        &mut self,
        group: u32,
        class: u32,
        object: u32,
    ) -> Result<(), super::SensorError> {
        let failed = super::maps::map_failed("KILL_ALLOW");
        let mut map: aya::maps::HashMap<_, monitor_common::KillAllowKey, u8> =
            self.named_map("KILL_ALLOW")?;
        let key = monitor_common::KillAllowKey {
            group,
            class,
            object,
            _pad: 0,
        };
        map.insert(key, 1, 0).map_err(failed)
    }

    /// Takes back an allowance [`Self::allow_kill`] made (the guard, when a build ended).
    pub fn disallow_kill(&mut self, group: u32, class: u32, object: u32) {
        let Some(map) = self.ebpf.map_mut("KILL_ALLOW") else {
            return;
        };
        let Ok(mut map) = aya::maps::HashMap::<_, monitor_common::KillAllowKey, u8>::try_from(map)
        else {
            return;
        };
        let _ = map.remove(&monitor_common::KillAllowKey {
            group,
            class,
            object,
            _pad: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn persistence_targets_and_directories_by_identity() {
        let root = std::env::temp_dir().join(format!("bw-persist-{}", std::process::id()));
        let home = root.join("home");
        let ws = root.join("ws");
        for dir in [
            home.join(".config/autostart"),
            home.join(".ssh"),
            ws.join(".git/hooks"),
            ws.join("src"),
        ] {
            fs::create_dir_all(dir).expect("mkdir");
        }
        for file in [
            home.join(".bashrc"),
            home.join(".config/autostart/a.desktop"),
            home.join(".ssh/id_rsa"),
            ws.join(".git/hooks/pre-commit"),
            ws.join("src/main.rs"),
        ] {
            fs::write(file, "x").expect("write");
        }
        let ci = CiChannels::from_vars(|_| None);
        let set = PersistSet::resolve(&[&home], Some(&ws.join("src")), &ci);
        let found: Vec<(String, bool)> = set
            .targets
            .iter()
            .zip(&set.keys)
            .filter_map(|(t, (_, dir))| {
                let rel = Path::new(&t.path).strip_prefix(&root).ok()?;
                Some((rel.display().to_string(), *dir))
            })
            .collect();
        for expected in [
            ("home/.bashrc", false),
            ("home/.config/autostart", true),
            ("home/.config/autostart/a.desktop", false),
            ("ws/.git/hooks", true),
            ("ws/.git/hooks/pre-commit", false),
        ] {
            assert!(
                found.contains(&(expected.0.to_owned(), expected.1)),
                "{expected:?} in {found:?}"
            );
        }
        // Neither the home itself (a file created there is not persistence), nor a secret, nor
        // the sources.
        assert!(
            !found
                .iter()
                .any(|(p, _)| p == "home" || p.contains("id_rsa") || p.contains("src")),
            "{found:?}"
        );
        let meta = fs::metadata(home.join(".bashrc")).expect("stat");
        let i = set
            .targets
            .iter()
            .position(|t| t.path.ends_with("/home/.bashrc"))
            .expect("bashrc");
        assert_eq!(set.keys[i].0.ino, meta.ino());
        let _ = fs::remove_dir_all(&root);
    }
}
