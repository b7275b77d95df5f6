//! The running guard's socket under /run/buildwatch/: each connection sends one request (a
//! JSON line, [`Request`]) and gets the text status (`buildwatch guard --status`: the builds
//! being watched, the recent findings) or a build's live stream (`buildwatch attach`, see
//! [`super::attach`]). Any local user may connect; what each sees is decided by who they are
//! (`SO_PEERCRED`): root everything, anyone else their own builds and findings only (findings
//! name files).
use std::{
    collections::VecDeque,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::unix::{
        fs::PermissionsExt as _,
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc::Sender,
    },
    time::{Duration, SystemTime},
};

use super::{
    attach::{Peer, Pending, Request},
    builds::{Build, Ended},
};
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
    /// Each finding's line, with the uid of its build.
    recent: VecDeque<(Option<u32>, String)>,
    /// Each build's line, with its uid.
    builds: Vec<(Option<u32>, String)>,
    /// Whether the system call hooks are attached, and how often they were attached.
    hooks: (bool, u64),
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
            let line = format!(
                "{} (build {} in {}{})",
                f.headline(),
                build.root,
                Shown(&ws),
                if build.unfinished { ", unfinished" } else { "" }
            );
            self.recent.push_back((build.uid, line));
            if self.recent.len() > RECENT {
                self.recent.pop_front();
            }
        }
    }

    /// Records the system call hooks' state (see `super::dormancy`).
    pub fn hooks(&mut self, live: bool, wakes: u64) {
        self.hooks = (live, wakes);
    }

    /// Records `active` as the builds being watched.
    pub fn refresh<'a>(&mut self, active: impl Iterator<Item = &'a Build>) {
        self.started.get_or_insert_with(SystemTime::now);
        let mut builds: Vec<&Build> = active.collect();
        builds.sort_by_key(|b| b.root);
        self.builds = builds
            .into_iter()
            .map(|b| {
                let secs = b.started.elapsed().unwrap_or(Duration::ZERO).as_secs();
                let line =
                    format!(
                        "pid {} uid {} for {secs}s: {} in {} ({} findings so far)",
                        b.root,
                        b.uid.map_or_else(|| "?".to_owned(), |u| u.to_string()),
                        Shown(&shorten(&b.command.join(" "))),
                        Shown(&b.workspace.root.as_ref().map_or_else(
                            || "no workspace".to_owned(),
                            |w| w.display().to_string()
                        )),
                        b.finding_count()
                    );
                (b.uid, line)
            })
            .collect();
    }

    /// The status as `viewer` may see it: root everything, anyone else their own builds and
    /// their findings.
    pub fn render(&self, viewer: u32) -> String {
        let up = self
            .started
            .and_then(|s| s.elapsed().ok())
            .unwrap_or_default()
            .as_secs();
        let visible = |uid: &Option<u32>| viewer == 0 || *uid == Some(viewer);
        let mut text = format!(
            "buildwatch guard: running for {up}s (pid {}), {} builds ended\n",
            std::process::id(),
            self.builds_seen
        );
        text.push_str(&format!(
            "system call hooks: {} (attached for builds {} times)\n",
            if self.hooks.0 {
                "attached (something that can run crate code is being watched)"
            } else {
                "detached (no build: the machine pays nothing per system call)"
            },
            self.hooks.1
        ));
        let whose = if viewer == 0 { "" } else { " (yours)" };
        let builds: Vec<&String> = self
            .builds
            .iter()
            .filter(|(uid, _)| visible(uid))
            .map(|(_, l)| l)
            .collect();
        text.push_str(&format!("builds being watched{whose}: {}\n", builds.len()));
        for line in &builds {
            text.push_str(&format!("  {line}\n"));
        }
        if !builds.is_empty() {
            text.push_str("  (live view of one: buildwatch attach PID)\n");
        }
        let recent: Vec<&String> = self
            .recent
            .iter()
            .filter(|(uid, _)| visible(uid))
            .map(|(_, l)| l)
            .collect();
        text.push_str(&format!("recent findings{whose}: {}\n", recent.len()));
        for line in recent {
            text.push_str(&format!("  {line}\n"));
        }
        text
    }
}

