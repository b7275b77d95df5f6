//! The build's own cgroup (v2): the socket-address hooks are attached to it, so they see every
//! connection and datagram of the build whatever syscall path it takes (io_uring, TCP Fast
//! Open) and, under `--enforce`, refuse what profiles do not allow. A process cannot leave the
//! cgroup (its `cgroup.procs` files belong to root), and its children are born in it.
use std::{
    fs::File,
    path::{Path, PathBuf},
};

use super::SensorError;

/// Finds the cgroup v2 mount point in /proc/mounts (unified layouts mount it at /sys/fs/cgroup,
/// hybrid ones elsewhere, e.g. /sys/fs/cgroup/unified).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(unescape(target)))
    })
}

/// /proc/mounts escapes spaces and the like as `\040` octal.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len() + 1
            && let Some(oct) = s.get(i + 1..i + 4)
            && let Ok(v) = u8::from_str_radix(oct, 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A cgroup created for one build; removed when dropped (if it is empty by then).
///
/// Concurrent runs never share or remove each other's cgroups: each is named
/// `buildwatch-<pid>-<random>`, and its owner holds an exclusive `flock` on the cgroup's
/// directory for as long as it runs (the lock goes with the owner's descriptors, however it
/// ends). A run sweeps only the cgroups whose lock it can take: their owner is provably gone.
/// The build runs in a child cgroup, `build`, created at once: a cgroup with a child cannot be
/// removed, so tools that remove empty cgroups (older buildwatch versions did, while another
/// run was still loading its sensor) cannot pull it away either.
pub struct BuildCgroup {
    /// The locked parent, `buildwatch-<pid>-<random>`.
    top: PathBuf,
    /// Holds the lock.
    _lock: File,
    /// The `build` child, where the build runs and the hooks are attached.
    path: PathBuf,
    dir: File,
}

/// The child cgroup the build runs in.
const LEAF: &str = "build";

/// The prefix of every build cgroup's name.
const PREFIX: &str = "buildwatch-";

impl BuildCgroup {
    /// Creates `<cgroup2>/buildwatch-<pid>-<random>` and locks it, first removing the empty
    /// cgroups of earlier runs that have ended.
    pub fn create(root: &Path) -> Result<Self, SensorError> {
        sweep(root);
        let pid = std::process::id();
        // A name is taken (or a sweeper removes the new directory before it is locked) only
        // by a vanishingly rare accident: a few attempts are plenty.
        let mut last = None;
        for _ in 0..8 {
            let path = root.join(format!("{PREFIX}{pid}-{:016x}", random_u64()));
            match std::fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(create_error(root, &path, &e)),
            }
            let dir = match File::open(&path) {
                Ok(dir) => dir,
                // Another run's sweep took it (empty and not yet locked) between the two calls:
                // seen with five runs starting at once. Start again with a new name.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    last = Some(path);
                    continue;
                }
                Err(e) => {
                    return Err(SensorError::Cgroup(format!(
                        "cannot open {}: {e}. {}",
                        path.display(),
                        ADVICE_RETRY
                    )));
                }
            };
            // Blocking: a sweeper that locked it first holds the lock only while removing it.
            lock(&dir, true).map_err(|e| {
                SensorError::Cgroup(format!(
                    "cannot lock {}: {e}. {}",
                    path.display(),
                    ADVICE_RETRY
                ))
            })?;
            // A sweeper may have locked and removed the directory between its creation and
            // our lock (or, for an older one, before the child existed): then it is gone, and
            // we start again with a new name.
            let leaf = path.join(LEAF);
            if same_file(&path, &dir) && std::fs::create_dir(&leaf).is_ok() {
                let leaf_dir = File::open(&leaf).map_err(|e| {
                    SensorError::Cgroup(format!(
                        "cannot open {}: {e}. {}",
                        leaf.display(),
                        ADVICE_RETRY
                    ))
                })?;
                return Ok(Self {
                    top: path,
                    _lock: dir,
                    path: leaf,
                    dir: leaf_dir,
                });
            }
            last = Some(path);
        }
        Err(SensorError::Cgroup(format!(
            "could not create a cgroup of its own under {} (last tried {}): every attempt was \
             taken or removed at once. {ADVICE_RETRY}",
            root.display(),
            last.map(|p| p.display().to_string()).unwrap_or_default()
        )))
    }

    /// The build's cgroup directory (to attach programs to).
    pub fn dir(&self) -> &File {
        &self.dir
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves process `pid` (and its future children) into the cgroup.
    pub fn enroll(&self, pid: u32) -> Result<(), SensorError> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string()).map_err(|e| {
            SensorError::Cgroup(format!(
                "cannot move process {pid} into {}: {e}. {ADVICE_RETRY}",
                self.path.display()
            ))
        })
    }
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        // Processes that outlived the build keep it busy; a later run removes it once they
        // are gone (the lock is released with our descriptor).
        let _ = std::fs::remove_dir(&self.path);
        let _ = std::fs::remove_dir(&self.top);
    }
}

const ADVICE_RETRY: &str = "Run buildwatch again; if this persists, check that nothing else \
                            manages buildwatch-* cgroups (or run without --enforce on a machine \
                            without cgroup v2)";

