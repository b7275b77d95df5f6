//! Digests of the program images the build ran (issue 18), computed off the event path.
//!
//! The pipeline hands each `exec` and `macro-lib` event to [`Digester::submit`], which never
//! blocks: a bounded queue feeds one worker thread, and a full queue makes that image
//! `unavailable` rather than slowing the run. The worker first takes hold of every queued
//! image (opening `/proc/PID/exe` while the process may still live), then hashes one, then
//! looks again: a long hash does not let the short-lived processes behind it go by.
//!
//! A digest is only ever given for the file the kernel ran:
//! - an exec is hashed through `/proc/PID/exe` (the very file object the process runs) when
//!   that link still names the event's image; otherwise through its path;
//! - a proc-macro library is hashed through its path, checked against the device and inode of
//!   rustc's mapping of it (`/proc/PID/maps`) while rustc lives;
//! - in every case the file's change time must not be later than the event (writing, renaming,
//!   linking or replacing a file sets its ctime, which no call can set back), and its identity
//!   (device, inode, size, mtime, ctime) must be the same after hashing as before. Otherwise the
//!   image is `changed before it could be hashed`.
//!
//! Hashes are cached per file identity (device, inode, size, mtime): rustc, cc and ld run
//! hundreds of times in a build and are read once; and, running as root, between runs too (with
//! the change time: see `digest_store`).
use std::{
    collections::{HashMap, VecDeque},
    fs::File,
    io::{self, Read as _},
    os::unix::fs::MetadataExt as _,
    sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, channel, sync_channel},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use sha2::{Digest as _, Sha256};

use crate::{digest_store::Store, model::ImageDigest};

/// Images waiting for the worker; beyond this, images are reported unhashed.
const QUEUE: usize = 4096;
/// Images the worker holds open at once (file descriptors).
const HELD: usize = 256;
/// Identities whose digest is remembered.
const CACHE: usize = 16_384;

/// Which file an image request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The executable a process runs (an `exec` event).
    Exe,
    /// A library a process mapped (a `macro-lib` event).
    Mapped,
}

/// One image to hash.
#[derive(Clone, Debug)]
pub struct Request {
    /// The caller's key for the answer.
    pub id: u64,
    /// The process that ran or mapped it.
    pub pid: u32,
    /// The image's absolute path as the event gives it.
    pub path: String,
    /// When it ran, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Executable or mapped library.
    pub source: Source,
}

/// The identity of a file's content: the cache key, and what must not change while hashing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
}

/// Identity plus change time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    id: Identity,
    ctime_ns: i128,
}

fn stat(file: &File) -> io::Result<Stat> {
    let m = file.metadata()?;
    Ok(Stat {
        id: Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        },
        ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    })
}

/// An image the worker has taken hold of: its open file, or why there is none.
struct Held {
    request: Request,
    file: Result<File, ImageDigest>,
}

/// The worker's memory of digests, per identity, and what earlier runs stored.
#[derive(Default)]
pub struct Cache {
    digests: HashMap<Identity, String>,
    store: Option<Store>,
}

impl Cache {
    /// A cache backed by `store` (digests of earlier runs).
    pub fn with_store(store: Option<Store>) -> Self {
        Self {
            digests: HashMap::new(),
            store,
        }
    }

    fn get(&self, stat: &Stat) -> Option<&String> {
        self.digests.get(&stat.id).or_else(|| {
            self.store
                .as_ref()
                .and_then(|s| s.get(&stat.id, stat.ctime_ns))
        })
    }

    fn insert(&mut self, stat: &Stat, sha256: String, hashed_ns: i128) {
        if let Some(store) = self.store.as_mut() {
            store.put(stat.id, stat.ctime_ns, &sha256, hashed_ns);
        }
        // A plain reset keeps the bound: a build with more distinct images than this is rare,
        // and it only costs re-reading.
        if self.digests.len() >= CACHE {
            self.digests.clear();
        }
        self.digests.insert(stat.id, sha256);
    }
}

fn unavailable(detail: impl Into<String>) -> ImageDigest {
    ImageDigest::Unavailable {
        detail: detail.into(),
    }
}

fn changed(detail: impl Into<String>) -> ImageDigest {
    ImageDigest::Changed {
        detail: detail.into(),
    }
}

/// Opens the file a request names, as close as possible to the one the kernel used.
fn take_hold(request: &Request, proc_root: &str) -> Result<File, ImageDigest> {
    if !request.path.starts_with('/') {
        return Err(unavailable("the program's absolute path is not known"));
    }
    match request.source {
        Source::Exe => {
            let link = format!("{proc_root}/{}/exe", request.pid);
            // The link must still name the event's image: the process may have run another
            // program since, or its pid been reused.
            let same = std::fs::read_link(&link).ok().is_some_and(|target| {
                let target = target.to_string_lossy();
                target.strip_suffix(" (deleted)").unwrap_or(&target) == request.path
            });
            if same && let Ok(file) = File::open(&link) {
                return Ok(file);
            }
            open_path(&request.path)
        }
        Source::Mapped => {
            let file = open_path(&request.path)?;
            // While rustc lives, its mapping names the library's device and inode.
            if let Some((dev, ino)) = mapped_identity(proc_root, request.pid, &request.path) {
                let now = stat(&file).map_err(|e| unavailable(e.to_string()))?;
                if (now.id.dev, now.id.ino) != (dev, ino) {
                    return Err(changed(
                        "the path names another file than the one rustc mapped",
                    ));
                }
            }
            Ok(file)
        }
    }
}

fn open_path(path: &str) -> Result<File, ImageDigest> {
    File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => changed("the file is gone"),
        _ => unavailable(format!("cannot open {path}: {e}")),
    })
}

