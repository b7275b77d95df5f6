//! `buildwatch guard`: the executables that start a build, resolved to their identities
//! (device, inode) for the kernel's `GUARD_ROOTS`. By identity, not name: a toolchain copied
//! by hard links, or run under another name, is still recognised; a program that merely calls
//! itself `cargo` is not.
//!
//! Where they are looked for: every toolchain of every user's rustup (`~/.rustup/toolchains/*`)
//! and of `$RUSTUP_HOME`, the binaries in every user's `~/.cargo/bin` that are not rustup's
//! proxies, the system's (`/usr/bin`, `/usr/local/bin`, `/usr/lib/rust*`), and directories given
//! with `--toolchain`. rustup's proxies (`~/.cargo/bin/cargo` → rustup) are left out on purpose:
//! a proxy executes the toolchain's real binary in the same process, which is then adopted, and
//! leaving rustup itself out keeps `rustup update` from counting as a build.
use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use monitor_common::InodeKey;

/// Programs that start a build, by file name.
pub const ROOT_PROGRAMS: &[&str] = &[
    "cargo",
    "rustc",
    "rust-analyzer",
    "rust-analyzer-proc-macro-srv",
];

/// Most identities given to the kernel (the size of its `GUARD_ROOTS` map).
pub const MAX_ROOTS: usize = 4096;

/// The build-starting executables found, by identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardRoots {
    /// (identity, one path it was found at), sorted by identity.
    pub found: Vec<(InodeKey, PathBuf)>,
    /// The toolchain directories looked in (their modification times tell when to look again).
    pub dirs: Vec<PathBuf>,
}

impl GuardRoots {
    /// Looks in the homes of the machine's users (`/etc/passwd`), the system's places and
    /// `extra` (toolchain directories with a `bin/`, or directories of binaries).
    pub fn resolve(extra: &[PathBuf]) -> Self {
        let mut homes: BTreeSet<PathBuf> = passwd_homes();
        if let Some(home) = std::env::var_os("HOME") {
            homes.insert(PathBuf::from(home));
        }
        let mut toolchains: Vec<PathBuf> = Vec::new();
        let mut bins: Vec<PathBuf> = vec![
            "/usr/bin".into(),
            "/usr/local/bin".into(),
            "/usr/libexec".into(),
        ];
        let mut rustup_homes: Vec<PathBuf> = homes.iter().map(|h| h.join(".rustup")).collect();
        if let Some(dir) = std::env::var_os("RUSTUP_HOME") {
            rustup_homes.push(PathBuf::from(dir));
        }
        for rustup in &rustup_homes {
            if let Ok(entries) = fs::read_dir(rustup.join("toolchains")) {
                toolchains.extend(entries.flatten().map(|e| e.path()));
            }
        }
        // Distribution packages of versioned toolchains (Debian's rust-1.xx).
        if let Ok(entries) = fs::read_dir("/usr/lib") {
            toolchains.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("rust"))
            }));
        }
        for home in &homes {
            bins.push(home.join(".cargo/bin"));
        }
        if let Some(dir) = std::env::var_os("CARGO_HOME") {
            bins.push(PathBuf::from(dir).join("bin"));
        }
        for dir in extra {
            toolchains.push(dir.clone());
            bins.push(dir.clone());
        }
        for toolchain in &toolchains {
            bins.push(toolchain.join("bin"));
            bins.push(toolchain.join("libexec"));
        }
        let mut roots = Self::default();
        let mut seen = std::collections::HashSet::new();
        for dir in &bins {
            if !dir.is_dir() {
                continue;
            }
            roots.dirs.push(dir.clone());
            let rustup = identity_of(&dir.join("rustup"));
            for program in ROOT_PROGRAMS {
                let path = dir.join(program);
                let Some(key) = identity_of(&path) else {
                    continue;
                };
                if is_rustup_proxy(&path, key, rustup) {
                    continue;
                }
                if roots.found.len() < MAX_ROOTS && seen.insert(key) {
                    roots.found.push((key, path));
                }
            }
        }
        for rustup in &rustup_homes {
            let dir = rustup.join("toolchains");
            if dir.is_dir() {
                roots.dirs.push(dir);
            }
        }
        roots.found.sort_by_key(|(k, _)| (k.dev, k.ino));
        roots
    }

    /// The identities, with what each is to the kernel (`monitor_common::guard_root`).
    pub fn keys(&self) -> Vec<(InodeKey, u32)> {
        self.found
            .iter()
            .map(|(k, path)| (*k, root_kind(path)))
            .collect()
    }

    /// A fingerprint of the directories looked in: when it changes (a toolchain installed,
    /// updated or removed), resolve again.
    pub fn fingerprint(&self) -> Vec<(PathBuf, i64, i64)> {
        self.dirs
            .iter()
            .map(|d| {
                let m = fs::metadata(d).ok();
                (
                    d.clone(),
                    m.as_ref().map_or(0, MetadataExt::mtime),
                    m.as_ref().map_or(0, MetadataExt::mtime_nsec),
                )
            })
            .collect()
    }
}

