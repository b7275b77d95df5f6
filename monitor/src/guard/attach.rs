//! `buildwatch attach [PID]`: the guard's side. A client asks, on the guard's socket, for one
//! build ([`Request::Attach`]); the guard checks who asks (`SO_PEERCRED`: root may attach to
//! any build, anyone else only to builds running as their own uid) and answers with JSON Lines
//! ([`Message`]): the build's facts, its findings so far, then every attributed event (the
//! `--events` serialisation) and the findings as they change, and its end. Nothing the client
//! does reaches the build or the guard: a slow client loses events (counted, and told), a gone
//! one is dropped.
use std::{
    io::{BufWriter, Write as _},
    os::{fd::AsRawFd as _, unix::net::UnixStream},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc::{Receiver, Sender, channel},
    },
    thread,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::builds::{Build, Builds, Ended};
use crate::{
    attribution::{CrateRef, Role},
    model::{Event, Exit, Shown},
    pipeline::Pipeline,
    policy::Finding,
    profile::crate_key,
};

/// What a client asks the guard's socket, as one JSON line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The text status (`buildwatch guard --status`).
    Status,
    /// A build's live stream: the build with process `pid`, or the asker's only build.
    Attach {
        /// A process of the build (its root or any other).
        pid: Option<u32>,
    },
}

/// What the guard streams to an attached client, one JSON line each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Message {
    /// The first line: the build attached to.
    Attached(BuildFacts),
    /// The attach was refused (the only line): why, and what to do.
    Error(String),
    /// An attributed event, as `--events` writes it.
    Event(Box<Event>),
    /// The build's findings so far (replaces the previous list), as the report writes them.
    Findings(Vec<Finding>),
    /// Every build script that ran and proc-macro that was loaded so far.
    Seen(Vec<(CrateRef, Role)>),
    /// Events the guard did not send because the client fell behind.
    Lost(u64),
    /// The build ended (the last line).
    Ended {
        /// How its root exited (None: not seen, or unfinished).
        exit: Option<Exit>,
        /// The guard stopped before the build ended.
        unfinished: bool,
    },
}

/// The build a client attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildFacts {
    /// Its root process.
    pub root: u32,
    /// The uid it runs as.
    pub uid: Option<u32>,
    /// The root's command line.
    pub command: Vec<String>,
    /// Its workspace.
    pub workspace: Option<PathBuf>,
    /// Crates (as [`crate_key`]) that have a profile there, the workspace's or a shipped one.
    pub profiled: Vec<String>,
}

/// Who is at the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its uid when it connected.
    pub uid: u32,
    /// Its pid.
    pub pid: u32,
}

impl Peer {
    /// The peer of `stream`, as the kernel recorded it at connect (`SO_PEERCRED`).
    pub fn of(stream: &UnixStream) -> std::io::Result<Self> {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: getsockopt(2) writes at most `len` bytes into `cred`, a ucred on our stack.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            uid: cred.uid,
            pid: cred.pid as u32,
        })
    }
}

/// An attach request, handed from the socket's thread to the guard's loop (which has the
/// builds).
pub struct Pending {
    /// Who asks.
    pub peer: Peer,
    /// For which process.
    pub pid: Option<u32>,
    /// The connection.
    pub stream: UnixStream,
}

/// The build `peer` may attach to: the one with process `pid`, or without a pid their only
/// build. The error says why not, and what to do.
pub fn resolve(builds: &Builds, peer: Peer, pid: Option<u32>) -> Result<&Build, String> {
    let may = |b: &Build| peer.uid == 0 || b.uid == Some(peer.uid);
    if let Some(pid) = pid {
        let Some(build) = builds.build_of(pid) else {
            return Err(format!(
                "no build being watched has a process {pid} (`buildwatch guard --status` lists \
                 the builds and their pids)"
            ));
        };
        if !may(build) {
            return Err(format!(
                "permission denied: build {} runs as uid {}; only that user or root may attach \
                 to it",
                build.root,
                build
                    .uid
                    .map_or_else(|| "unknown".to_owned(), |u| u.to_string())
            ));
        }
        return Ok(build);
    }
    let mut mine: Vec<&Build> = builds.active().filter(|b| may(b)).collect();
    mine.sort_by_key(|b| b.root);
    match mine.as_slice() {
        [] if peer.uid == 0 => Err("no build is being watched".to_owned()),
        [] => Err(format!(
            "no build of yours (uid {}) is being watched",
            peer.uid
        )),
        [one] => Ok(one),
        several => {
            let mut text = format!(
                "{} builds are being watched; choose one with `buildwatch attach PID`:",
                several.len()
            );
            for b in several {
                text.push_str(&format!(
                    "\n  pid {} uid {}: {}",
                    b.root,
                    b.uid.map_or_else(|| "?".to_owned(), |u| u.to_string()),
                    Shown(&super::status::shorten(&b.command.join(" ")))
                ));
            }
            Err(text)
        }
    }
}

