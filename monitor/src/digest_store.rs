//! Digests remembered between runs, so that every run does not read the toolchain again: cargo,
//! rustup, rustc, cc1 and the linker are a third of what a build's images weigh (112 of 330 MB
//! in the `popular` fixture build, re-hashed by every run before this store).
//!
//! A digest is reused only for the very same file content: same device, inode, size,
//! modification time and change time. Writing, truncating, renaming over or linking a file sets
//! its change time, which no system call can set back, so a file whose ctime is unchanged has
//! not been written since it was hashed. One caveat is the clock's granularity: a write in the
//! same tick as the hash would leave ctime unchanged, so only files unchanged for
//! [`SETTLED`] before they were hashed are stored (what git calls the "racy" case).
//!
//! The store is root's (`/var/cache/buildwatch/digests`, directory 0700, file 0600): it is
//! used only when buildwatch runs as root, and ignored (with nothing read from it) when it is not
//! a regular file of the running user that nobody else may write, since whoever can write it
//! chooses the digests reported. Lines: `dev ino size mtime_ns ctime_ns sha256`; a malformed line
//! is skipped; the file is rewritten with the newest [`KEEP`] entries when it has grown to
//! twice that.
use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::Write as _,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    time::Duration,
};

use crate::digest::Identity;

/// Where root's store is.
pub const SYSTEM_STORE: &str = "/var/cache/buildwatch/digests";
/// How long a file must have been unchanged before its digest is stored.
pub const SETTLED: Duration = Duration::from_secs(2);
/// Entries kept when the file is rewritten.
const KEEP: usize = 4096;

/// The digests stored by earlier runs, and the file new ones are appended to.
pub struct Store {
    path: PathBuf,
    entries: HashMap<Identity, (i128, String)>,
    appender: Option<File>,
    settled: Duration,
}

impl Store {
    /// Root's store, when running as root and its directory can be made (else none: digests
    /// are then computed by every run, as before).
    pub fn system() -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        Self::open(Path::new(SYSTEM_STORE), SETTLED)
    }

    /// The store at `path` (its directory made 0700 if missing); `settled`: see [`SETTLED`].
    pub fn open(path: &Path, settled: Duration) -> Option<Self> {
        let dir = path.parent()?;
        if !dir.exists() {
            fs::create_dir_all(dir).ok()?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ok()?;
        }
        let me = nix::unistd::geteuid().as_raw();
        let private = |p: &Path| {
            fs::symlink_metadata(p).is_ok_and(|m| {
                m.uid() == me && m.mode() & 0o022 == 0 && !m.file_type().is_symlink()
            })
        };
        if !private(dir) {
            return None;
        }
        let mut entries = HashMap::new();
        let mut lines = 0;
        if path.exists() {
            if !private(path) || !fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
                return None;
            }
            let text = fs::read_to_string(path).ok()?;
            for line in text.lines() {
                lines += 1;
                if let Some((id, ctime, sha)) = parse(line) {
                    entries.insert(id, (ctime, sha));
                }
            }
        }
        let mut store = Self {
            path: path.to_owned(),
            entries,
            appender: None,
            settled,
        };
        if lines >= 2 * KEEP {
            store.rewrite();
        }
        store.appender = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok();
        Some(store)
    }

    /// The stored digest of the file with `id` and change time `ctime_ns`.
    pub fn get(&self, id: &Identity, ctime_ns: i128) -> Option<&String> {
        self.entries
            .get(id)
            .filter(|(ctime, _)| *ctime == ctime_ns)
            .map(|(_, sha)| sha)
    }

    /// Remembers a digest computed at `hashed_ns` (ns since the epoch) for later runs, if the
    /// file had been unchanged for long enough by then.
    pub fn put(&mut self, id: Identity, ctime_ns: i128, sha256: &str, hashed_ns: i128) {
        if ctime_ns + self.settled.as_nanos() as i128 > hashed_ns
            || self.get(&id, ctime_ns).is_some()
        {
            return;
        }
        if let Some(out) = self.appender.as_mut() {
            let _ = out.write_all(line(&id, ctime_ns, sha256).as_bytes());
        }
        self.entries.insert(id, (ctime_ns, sha256.to_owned()));
    }

    /// Writes the newest entries (by change time) to a new file that replaces the old one.
    fn rewrite(&mut self) {
        let mut all: Vec<(&Identity, &(i128, String))> = self.entries.iter().collect();
        all.sort_by_key(|(_, (ctime, _))| std::cmp::Reverse(*ctime));
        all.truncate(KEEP);
        let text: String = all
            .iter()
            .map(|(id, (ctime, sha))| line(id, *ctime, sha))
            .collect();
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

fn line(id: &Identity, ctime_ns: i128, sha256: &str) -> String {
    format!(
        "{} {} {} {} {ctime_ns} {sha256}\n",
        id.dev, id.ino, id.size, id.mtime_ns
    )
}

fn parse(line: &str) -> Option<(Identity, i128, String)> {
    let mut f = line.split(' ');
    let id = Identity {
        dev: f.next()?.parse().ok()?,
        ino: f.next()?.parse().ok()?,
        size: f.next()?.parse().ok()?,
        mtime_ns: f.next()?.parse().ok()?,
    };
    let ctime: i128 = f.next()?.parse().ok()?;
    let sha = f.next()?;
    if f.next().is_some() || sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((id, ctime, sha.to_ascii_lowercase()))
}