fn create_error(root: &Path, path: &Path, e: &std::io::Error) -> SensorError {
    let advice = match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => format!(
            "buildwatch may not create cgroups under {} (it needs root, and in a container a \
             delegated cgroup v2 subtree)",
            root.display()
        ),
        Some(libc::EROFS) => format!(
            "the cgroup v2 hierarchy at {} is mounted read-only; remount it read-write",
            root.display()
        ),
        Some(libc::ENOSPC | libc::EAGAIN) => format!(
            "the cgroup hierarchy is full (see {}/cgroup.max.descendants)",
            root.display()
        ),
        _ => ADVICE_RETRY.to_owned(),
    };
    SensorError::Cgroup(format!("cannot create {}: {e}. {advice}", path.display()))
}

/// Removes the build cgroups of runs that have ended: those whose lock can be taken. Busy ones
/// (processes that outlived their build) stay until a later sweep finds them empty.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner_of) else {
            continue;
        };
        let path = entry.path();
        let Ok(dir) = File::open(&path) else {
            continue;
        };
        if lock(&dir, false).is_err() {
            // Locked: its run is alive.
            continue;
        }
        // Names without a random part come from versions that took no lock: their owner is
        // gone only if no process has its pid.
        if let Owner::Legacy(pid) = owner
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            continue;
        }
        // Fails (harmlessly) while processes are still in it.
        let _ = std::fs::remove_dir(path.join(LEAF));
        let _ = std::fs::remove_dir(&path);
    }
}

/// Who created a build cgroup, from its name.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// `buildwatch-<pid>-<random>`: its owner holds a lock on it while it runs.
    Locking,
    /// `buildwatch-<pid>`, from a version that took no lock.
    Legacy(u32),
}

fn owner_of(name: &str) -> Option<Owner> {
    let rest = name.strip_prefix(PREFIX)?;
    match rest.split_once('-') {
        Some((pid, random)) => {
            pid.parse::<u32>().ok()?;
            (random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()))
                .then_some(Owner::Locking)
        }
        None => rest.parse().ok().map(Owner::Legacy),
    }
}

/// An exclusive `flock` on `file`; waits for it when `wait`.
fn lock(file: &File, wait: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether `path` still names the directory open as `file`.
fn same_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// 64 random bits from the kernel (the time and pid if getrandom fails, which it does not on
/// any kernel buildwatch runs on).
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n == 8 {
        return u64::from_ne_bytes(bytes);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_from_names() {
        assert_eq!(
            owner_of("buildwatch-5801-0123456789abcdef"),
            Some(Owner::Locking)
        );
        assert_eq!(owner_of("buildwatch-5801"), Some(Owner::Legacy(5801)));
        assert_eq!(owner_of("buildwatch-5801-xyz"), None);
        assert_eq!(owner_of("buildwatch-x"), None);
        assert_eq!(owner_of("other-5801"), None);
    }

    /// Two cgroups of concurrent runs: neither sweep removes the other's; once its owner has
    /// let go (dropped its descriptor), the next sweep removes it.
    #[test]
    #[ignore = "privileged: creates cgroups (run with cargo xtask test)"]
    fn sweeps_spare_live_runs() {
        let Some(root) = cgroup2_mount() else {
            eprintln!("skipped: no cgroup v2 hierarchy on this machine");
            return;
        };
        let a = BuildCgroup::create(&root).expect("first cgroup");
        let b = BuildCgroup::create(&root).expect("second cgroup");
        assert_ne!(a.path(), b.path());
        assert!(a.path().ends_with(LEAF) && a.path().is_dir());
        sweep(&root);
        assert!(a.path().is_dir() && b.path().is_dir());
        // Ended runs: a cgroup nobody holds a lock on (as after SIGKILL), and one of an
        // older version named after a pid that no longer runs; and one whose pid runs.
        let ended = root.join(format!(
            "{PREFIX}{}-{:016x}",
            std::process::id(),
            random_u64()
        ));
        std::fs::create_dir_all(ended.join(LEAF)).expect("mkdir");
        let dead_pid = (1u32 << 22) - 1;
        let legacy_dead = root.join(format!("{PREFIX}{dead_pid}"));
        let legacy_alive = root.join(format!("{PREFIX}{}", std::process::id()));
        if !Path::new(&format!("/proc/{dead_pid}")).exists() {
            std::fs::create_dir(&legacy_dead).expect("mkdir");
        }
        std::fs::create_dir(&legacy_alive).expect("mkdir");
        sweep(&root);
        assert!(!ended.exists(), "the ended run's cgroup is swept");
        assert!(
            !legacy_dead.exists(),
            "the dead legacy run's cgroup is swept"
        );
        assert!(
            legacy_alive.is_dir(),
            "a legacy cgroup whose pid runs stays"
        );
        assert!(
            a.path().is_dir() && b.path().is_dir(),
            "live runs' cgroups stay"
        );
        let _ = std::fs::remove_dir(&legacy_alive);
        // A sweeper that only removes empty directories (as older versions did) cannot.
        assert!(std::fs::remove_dir(&a.top).is_err());
        let (pa, pb) = (a.top.clone(), b.top.clone());
        drop((a, b));
        assert!(!pa.exists() && !pb.exists(), "removed when dropped");
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape("/sys/fs/cgroup/unified"), "/sys/fs/cgroup/unified");
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
    }
}