/// How often findings are re-sent while events flow.
const SYNC_EVERY: Duration = Duration::from_millis(250);
/// Events queued for one client past which further events are dropped (and counted).
const QUEUE_LIMIT: usize = 65_536;
/// Clients attached at once, at most (the socket is open to every local user).
const MAX_FOLLOWERS: usize = 32;
/// A client that takes longer than this to accept a write is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One attached client.
struct Follower {
    root: u32,
    tx: Sender<Message>,
    /// To notice a client that hung up while its build is quiet.
    stream: UnixStream,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    last_sync: Option<Instant>,
    /// (number of findings, total occurrences) last sent.
    findings_sent: (usize, u64),
    seen_sent: usize,
}

impl Follower {
    fn send(&self, message: Message) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(message).is_err() {
            self.closed.store(true, Ordering::Release);
        }
    }

    /// Findings and crates, when they changed (at most every [`SYNC_EVERY`] unless `now`).
    fn sync(&mut self, pipeline: &Pipeline, now: bool) {
        if !now && self.last_sync.is_some_and(|t| t.elapsed() < SYNC_EVERY) {
            return;
        }
        self.last_sync = Some(Instant::now());
        let findings = pipeline.findings();
        let signature = (findings.len(), findings.iter().map(|f| f.count).sum());
        if signature != self.findings_sent || now {
            self.findings_sent = signature;
            self.send(Message::Findings(findings.into_iter().cloned().collect()));
        }
        let seen = pipeline.attributor().seen();
        if seen.len() != self.seen_sent || now {
            self.seen_sent = seen.len();
            self.send(Message::Seen(seen.iter().cloned().collect()));
        }
    }

    /// The client closed its end (or the writer gave up on it).
    fn gone(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        let mut fd = libc::pollfd {
            fd: self.stream.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: poll(2) on one valid pollfd, without waiting.
        let n = unsafe { libc::poll(&mut fd, 1, 0) };
        n > 0 && fd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
    }
}

/// The clients attached to the guard's builds.
#[derive(Default)]
pub struct Followers {
    list: Vec<Follower>,
}

impl Followers {
    /// Answers an attach request: refused with the reason, or attached (the build's facts and
    /// findings so far, then its events from now on).
    pub fn accept(&mut self, pending: Pending, builds: &Builds) {
        self.list.retain(|f| !f.gone());
        let chosen = if self.list.len() >= MAX_FOLLOWERS {
            Err(format!(
                "{MAX_FOLLOWERS} views are attached already; try again later"
            ))
        } else {
            resolve(builds, pending.peer, pending.pid)
        };
        let Ok(stream) = pending.stream.try_clone() else {
            return;
        };
        let (tx, rx) = channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let spawned = {
            let (queued, dropped, closed) = (queued.clone(), dropped.clone(), closed.clone());
            thread::Builder::new()
                .name("guard-attach".into())
                .spawn(move || write_all(pending.stream, &rx, &queued, &dropped, &closed))
        };
        if spawned.is_err() {
            return;
        }
        let build = match chosen {
            Ok(build) => build,
            Err(e) => {
                // The writer sends it and ends, the sender being dropped.
                let _ = tx.send(Message::Error(e));
                return;
            }
        };
        let mut follower = Follower {
            root: build.root,
            tx,
            stream,
            queued,
            dropped,
            closed,
            last_sync: None,
            findings_sent: (0, 0),
            seen_sent: 0,
        };
        let mut profiled: Vec<String> = build
            .workspace
            .profiles
            .iter()
            .map(|p| crate_key(&p.krate))
            .collect();
        profiled.sort();
        profiled.dedup();
        follower.send(Message::Attached(BuildFacts {
            root: build.root,
            uid: build.uid,
            command: build.command.clone(),
            workspace: build.workspace.root.clone(),
            profiled,
        }));
        follower.sync(build.pipeline(), true);
        self.list.push(follower);
    }

    /// An event of build `root`, as attributed.
    pub fn event(&mut self, root: u32, event: &Event, pipeline: &Pipeline) {
        for f in self.list.iter_mut().filter(|f| f.root == root) {
            if f.queued.load(Ordering::Acquire) >= QUEUE_LIMIT {
                f.dropped.fetch_add(1, Ordering::AcqRel);
            } else {
                f.send(Message::Event(Box::new(event.clone())));
            }
            f.sync(pipeline, false);
        }
    }

    /// Every turn of the guard's loop: findings that changed while no event came, and clients
    /// that went away.
    pub fn tick(&mut self, builds: &Builds) {
        self.list.retain(|f| !f.gone());
        for f in &mut self.list {
            if let Some(build) = builds.get(f.root) {
                f.sync(build.pipeline(), false);
            }
        }
    }

