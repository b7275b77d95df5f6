//! The program images a run executed and mapped, with their digests (issue 18): the events
//! file's reorder buffer and the run's list of images.
//!
//! Digests are computed off the event path ([`crate::digest`]), yet `--events` carries each one
//! on its `exec` or `macro-lib` record. So the events file is written in order through a
//! buffer: an image event waits there (with the events behind it) until its digest comes back.
//! Nothing upstream waits: attribution, policy and the observers see every event at once.
//! In `replay` the digests recorded in the stream pass through as they are.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use serde::Serialize;

use crate::{
    attribution::Attributor,
    digest::{Digester, Source},
    model::{Event, EventKind, ImageDigest, Role},
};

/// How the image came to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// Executed (`exec`).
    Exec,
    /// A proc-macro library rustc loaded (`macro-lib`).
    MacroLib,
}

/// Who ran an image: the role, crate and version answering for the process.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ImageActor {
    /// The role.
    pub role: Role,
    /// The crate, when known.
    #[serde(rename = "crate", skip_serializing_if = "Option::is_none")]
    pub krate: Option<String>,
    /// Its version, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One program image of the run and what is known of its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProgramImage {
    /// The file (absolute, as the kernel named it).
    pub path: String,
    /// Executed or loaded.
    pub kind: ImageKind,
    /// Its digest, or why there is none (absent for streams recorded without digests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<ImageDigest>,
    /// Who ran or loaded it.
    pub actors: BTreeSet<ImageActor>,
    /// How many times.
    pub runs: u64,
}

/// A network endpoint the build reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    /// The remote address (textual form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The name asked for (a DNS query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The remote port.
    pub port: u16,
    /// `udp` for DNS queries; unknown for a connect (absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
}

/// What a run leaves as evidence besides its images: where it wrote its artifacts, the
/// endpoints it reached and by whom, and when it ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunEvidence {
    /// The profile directories rustc wrote into (the parent of each `--out-dir .../deps`).
    pub output_dirs: BTreeSet<String>,
    /// Endpoints reached, with who reached them.
    pub network: BTreeMap<Endpoint, BTreeSet<ImageActor>>,
    /// The first and last event, nanoseconds since the Unix epoch.
    pub span: Option<(u64, u64)>,
}

/// Most endpoints remembered.
const ENDPOINTS: usize = 4096;

impl RunEvidence {
    fn record(&mut self, event: &Event) {
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(event.time_ns), b.max(event.time_ns)),
            None => (event.time_ns, event.time_ns),
        });
        let who = || actor_of(event);
        let endpoint = match &event.kind {
            EventKind::Exec(e) => {
                let out = e
                    .argv
                    .iter()
                    .position(|a| a == "--out-dir")
                    .and_then(|i| e.argv.get(i + 1))
                    .map(String::as_str)
                    .or_else(|| e.argv.iter().find_map(|a| a.strip_prefix("--out-dir=")));
                if let Some(out) = out {
                    let abs = match (&e.cwd, out.starts_with('/')) {
                        (Some(cwd), false) => {
                            crate::model::path::normalize(&std::path::Path::new(cwd).join(out))
                        }
                        _ => out.to_owned(),
                    };
                    if let Some(dir) = abs.strip_suffix("/deps") {
                        self.output_dirs.insert(dir.to_owned());
                    }
                }
                None
            }
            EventKind::Connect(c) if c.result == 0 || c.error.as_deref() == Some("EINPROGRESS") => {
                matches!(
                    c.family,
                    crate::model::SocketFamily::Inet | crate::model::SocketFamily::Inet6
                )
                .then(|| Endpoint {
                    ip: Some(c.addr.clone()),
                    hostname: None,
                    port: c.port,
                    protocol: None,
                })
            }
            EventKind::Dns(d) => Some(Endpoint {
                ip: Some(d.server.clone()),
                hostname: Some(d.name.clone()),
                port: d.port,
                protocol: Some("udp"),
            }),
            _ => None,
        };
        if let Some(endpoint) = endpoint
            && (self.network.len() < ENDPOINTS || self.network.contains_key(&endpoint))
        {
            self.network.entry(endpoint).or_default().insert(who());
        }
    }
}

