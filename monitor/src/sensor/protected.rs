//! Secrets by identity: at start, the files `sensitive-read` names by path (under the build
//! user's home, the system-wide ones, the `.env` files of the workspace) are resolved to their
//! (device, inode) and given to the kernel, so that an open of one is recognised whatever name
//! reached it: a hard link, a bind mount in a private mount namespace, `/proc/PID/root/...`,
//! `/proc/PID/fd/N`, symlinks. Files created in those places later are still caught by path.
//!
//! The device is the filesystem's `super_block.s_dev`, which is what stat(2) reports on
//! ordinary filesystems; on btrfs subvolumes and overlayfs stat reports another device, and such
//! a file is caught by path only (docs/evasion.md).
use std::{
    collections::HashSet,
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use monitor_common::InodeKey;

use crate::{model::ProtectedFile, profile::sensitive};

/// Most files given to the kernel (the size of its `PROTECTED` map).
pub const MAX_PROTECTED: usize = 16384;
/// How deep the walk goes under a secret tree (`~/.mozilla/...`) and the workspace.
const MAX_DEPTH: usize = 8;
/// Most directory entries the walk of one secret tree (a browser profile) looks at.
const TREE_BUDGET: usize = 8192;
/// Most directory entries the walk of the workspace looks at, looking for `.env` files.
const WORKSPACE_BUDGET: usize = 50_000;
/// Directories of a workspace that hold no `.env` of the project's own.
const SKIP_IN_WORKSPACE: &[&str] = &["target", ".git", "node_modules"];

/// The protected files, in the order the kernel numbers them, and their identities.
#[derive(Debug, Default)]
pub struct ProtectedSet {
    /// The files; `OpenRecord::protected` is an index here, plus one.
    pub files: Vec<ProtectedFile>,
    /// Their identities, one per file.
    pub keys: Vec<InodeKey>,
    /// Secrets found but not protected by identity (more than [`MAX_PROTECTED`]).
    pub left_out: usize,
}

impl ProtectedSet {
    /// Resolves the secrets under `homes` (the build's HOME and its user's home directory,
    /// usually one and the same) and the system-wide ones, and the `.env` files under
    /// `workspace` (the directory the build runs in).
    pub fn resolve(homes: &[&Path], workspace: Option<&Path>) -> Self {
        let mut set = Self::default();
        let mut seen = HashSet::new();
        for home in homes {
            let home_text = home.to_string_lossy();
            for place in sensitive::secret_places(&home_text) {
                let mut budget = TREE_BUDGET;
                set.walk(
                    Path::new(&place),
                    Some(&home_text),
                    0,
                    &mut budget,
                    &mut seen,
                );
            }
        }
        if let Some(dir) = workspace {
            let mut budget = WORKSPACE_BUDGET;
            set.walk_dotenv(dir, 0, &mut budget, &mut seen);
        }
        set
    }

    /// Adds `path` (a file, or every file of a tree) when `sensitive_read` calls it a secret.
    fn walk(
        &mut self,
        path: &Path,
        home: Option<&str>,
        depth: usize,
        budget: &mut usize,
        seen: &mut HashSet<InodeKey>,
    ) {
        // lstat: a symlink in a secret tree is not followed (it may point anywhere); the file
        // it names is protected if it is itself a secret.
        let Ok(meta) = fs::symlink_metadata(path) else {
            return;
        };
        if meta.is_dir() {
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
                self.walk(&entry.path(), home, depth + 1, budget, seen);
            }
        } else if meta.is_file() {
            let text = path.to_string_lossy();
            if let Some(category) = sensitive::sensitive_read(&text, home) {
                self.add(&text, category, &meta, seen);
            }
        }
    }

    /// Adds the `.env` files under `dir`.
    fn walk_dotenv(
        &mut self,
        dir: &Path,
        depth: usize,
        budget: &mut usize,
        seen: &mut HashSet<InodeKey>,
    ) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if *budget == 0 || depth >= MAX_DEPTH {
                return;
            }
            *budget -= 1;
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path: PathBuf = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() && !SKIP_IN_WORKSPACE.contains(&name.as_ref()) {
                self.walk_dotenv(&path, depth + 1, budget, seen);
            } else if kind.is_file()
                && (name == ".env" || name.starts_with(".env."))
                && let Ok(meta) = entry.metadata()
            {
                self.add(&path.to_string_lossy(), "dotenv", &meta, seen);
            }
        }
    }

    fn add(
        &mut self,
        path: &str,
        category: &str,
        meta: &fs::Metadata,
        seen: &mut HashSet<InodeKey>,
    ) {
        let key = inode_key(meta);
        if !seen.insert(key) {
            return;
        }
        if self.files.len() >= MAX_PROTECTED {
            self.left_out += 1;
            return;
        }
        self.keys.push(key);
        self.files.push(ProtectedFile {
            path: path.to_owned(),
            category: category.to_owned(),
        });
    }
}