    /// A build ended: its clients get its final findings and its end, and are let go.
    pub fn ended(&mut self, build: &Ended) {
        for f in self.list.iter().filter(|f| f.root == build.root) {
            f.send(Message::Seen(build.report.seen.iter().cloned().collect()));
            f.send(Message::Findings(build.report.findings.clone()));
            f.send(Message::Ended {
                exit: build.exit.clone(),
                unfinished: build.unfinished,
            });
        }
        // Dropping the sender ends the writer once it has written everything.
        self.list.retain(|f| f.root != build.root);
    }

    /// Clients attached.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// No client attached.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The writer thread of one client: each message as a JSON line, flushed whenever the queue is
/// empty; events dropped for this client are announced as [`Message::Lost`]. Ends when the
/// guard lets the client go (after writing everything) or the client stops reading.
fn write_all(
    stream: UnixStream,
    rx: &Receiver<Message>,
    queued: &AtomicUsize,
    dropped: &AtomicU64,
    closed: &AtomicBool,
) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut out = BufWriter::new(stream);
    let write = |out: &mut BufWriter<UnixStream>, m: &Message| -> bool {
        serde_json::to_writer(&mut *out, m).is_ok() && out.write_all(b"\n").is_ok()
    };
    while let Ok(message) = rx.recv() {
        let mut ok = write(&mut out, &message);
        queued.fetch_sub(1, Ordering::AcqRel);
        while ok && let Ok(more) = rx.try_recv() {
            ok = write(&mut out, &more);
            queued.fetch_sub(1, Ordering::AcqRel);
        }
        let lost = dropped.swap(0, Ordering::AcqRel);
        if ok && lost > 0 {
            ok = write(&mut out, &Message::Lost(lost));
        }
        if !ok || out.flush().is_err() {
            closed.store(true, Ordering::Release);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_messages_are_json_lines() {
        let r: Request = serde_json::from_str(r#"{"attach":{"pid":42}}"#).expect("parse");
        assert_eq!(r, Request::Attach { pid: Some(42) });
        let r: Request = serde_json::from_str(r#""status""#).expect("parse");
        assert_eq!(r, Request::Status);
        assert!(serde_json::from_str::<Request>(r#"{"attach":{"pid":1,"x":2}}"#).is_err());
        let m = Message::Ended {
            exit: Some(Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 0,
            }),
            unfinished: false,
        };
        let line = serde_json::to_string(&m).expect("serialise");
        assert_eq!(line, r#"{"ended":{"exit":{"code":0},"unfinished":false}}"#);
        assert_eq!(serde_json::from_str::<Message>(&line).expect("parse"), m);
    }

    fn exec_event(pid: u32, path: &str) -> Event {
        Event {
            time_ns: 1,
            pid,
            tid: pid,
            ppid: 0,
            comm: String::new(),
            actor: None,
            callers: Vec::new(),
            kind: crate::model::EventKind::Exec(crate::model::Exec {
                path: path.to_owned(),
                argv: vec![path.to_owned(), "build".to_owned()],
                cwd: Some("/".to_owned()),
                guard_root: true,
                ..crate::model::Exec::default()
            }),
        }
    }

    #[test]
    fn who_may_attach_to_what() {
        // Real processes, so that their uid can be read: this one and its parent.
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let uid = nix::unistd::getuid().as_raw();
        let other = Peer {
            uid: uid + 1,
            pid: 1,
        };
        let owner = Peer { uid, pid: 1 };
        let root = Peer { uid: 0, pid: 1 };
        let mut builds = Builds::new(1);
        let none = resolve(&builds, owner, None).map(|b| b.root);
        assert!(none.is_err_and(|e| e.contains("no build")));
        builds.process(exec_event(me, "/t/bin/cargo"));
        builds.process(Event {
            kind: crate::model::EventKind::Fork(crate::model::Fork { child_pid: 77_777 }),
            ..exec_event(me, "/t/bin/cargo")
        });
        // Any process of the build names it.
        assert_eq!(
            resolve(&builds, owner, Some(77_777)).map(|b| b.root),
            Ok(me)
        );
        assert_eq!(resolve(&builds, owner, None).map(|b| b.root), Ok(me));
        assert_eq!(resolve(&builds, root, Some(me)).map(|b| b.root), Ok(me));
        let denied = resolve(&builds, other, Some(me)).map(|b| b.root);
        assert!(denied.is_err_and(|e| e.starts_with("permission denied")));
        // Someone else's build is not theirs to pick either.
        let theirs = resolve(&builds, other, None).map(|b| b.root);
        assert!(theirs.is_err_and(|e| e.contains("no build of yours")));
        let unknown = resolve(&builds, owner, Some(88_888)).map(|b| b.root);
        assert!(unknown.is_err_and(|e| e.contains("no build being watched has a process 88888")));
        // Two builds and no pid: a list to choose from.
        builds.process(exec_event(parent, "/t/bin/rustc"));
        let several = resolve(&builds, owner, None).map(|b| b.root);
        assert!(
            several.as_ref().is_err_and(|e| e.contains("2 builds")
                && e.contains(&format!("pid {me} "))
                && e.contains(&format!("pid {parent} "))),
            "{several:?}"
        );
    }
}