struct Pending {
    event: Event,
    id: Option<u64>,
    who: Option<ImageActor>,
}

/// The reorder buffer and the list of images.
#[derive(Default)]
pub struct Images {
    digester: Option<Digester>,
    pending: VecDeque<Pending>,
    answers: HashMap<u64, ImageDigest>,
    programs: BTreeMap<(String, ImageKind, Option<ImageDigest>), ProgramImage>,
    /// Digests by (pid, path), for views that show an event's details: the most recent
    /// [`BY_PROCESS`] (a long run starts millions of processes), oldest first in `order`.
    by_process: HashMap<(u32, String), ImageDigest>,
    by_process_order: VecDeque<(u32, String)>,
    evidence: RunEvidence,
    /// Each image's digest as it became known or changed (image path, digest), for live views,
    /// which keep the latest per path: one entry per image, not per process that ran it.
    resolved: Vec<(String, ImageDigest)>,
    /// The latest digest of each image path in `resolved`.
    latest: HashMap<String, ImageDigest>,
    /// Other events are not written anywhere (no `--events` file): they need not wait, in
    /// copies, behind an image whose digest is being computed.
    no_stream: bool,
}

/// Most (pid, path) digests kept for the views: as many as the processes the attribution
/// keeps (the running and the most recent exited ones).
const BY_PROCESS: usize = 2 * crate::attribution::KEEP_EXITED;

/// The image an event names, if it is an image event.
fn image_of(event: &Event) -> Option<(String, ImageKind, Option<&ImageDigest>)> {
    match &event.kind {
        EventKind::Exec(e) => Some((e.image().to_owned(), ImageKind::Exec, e.digest.as_ref())),
        EventKind::MacroLib(m) => Some((m.path.clone(), ImageKind::MacroLib, m.digest.as_ref())),
        _ => None,
    }
}

fn set_digest(event: &mut Event, digest: ImageDigest) {
    match &mut event.kind {
        EventKind::Exec(e) => e.digest = Some(digest),
        EventKind::MacroLib(m) => m.digest = Some(digest),
        _ => {}
    }
}

impl Images {
    /// Hashing with `digester` (live runs); `None` keeps the stream's own digests (replay).
    pub fn new(digester: Option<Digester>) -> Self {
        Self {
            digester,
            ..Self::default()
        }
    }

    /// Whether the events given to `write` are kept (an events file): only then must events
    /// other than images keep their order behind an image that waits for its digest.
    pub fn writing_events(mut self, writing: bool) -> Self {
        self.no_stream = !writing;
        self
    }

    /// Takes an attributed event; `write` is given every event whose turn has come, in order,
    /// with its digest.
    pub fn push(&mut self, event: &Event, attributor: &Attributor, write: &mut dyn FnMut(&Event)) {
        self.evidence.record(event);
        let Some((path, kind, digest)) = image_of(event) else {
            if self.pending.is_empty() || self.no_stream {
                write(event);
            } else {
                self.pending.push_back(Pending {
                    event: event.clone(),
                    id: None,
                    who: None,
                });
            }
            self.drain(write);
            return;
        };
        let who = image_actor(event, kind, &path, attributor);
        let mut event = event.clone();
        let mut id = None;
        if digest.is_none()
            && let Some(digester) = &mut self.digester
        {
            let source = match kind {
                ImageKind::Exec => Source::Exe,
                ImageKind::MacroLib => Source::Mapped,
            };
            match digester.submit(event.pid, &path, event.time_ns, source) {
                Ok(n) => id = Some(n),
                Err(d) => set_digest(&mut event, d),
            }
        }
        self.pending.push_back(Pending {
            event,
            id,
            who: Some(who),
        });
        self.drain(write);
    }

