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
pub struct BuildCgroup {
    path: PathBuf,
    dir: File,
}

impl BuildCgroup {
    /// Creates `<cgroup2>/buildwatch-<pid>`, first removing empty ones left by earlier runs.
    pub fn create(root: &Path) -> Result<Self, SensorError> {
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("buildwatch-")
                {
                    // Fails (harmlessly) while processes are still in it.
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
        let path = root.join(format!("buildwatch-{}", std::process::id()));
        std::fs::create_dir(&path)
            .map_err(|e| SensorError::Cgroup(format!("cannot create {}: {e}", path.display())))?;
        let dir = File::open(&path)
            .map_err(|e| SensorError::Cgroup(format!("cannot open {}: {e}", path.display())))?;
        Ok(Self { path, dir })
    }

    /// The cgroup directory (to attach programs to).
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
                "cannot move process {pid} into {}: {e}",
                self.path.display()
            ))
        })
    }
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        // Processes that outlived the build keep it busy; a later run removes it.
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape("/sys/fs/cgroup/unified"), "/sys/fs/cgroup/unified");
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
    }
}