/// A command line cut to what fits a status line (rustc's run to kilobytes).
pub fn shorten(text: &str) -> String {
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

/// Connections being answered at once, at most (the socket is open to every local user).
const MAX_CLIENTS: usize = 16;

impl Server {
    /// Listens on `path` (its directory created 0755; the socket 0666: every user may ask,
    /// and is answered according to who they are). Status requests are answered on a thread
    /// of their own; attach requests go to `attach` (the guard's loop).
    pub fn start(
        path: &Path,
        status: Arc<Mutex<Status>>,
        attach: Sender<Pending>,
    ) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another guard is running (it answers on {}); stop it first",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("cannot open {} to users: {e}", path.display()))?;
        let busy = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("guard-status".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if busy.load(Ordering::Acquire) >= MAX_CLIENTS {
                        continue;
                    }
                    busy.fetch_add(1, Ordering::AcqRel);
                    let (status, attach, count) = (status.clone(), attach.clone(), busy.clone());
                    let spawned = std::thread::Builder::new()
                        .name("guard-client".into())
                        .spawn(move || {
                            answer(stream, &status, &attach);
                            count.fetch_sub(1, Ordering::AcqRel);
                        });
                    if spawned.is_err() {
                        busy.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })
            .map_err(|e| format!("cannot start the status thread: {e}"))?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

/// Reads one request and answers it (an attach is handed to the guard's loop).
fn answer(stream: UnixStream, status: &Mutex<Status>, attach: &Sender<Pending>) {
    let Ok(peer) = Peer::of(&stream) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let read = stream
        .try_clone()
        .map(|s| BufReader::new(s.take(4096)).read_line(&mut line));
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        // Nothing asked (a second guard checking whether one runs).
        return;
    }
    let mut stream = stream;
    match serde_json::from_str::<Request>(line.trim()) {
        Ok(Request::Status) => {
            let text = status
                .lock()
                .map(|s| s.render(peer.uid))
                .unwrap_or_default();
            let _ = stream.write_all(text.as_bytes());
        }
        Ok(Request::Attach { pid }) => {
            let _ = stream.set_read_timeout(None);
            let _ = attach.send(Pending { peer, pid, stream });
        }
        Err(e) => {
            let _ = writeln!(
                stream,
                "buildwatch guard: not a request ({e}): use `buildwatch guard --status` or \
                 `buildwatch attach`"
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `--status`: prints what the guard at `path` says; 0, or 2 when no guard answers.
pub fn print(path: &Path) -> i32 {
    match connect(path, &Request::Status) {
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
            eprintln!("buildwatch: error: {e}");
            2
        }
    }
}

/// Connects to the guard at `path` and sends `request`; the error says what to do.
pub fn connect(path: &Path, request: &Request) -> Result<UnixStream, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "no guard answers on {} ({e}): is `buildwatch guard` running (systemctl status \
             buildwatch-guard)?",
            path.display()
        )
    })?;
    let mut line = serde_json::to_string(request).unwrap_or_default();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("cannot ask the guard on {} ({e})", path.display()))?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, EventKind, Exec};

    #[test]
    fn each_user_sees_their_own_builds_root_sees_all() {
        // A real process (this one), so that its uid can be read.
        let me = std::process::id();
        let uid = nix::unistd::getuid().as_raw();
        let mut builds = super::super::builds::Builds::new(1);
        builds.process(Event {
            time_ns: 1,
            pid: me,
            tid: me,
            ppid: 0,
            comm: String::new(),
            actor: None,
            callers: Vec::new(),
            kind: EventKind::Exec(Exec {
                path: "/t/bin/cargo".to_owned(),
                argv: vec!["cargo".to_owned(), "build".to_owned()],
                cwd: Some("/".to_owned()),
                guard_root: true,
                ..Exec::default()
            }),
        });
        let mut status = Status::default();
        status.refresh(builds.active());
        let line = format!("pid {me} uid {uid} ");
        for viewer in [0, uid] {
            let text = status.render(viewer);
            assert!(text.contains(&line), "{text}");
            assert!(text.contains("buildwatch attach PID"), "{text}");
        }
        let text = status.render(uid + 1);
        assert!(!text.contains(&line), "{text}");
        assert!(text.contains("builds being watched (yours): 0"), "{text}");
    }
}