/// What the build-root executable at `path` (found under one of [`ROOT_PROGRAMS`]' names) is
/// to the kernel: cargo runs crate code only in its children, rust-analyzer too (and lives as
/// long as the editor); rustc and the proc-macro server load crate code into themselves.
fn root_kind(path: &Path) -> u32 {
    use monitor_common::guard_root;
    match path.file_name().and_then(|n| n.to_str()) {
        Some("cargo") => guard_root::DRIVER,
        Some("rust-analyzer") => guard_root::EDITOR,
        _ => guard_root::CRATE_HOST,
    }
}

/// The identity of the file `path` leads to (symlinks followed), in the kernel's encoding.
pub fn identity_of(path: &Path) -> Option<InodeKey> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    Some(super::protected::inode_key(&meta))
}

/// Whether `path` is one of rustup's proxies: a link to `rustup`, or the same file as the
/// `rustup` next to it.
fn is_rustup_proxy(path: &Path, key: InodeKey, rustup: Option<InodeKey>) -> bool {
    if rustup == Some(key) {
        return true;
    }
    fs::canonicalize(path).is_ok_and(|target| {
        target
            .file_name()
            .is_some_and(|n| n == "rustup" || n == "rustup-init")
    })
}

/// The home directories of `/etc/passwd` that exist.
fn passwd_homes() -> BTreeSet<PathBuf> {
    let text = fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(':').nth(5))
        .filter(|home| !home.is_empty() && *home != "/" && *home != "/nonexistent")
        .map(PathBuf::from)
        .filter(|home| home.is_dir())
        .collect()
}

impl super::Sensor {
    /// Replaces the kernel's build-root identities with `keys` (guard mode only).
    pub fn set_guard_roots(&mut self, keys: &[(InodeKey, u32)]) -> Result<(), super::SensorError> {
        let failed = super::maps::map_failed("GUARD_ROOTS");
        let mut map: aya::maps::HashMap<_, InodeKey, u32> = self.named_map("GUARD_ROOTS")?;
        let old: Vec<InodeKey> = map.keys().filter_map(Result::ok).collect();
        for (key, kind) in keys {
            map.insert(key, kind, 0).map_err(failed)?;
        }
        for key in old
            .iter()
            .filter(|k| !keys.iter().any(|(new, _)| new == *k))
        {
            let _ = map.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_binaries_by_identity_and_proxies_left_out() {
        let root = std::env::temp_dir().join(format!("bw-roots-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let toolchain = root.join("tc");
        let bin = root.join("cargo-bin");
        for d in [
            toolchain.join("bin"),
            toolchain.join("libexec"),
            bin.clone(),
        ] {
            fs::create_dir_all(d).expect("mkdir");
        }
        for name in ["cargo", "rustc", "rustdoc"] {
            fs::write(toolchain.join("bin").join(name), name).expect("write");
        }
        fs::write(
            toolchain.join("libexec/rust-analyzer-proc-macro-srv"),
            "srv",
        )
        .expect("write");
        // rustup and its proxies: a symlink and a hard link.
        fs::write(bin.join("rustup"), "rustup").expect("write");
        std::os::unix::fs::symlink("rustup", bin.join("cargo")).expect("symlink");
        fs::hard_link(bin.join("rustup"), bin.join("rustc")).expect("hard link");
        // A hard-linked copy of the toolchain's cargo elsewhere has the same identity.
        fs::hard_link(toolchain.join("bin/cargo"), root.join("copy-of-cargo")).expect("link");

        let roots = GuardRoots::resolve(&[toolchain.clone(), bin.clone()]);
        let paths: Vec<&Path> = roots.found.iter().map(|(_, p)| p.as_path()).collect();
        for want in [
            "bin/cargo",
            "bin/rustc",
            "libexec/rust-analyzer-proc-macro-srv",
        ] {
            assert!(
                paths.contains(&toolchain.join(want).as_path()),
                "{want} in {paths:?}"
            );
        }
        assert!(!paths.iter().any(|p| p.starts_with(&bin)), "{paths:?}");
        assert!(!paths.iter().any(|p| p.ends_with("rustdoc")), "{paths:?}");
        let copy = identity_of(&root.join("copy-of-cargo")).expect("identity");
        // cargo runs crate code only in children; rustc and the proc-macro server load it.
        assert!(
            roots
                .keys()
                .contains(&(copy, monitor_common::guard_root::DRIVER))
        );
        let kind_of = |want: &str| {
            let key = identity_of(&toolchain.join(want)).expect("identity");
            roots
                .keys()
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, kind)| *kind)
        };
        assert_eq!(
            kind_of("bin/rustc"),
            Some(monitor_common::guard_root::CRATE_HOST)
        );
        assert_eq!(
            kind_of("libexec/rust-analyzer-proc-macro-srv"),
            Some(monitor_common::guard_root::CRATE_HOST)
        );
        let before = roots.fingerprint();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(toolchain.join("bin/rust-analyzer"), "ra").expect("write");
        assert_ne!(
            roots.fingerprint(),
            before,
            "a new binary changes the fingerprint"
        );
        let again = GuardRoots::resolve(&[toolchain.clone(), bin.clone()]);
        let ra = identity_of(&toolchain.join("bin/rust-analyzer")).expect("identity");
        assert!(
            again
                .keys()
                .contains(&(ra, monitor_common::guard_root::EDITOR))
        );
        let _ = fs::remove_dir_all(&root);
    }
}