/// The identity the kernel programs compare (s_dev in the kernel's encoding, inode) of a file
/// whose metadata was read: one conversion for secrets, persistence targets and guard roots.
pub(super) fn inode_key(meta: &fs::Metadata) -> InodeKey {
    let dev = meta.dev();
    InodeKey {
        dev: InodeKey::kernel_dev(libc::major(dev), libc::minor(dev)),
        _pad: 0,
        ino: meta.ino(),
    }
}

impl super::Sensor {
    /// Gives the kernel the identities of `set` (its `PROTECTED` map: identity → index + 1).
    pub fn protect(&mut self, set: &ProtectedSet) -> Result<(), super::SensorError> {
        let failed = super::maps::map_failed("PROTECTED");
        let mut map: aya::maps::HashMap<_, InodeKey, u32> = self.named_map("PROTECTED")?;
        for (i, key) in set.keys.iter().enumerate() {
            map.insert(key, i as u32 + 1, 0).map_err(failed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_home_and_workspace_by_identity() {
        let root = std::env::temp_dir().join(format!("bw-protected-{}", std::process::id()));
        let home = root.join("home");
        let ws = root.join("ws");
        for dir in [
            home.join(".ssh"),
            home.join(".aws"),
            ws.join("sub"),
            ws.join("target"),
        ] {
            fs::create_dir_all(dir).expect("mkdir");
        }
        for file in [
            home.join(".ssh/id_rsa"),
            home.join(".aws/credentials"),
            home.join(".npmrc"),
            home.join(".bashrc"),
            ws.join("sub/.env"),
            ws.join("target/.env"),
            ws.join("main.rs"),
        ] {
            fs::write(file, "x").expect("write");
        }
        // A second name of the same file is one protected file.
        fs::hard_link(home.join(".ssh/id_rsa"), home.join(".ssh/id_rsa.bak")).expect("link");
        let set = ProtectedSet::resolve(&[&home, &home], Some(&ws));
        let mut found: Vec<(String, String)> = set
            .files
            .iter()
            // System-wide secrets (/etc/shadow) are in the set too; only the test's are looked at.
            .filter_map(|f| {
                let rel = Path::new(&f.path).strip_prefix(&root).ok()?;
                Some((rel.display().to_string(), f.category.clone()))
            })
            .collect();
        found.sort();
        let ssh = found.iter().filter(|(_, c)| c == "ssh-key").count();
        assert_eq!(ssh, 1, "{found:?}");
        assert!(found.contains(&("home/.aws/credentials".into(), "cloud-credentials".into())));
        assert!(found.contains(&("home/.npmrc".into(), "npm-credentials".into())));
        assert!(found.contains(&("ws/sub/.env".into(), "dotenv".into())));
        assert!(
            !found
                .iter()
                .any(|(p, _)| p.contains("target") || p.contains("bashrc"))
        );
        let meta = fs::metadata(home.join(".npmrc")).expect("stat");
        let i = set
            .files
            .iter()
            .position(|f| f.path.ends_with("/home/.npmrc"))
            .expect("npmrc");
        assert_eq!(set.keys[i].ino, meta.ino());
        assert_eq!(set.keys.len(), set.files.len());
        let _ = fs::remove_dir_all(&root);
    }
}