    /// Writes the events whose turn has come.
    fn drain(&mut self, write: &mut dyn FnMut(&Event)) {
        // Every image waiting for its digest holds its event here: with none waiting, no
        // answer can be due (and asking the digest channel for each event cost ~2 % of the
        // pipeline thread).
        if self.pending.is_empty() {
            return;
        }
        if let Some(digester) = &self.digester {
            self.answers.extend(digester.ready());
        }
        while let Some(front) = self.pending.front() {
            if let Some(id) = front.id
                && !self.answers.contains_key(&id)
            {
                return;
            }
            let Some(mut p) = self.pending.pop_front() else {
                return;
            };
            if let Some(id) = p.id
                && let Some(d) = self.answers.remove(&id)
            {
                set_digest(&mut p.event, d);
            }
            self.release(&p);
            write(&p.event);
        }
    }

    /// Waits (at most [`Digester::FINISH`]) for the digests still being computed, then writes
    /// everything left; an image not hashed by then says so.
    pub fn finish(&mut self, write: &mut dyn FnMut(&Event)) {
        if let Some(digester) = &mut self.digester {
            digester.close();
            let deadline = Instant::now() + Digester::FINISH;
            while self
                .pending
                .iter()
                .any(|p| p.id.is_some_and(|id| !self.answers.contains_key(&id)))
            {
                match digester.wait(deadline) {
                    Some((id, d)) => {
                        self.answers.insert(id, d);
                    }
                    None => break,
                }
            }
        }
        for p in &mut self.pending {
            if let Some(id) = p.id
                && !self.answers.contains_key(&id)
            {
                self.answers.insert(
                    id,
                    ImageDigest::Unavailable {
                        detail: "not hashed before the run ended".to_owned(),
                    },
                );
            }
        }
        self.drain(write);
        self.digester = None;
    }

    fn release(&mut self, p: &Pending) {
        let Some(who) = &p.who else { return };
        let Some((path, kind, digest)) = image_of(&p.event) else {
            return;
        };
        let digest = digest.cloned();
        if let Some(d) = &digest {
            let key = (p.event.pid, path.clone());
            if self.by_process.insert(key.clone(), d.clone()).is_none() {
                self.by_process_order.push_back(key);
            }
            while self.by_process_order.len() > BY_PROCESS {
                if let Some(old) = self.by_process_order.pop_front() {
                    self.by_process.remove(&old);
                }
            }
            if self.latest.get(&path) != Some(d) {
                self.latest.insert(path.clone(), d.clone());
                self.resolved.push((path.clone(), d.clone()));
            }
        }
        let entry = self
            .programs
            .entry((path.clone(), kind, digest.clone()))
            .or_insert_with(|| ProgramImage {
                path,
                kind,
                digest,
                actors: BTreeSet::new(),
                runs: 0,
            });
        entry.runs += 1;
        entry.actors.insert(who.clone());
    }

    /// The digests that became known after the first `n` (image path, digest).
    pub fn digests_since(&self, n: usize) -> &[(String, ImageDigest)] {
        self.resolved.get(n..).unwrap_or_default()
    }

    /// The digest of the image `path` of process `pid`, once known.
    pub fn digest_of(&self, pid: u32, path: &str) -> Option<&ImageDigest> {
        self.by_process.get(&(pid, path.to_owned()))
    }

    /// Output directories, endpoints and the run's span.
    pub fn evidence(&self) -> RunEvidence {
        self.evidence.clone()
    }

    /// The images of the run, by path.
    pub fn programs(&self) -> Vec<ProgramImage> {
        self.programs.values().cloned().collect()
    }
}

/// Who answers for an image: for a proc-macro library, the proc-macro's crate; else the event's
/// actor.
fn image_actor(event: &Event, kind: ImageKind, path: &str, attributor: &Attributor) -> ImageActor {
    if kind == ImageKind::MacroLib {
        let krate = attributor.macro_crate(path);
        return ImageActor {
            role: Role::ProcMacro,
            krate: Some(krate.name),
            version: krate.version,
        };
    }
    actor_of(event)
}

fn actor_of(event: &Event) -> ImageActor {
    match &event.actor {
        Some(a) => ImageActor {
            role: a.role,
            krate: a.krate.clone(),
            version: a.version.clone(),
        },
        None => ImageActor {
            role: Role::Command,
            krate: None,
            version: None,
        },
    }
}

#[cfg(test)]
#[path = "images_tests.rs"]
mod tests;
