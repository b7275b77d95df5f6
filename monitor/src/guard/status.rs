//! `buildwatch guard --status`: the running guard serves a text status (the builds being
//! watched, the recent findings) on a unix socket under /run/buildwatch/; `--status` connects
//! and prints it.
use std::{
    collections::VecDeque,
    io::{Read as _, Write as _},
    os::unix::{fs::PermissionsExt as _, net::UnixListener},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use super::builds::{Build, Ended};
use crate::model::Shown;

/// The default socket.
pub const DEFAULT_SOCKET: &str = "/run/buildwatch/guard.sock";

/// How many findings `--status` shows.
const RECENT: usize = 50;

/// What the status shows, kept up to date by the guard's loop.
#[derive(Default)]
pub struct Status {
    started: Option<SystemTime>,
    builds_seen: u64,
    recent: VecDeque<String>,
    text: String,
}

impl Status {
    /// Records the findings of an ended build.
    pub fn ended(&mut self, build: &Ended) {
        self.builds_seen += 1;
        for f in &build.report.findings {
            let ws = build
                .workspace
                .as_ref()
                .map_or_else(|| "no workspace".to_owned(), |w| w.display().to_string());
            self.recent.push_back(format!(
                "{} (build {} in {}{})",
                f.headline(),
                build.root,
                Shown(&ws),
                if build.unfinished { ", unfinished" } else { "" }
            ));
            if self.recent.len() > RECENT {
                self.recent.pop_front();
            }
        }
    }

    /// Renders the status with `active` as the builds being watched.
    pub fn refresh<'a>(&mut self, active: impl Iterator<Item = &'a Build>) {
        let started = self.started.get_or_insert_with(SystemTime::now);
        let up = started.elapsed().unwrap_or_default().as_secs();
        let mut text = format!(
            "buildwatch guard: running for {up}s (pid {}), {} builds ended\n",
            std::process::id(),
            self.builds_seen
        );
        let mut builds: Vec<&Build> = active.collect();
        builds.sort_by_key(|b| b.root);
        text.push_str(&format!("builds being watched: {}\n", builds.len()));
        for b in builds {
            let secs = b.started.elapsed().unwrap_or(Duration::ZERO).as_secs();
            text.push_str(&format!(
                "  pid {} uid {} for {secs}s: {} in {} ({} findings so far)\n",
                b.root,
                b.uid.map_or_else(|| "?".to_owned(), |u| u.to_string()),
                Shown(&shorten(&b.command.join(" "))),
                Shown(
                    &b.workspace
                        .root
                        .as_ref()
                        .map_or_else(|| "no workspace".to_owned(), |w| w.display().to_string())
                ),
                b.finding_count()
            ));
        }
        text.push_str(&format!("recent findings: {}\n", self.recent.len()));
        for line in &self.recent {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        self.text = text;
    }
}

/// A command line cut to what fits a status line (rustc's run to kilobytes).
fn shorten(text: &str) -> String {
    const MAX: usize = 160;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The listening socket; removed on drop.
pub struct Server {
    path: PathBuf,
}

impl Server {
    /// Listens on `path` (its directory created 0755, the socket 0600: root only), answering
    /// each connection with the current status.
    pub fn start(path: &Path, status: Arc<Mutex<Status>>) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another guard is running (it answers on {}); stop it first",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        std::thread::Builder::new()
            .name("guard-status".into())
            .spawn(move || {
                for mut stream in listener.incoming().flatten() {
                    let text = status.lock().map(|s| s.text.clone()).unwrap_or_default();
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
                    let _ = stream.write_all(text.as_bytes());
                }
            })
            .map_err(|e| format!("cannot start the status thread: {e}"))?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `--status`: prints what the guard at `path` says; 0, or 2 when no guard answers.
pub fn print(path: &Path) -> i32 {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut text = String::new();
            match stream.read_to_string(&mut text) {
                Ok(_) => {
                    print!("{text}");
                    0
                }
                Err(e) => {
                    eprintln!("buildwatch: error: reading the guard's status: {e}");
                    2
                }
            }
        }
        Err(e) => {
            eprintln!(
                "buildwatch: error: no guard answers on {} ({e}): is `buildwatch guard` running \
                 (systemctl status buildwatch-guard), and are you root?",
                path.display()
            );
            2
        }
    }
}