/// The (device, inode) of `path` in `pid`'s memory map, from `/proc/PID/maps`.
fn mapped_identity(proc_root: &str, pid: u32, path: &str) -> Option<(u64, u64)> {
    let maps = std::fs::read_to_string(format!("{proc_root}/{pid}/maps")).ok()?;
    parse_maps_identity(&maps, path)
}

/// `start-end perms offset MAJ:MIN inode path` (hex device numbers).
pub fn parse_maps_identity(maps: &str, path: &str) -> Option<(u64, u64)> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let dev = fields.nth(3)?;
        let ino: u64 = fields.next()?.parse().ok()?;
        let rest: Vec<&str> = fields.collect();
        let name = rest.join(" ");
        let name = name.strip_suffix(" (deleted)").unwrap_or(&name);
        if name != path {
            return None;
        }
        let (major, minor) = dev.split_once(':')?;
        let major = u32::from_str_radix(major, 16).ok()?;
        let minor = u32::from_str_radix(minor, 16).ok()?;
        Some((libc::makedev(major, minor), ino))
    })
}

/// Hashes a held image: the cached digest of its identity, or its content read now.
fn hash(held: Held, cache: &mut Cache) -> ImageDigest {
    let Held { request, file } = held;
    let mut file = match file {
        Ok(file) => file,
        Err(digest) => return digest,
    };
    let before = match stat(&file) {
        Ok(s) => s,
        Err(e) => return unavailable(e.to_string()),
    };
    if before.ctime_ns > i128::from(request.time_ns) {
        return changed(format!(
            "modified {:.3}s after it ran",
            (before.ctime_ns - i128::from(request.time_ns)) as f64 / 1e9
        ));
    }
    if let Some(sha256) = cache.get(&before) {
        return ImageDigest::Hashed {
            sha256: sha256.clone(),
            size: before.id.size,
        };
    }
    let hashed_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                read += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return unavailable(format!("reading {}: {e}", request.path)),
        }
    }
    match stat(&file) {
        Ok(after) if after == before && read == before.id.size => {}
        Ok(_) => return changed("modified while it was being hashed"),
        Err(e) => return unavailable(e.to_string()),
    }
    let sha256 = hex(&hasher.finalize());
    cache.insert(&before, sha256.clone(), hashed_ns);
    ImageDigest::Hashed {
        sha256,
        size: before.id.size,
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 of a whole file, lowercase hex (artifacts of the build, for the attestation).
pub fn sha256_file(path: &std::path::Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// The worker: hold every queued image, hash one, repeat.
fn work(requests: Receiver<Request>, answers: std::sync::mpsc::Sender<(u64, ImageDigest)>) {
    work_in(
        &requests,
        &answers,
        "/proc",
        Cache::with_store(Store::system()),
    );
}

fn work_in(
    requests: &Receiver<Request>,
    answers: &std::sync::mpsc::Sender<(u64, ImageDigest)>,
    proc_root: &str,
    mut cache: Cache,
) {
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut open = true;
    loop {
        // Take hold of what arrived (up to HELD open files) before hashing anything.
        while open && held.len() < HELD {
            let next = if held.is_empty() {
                requests.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                requests.try_recv()
            };
            match next {
                Ok(request) => {
                    let file = take_hold(&request, proc_root);
                    held.push_back(Held { request, file });
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let Some(next) = held.pop_front() else {
            if open {
                continue;
            }
            return;
        };
        let id = next.request.id;
        if answers.send((id, hash(next, &mut cache))).is_err() {
            return;
        }
    }
}

/// The hashing worker and its queues.
pub struct Digester {
    requests: Option<SyncSender<Request>>,
    answers: Receiver<(u64, ImageDigest)>,
    // Detached at drop: the worker ends once its queue is drained or nobody listens.
    _worker: JoinHandle<()>,
    next_id: u64,
    /// Images not hashed because the queue was full.
    pub overflowed: u64,
}

impl Digester {
    /// Starts the worker thread.
    pub fn start() -> io::Result<Self> {
        let (requests, rx) = sync_channel(QUEUE);
        let (tx, answers) = channel();
        let worker = std::thread::Builder::new()
            .name("digest".into())
            .spawn(move || work(rx, tx))?;
        Ok(Self {
            requests: Some(requests),
            answers,
            _worker: worker,
            next_id: 0,
            overflowed: 0,
        })
    }

    /// Queues an image; its id for [`Self::ready`], or at once the reason it will not be
    /// hashed. Never blocks.
    pub fn submit(
        &mut self,
        pid: u32,
        path: &str,
        time_ns: u64,
        source: Source,
    ) -> Result<u64, ImageDigest> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            id,
            pid,
            path: path.to_owned(),
            time_ns,
            source,
        };
        let Some(requests) = &self.requests else {
            return Err(unavailable("the digest worker has stopped"));
        };
        match requests.try_send(request) {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_)) => {
                self.overflowed += 1;
                Err(unavailable("hashing fell behind the build"))
            }
            Err(TrySendError::Disconnected(_)) => Err(unavailable("the digest worker has stopped")),
        }
    }

    /// The answers available now.
    pub fn ready(&self) -> Vec<(u64, ImageDigest)> {
        self.answers.try_iter().collect()
    }

    /// Waits for one answer until `deadline`.
    pub fn wait(&self, deadline: Instant) -> Option<(u64, ImageDigest)> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.answers.recv_timeout(left).ok()
    }

    /// Stops taking images: the worker finishes those queued and ends.
    pub fn close(&mut self) {
        self.requests = None;
    }

    /// How long the end of a run waits for the last digests.
    pub const FINISH: Duration = Duration::from_secs(60);
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
