//! `buildwatch guard`: a long-running root service that watches every build on the machine,
//! whoever started it (a terminal, an editor's rust-analyzer, a script). The kernel adopts a
//! process at exec when its new image is a cargo, rustc or rust-analyzer known by identity
//! (`GUARD_ROOTS`, see `sensor::GuardRoots`); each such root opens a build with its own
//! pipeline (see [`builds`]), checked with its workspace's profiles and policy exactly as
//! `buildwatch ci` would (see [`workspace`]); when it ends, its findings go to the journal, the
//! JSON Lines log and the user's desktop (see [`sinks`]). docs/guard.md is the user's guide.
pub mod attach;
pub mod builds;
pub mod dormancy;
pub mod enforce;
pub mod sinks;
pub mod status;
pub mod workspace;

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{RecvTimeoutError, channel, sync_channel},
    },
    thread,
    time::{Duration, Instant},
};

use builds::{Builds, Ended};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use sinks::{ERR, INFO, Journal, JsonLog, WARNING};

use crate::{
    decode::Decoder,
    policy::Severity,
    sensor::{GuardRoots, ProtectedSet, Sensor, SensorConfig, StreamMessage},
};

/// The guard could not start (exit status 2).
pub const EXIT_SETUP: i32 = 2;
/// The guard stopped watching on its own (the sensor failed): exit status 4, as an incomplete
/// `ci` run.
pub const EXIT_STOPPED: i32 = 4;

/// How often the toolchain directories are looked at again.
const REFRESH: Duration = Duration::from_secs(10);

/// What a guard needs.
#[derive(Clone, Debug)]
pub struct GuardOptions {
    /// `--log`: JSON Lines, one finding per line.
    pub log: Option<PathBuf>,
    /// The status socket.
    pub socket: PathBuf,
    /// `--toolchain`: more directories holding cargo/rustc (or a toolchain's `bin/`).
    pub toolchains: Vec<PathBuf>,
    /// How long a build's processes may outlive its root before the build is reported.
    pub grace: Duration,
    /// `--idle-after`: how long the system call hooks stay attached with nothing to watch.
    pub idle_after: Duration,
    /// Ring buffer size.
    pub ring_buffer_bytes: u32,
    /// Desktop notifications.
    pub notify: bool,
    /// The journal's socket.
    pub journal: PathBuf,
    /// `--enforce`: kill mode and network refusal for every build (see [`enforce`]).
    pub enforce: bool,
}

/// Runs the guard until SIGTERM/SIGINT/SIGHUP; returns the exit status.
pub fn run(options: &GuardOptions) -> i32 {
    let journal = Journal::open(&options.journal);
    let fail = |message: String, code: i32| {
        // Loud: the journal (or stderr, which systemd also keeps), and the exit status.
        journal.send(
            ERR,
            &format!("buildwatch guard: error: not watching builds: {message}"),
            &[],
        );
        code
    };
    let mut log = match options.log.as_deref().map(JsonLog::open).transpose() {
        Ok(log) => log,
        Err(e) => {
            let path = options.log.clone().unwrap_or_default();
            let path = path.display();
            return fail(format!("cannot open the log {path}: {e}"), EXIT_SETUP);
        }
    };
    let mut roots = GuardRoots::resolve(&options.toolchains);
    if roots.found.is_empty() {
        return fail(
            "no cargo, rustc or rust-analyzer found (rustup toolchains under each user's \
             ~/.rustup, ~/.cargo/bin, /usr/bin, /usr/local/bin); name the toolchain's directory \
             with --toolchain DIR"
                .to_owned(),
            EXIT_SETUP,
        );
    }
    let status = Arc::new(Mutex::new(status::Status::default()));
    let (attach_tx, attach_rx) = channel::<attach::Pending>();
    let _server = match status::Server::start(&options.socket, status.clone(), attach_tx) {
        Ok(server) => server,
        Err(e) => return fail(e, EXIT_SETUP),
    };
    let mut sensor = match Sensor::load(&SensorConfig {
        ring_buffer_bytes: options.ring_buffer_bytes,
        enforce: options.enforce,
        // Builds of every user: no one uid to compare privileges with.
        build_uid: 0,
        guard: true,
    }) {
        Ok(sensor) => sensor,
        Err(e) => return fail(e.to_string(), EXIT_SETUP),
    };
    if let Err(e) = sensor.set_guard_roots(&roots.keys()) {
        return fail(e.to_string(), EXIT_SETUP);
    }
    // Every user's secrets, by identity.
    let homes: Vec<PathBuf> = passwd_homes();
    let home_refs: Vec<&std::path::Path> = homes.iter().map(PathBuf::as_path).collect();
    let protected = ProtectedSet::resolve(&home_refs, None);
    if let Err(e) = sensor.protect(&protected) {
        return fail(e.to_string(), EXIT_SETUP);
    }
    // Persistence targets by identity, for kill mode (what a write there is, is decided by
    // path in any case): every user's, and the system's.
    let persist = if options.enforce {
        let set = crate::sensor::PersistSet::resolve(
            &home_refs,
            None,
            &crate::policy::CiChannels::from_process(),
        );
        if let Err(e) = sensor.persist(&set) {
            return fail(e.to_string(), EXIT_SETUP);
        }
        set
    } else {
        crate::sensor::PersistSet::default()
    };
    let protected_files: Arc<[crate::model::ProtectedFile]> = Arc::from(protected.files);
    let mut enforcement = options.enforce.then(|| {
        enforce::Enforcement::new(crate::enforce::KnownFiles::new(
            protected_files.clone(),
            &persist,
        ))
    });
    let persist_files: Arc<[crate::model::ProtectedFile]> = Arc::from(persist.targets);
    // The system call hooks are attached once now, to know that they can be (the guard then
    // fails here, loudly, not at the first build), and detached until a build needs them.
    if let Err(e) = sensor.wake() {
        return fail(
            format!("cannot attach the system call hooks: {e}"),
            EXIT_SETUP,
        );
    }
    let mut dormancy = dormancy::Dormancy::new(options.idle_after);
    if let Err(e) = sensor.sleep() {
        return fail(
            format!("cannot detach the system call hooks: {e}"),
            EXIT_SETUP,
        );
    }
    let Some(stream) = sensor.take_stream() else {
        return fail("the event stream is missing".to_owned(), EXIT_SETUP);
    };
    let (programs, maps) = sensor.object_ids();
    let gaps = sensor.coverage_gaps().to_vec();
    let started = format!(
        "buildwatch guard: watching every build (pid {}; {} build-root executables; program ids \
         {programs:?}; map ids {maps:?})",
        std::process::id(),
        roots.found.len()
    );
    journal.send(INFO, &started, &[]);
    for gap in &gaps {
        journal.send(
            WARNING,
            &format!("buildwatch guard: coverage gap: {gap}"),
            &[],
        );
    }

    let (tx, rx) = sync_channel::<Vec<StreamMessage>>(64);
    let stop = match crate::sensor::StopSignal::new() {
        Ok(stop) => stop,
        Err(e) => {
            return fail(
                format!("cannot make the reader's stop signal: {e}"),
                EXIT_SETUP,
            );
        }
    };
    let reader = {
        let stop = stop.clone();
        let decoder = Decoder::for_this_boot()
            .with_protected(protected_files)
            .with_persist(persist_files);
        thread::Builder::new()
            .name("sensor".into())
            .spawn(move || stream.run(decoder, |m| tx.send(m).is_ok(), stop))
    };
    let Ok(reader) = reader else {
        return fail("cannot start the sensor thread".to_owned(), EXIT_SETUP);
    };
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT, SIGHUP] {
        if let Err(e) = signal_hook::flag::register(sig, signalled.clone()) {
            return fail(format!("cannot catch signal {sig}: {e}"), EXIT_SETUP);
        }
    }

    let mut builds = Builds::new(std::process::id());
    let mut followers = attach::Followers::default();
    let emit = |ended: Vec<Ended>, log: &mut Option<JsonLog>, followers: &mut attach::Followers| {
        for build in ended {
            followers.ended(&build);
            report(&journal, log, &build, options.notify);
            if let Ok(mut s) = status.lock() {
                s.ended(&build);
            }
        }
    };
    let mut last_refresh = Instant::now();
    let mut fingerprint = roots.fingerprint();
    let mut drained = false;
    let mut exit = 0;
    loop {
        if signalled.load(Ordering::Acquire) {
            stop.set();
        }
        // Before the events: a process held for the system call hooks, or a build script
        // that kill mode continues once attributed, runs only after they are attached.
        if !hooks_turn(&mut dormancy, &mut sensor, &journal) {
            exit = EXIT_STOPPED;
            stop.set();
            break;
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(batch) => {
                if !hooks_turn(&mut dormancy, &mut sensor, &journal) {
                    exit = EXIT_STOPPED;
                    stop.set();
                    break;
                }
                for message in batch {
                    match message {
                        StreamMessage::Event(event) => {
                            let ended = builds.process_observed(event, &mut |e, build| {
                                // Enforcement first: a held build script goes on at once.
                                if let Some(enforcement) = enforcement.as_mut() {
                                    enforcement.event(&mut sensor, e, build);
                                }
                                followers.event(build.root, e, build.pipeline());
                            });
                            if let Some(enforcement) = enforcement.as_mut() {
                                for build in &ended {
                                    enforcement.ended(&mut sensor, build.root);
                                }
                            }
                            emit(ended, &mut log, &mut followers);
                        }
                        StreamMessage::DecodeError(e) => {
                            journal.send(
                                WARNING,
                                &format!("buildwatch guard: undecodable sensor record ({e})"),
                                &[],
                            );
                        }
                        StreamMessage::Drained => drained = true,
                        StreamMessage::Flushed => {}
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if !stop.is_set() {
                    exit = EXIT_STOPPED;
                }
                drained = true;
            }
        }
        let (ended, leftovers) = builds.tick(options.grace);
        for pid in leftovers {
            sensor.untrack(pid);
        }
        if let Some(enforcement) = enforcement.as_mut() {
            for build in &ended {
                enforcement.ended(&mut sensor, build.root);
            }
            enforcement.tick(&sensor);
            for e in enforcement.errors.drain(..) {
                journal.send(ERR, &format!("buildwatch guard: enforcing: {e}"), &[]);
            }
        }
        emit(ended, &mut log, &mut followers);
        while let Ok(pending) = attach_rx.try_recv() {
            followers.accept(pending, &builds);
        }
        followers.tick(&builds);
        if let Ok(mut s) = status.lock() {
            s.refresh(builds.active());
            s.hooks(sensor.syscall_hooks_live(), dormancy.wakes);
        }
        if drained {
            break;
        }
        if last_refresh.elapsed() >= REFRESH {
            last_refresh = Instant::now();
            let now = GuardRoots::resolve(&options.toolchains).fingerprint();
            if now != fingerprint {
                roots = GuardRoots::resolve(&options.toolchains);
                fingerprint = roots.fingerprint();
                match sensor.set_guard_roots(&roots.keys()) {
                    Ok(()) => journal.send(
                        INFO,
                        &format!(
                            "buildwatch guard: toolchains changed: {} build-root executables",
                            roots.found.len()
                        ),
                        &[],
                    ),
                    Err(e) => journal.send(ERR, &format!("buildwatch guard: {e}"), &[]),
                }
            }
        }
    }
    let _ = reader.join();
    let unfinished = builds.finish_all();
    let count = unfinished.len();
    emit(unfinished, &mut log, &mut followers);
    if let Some(enforcement) = &enforcement {
        enforcement.stop(&sensor);
    }
    // Nobody will attach the hooks for them any more: a build must not hang.
    let _ = sensor.release_held();
    // Detaches every program and frees the maps (the sensor's drop).
    drop(sensor);
    let message = if exit == 0 {
        format!(
            "buildwatch guard: stopped; {count} builds were still running (reported unfinished, left running)"
        )
    } else {
        format!(
            "buildwatch guard: the sensor stopped unexpectedly: builds are NOT watched any more ({count} reported unfinished)"
        )
    };
    journal.send(if exit == 0 { WARNING } else { ERR }, &message, &[]);
    exit
}

/// Attaches or detaches the system call hooks as the tracked set needs (see [`dormancy`]), and
/// says so in the journal. False when they could not be attached: the guard then stops, loudly.
fn hooks_turn(dormancy: &mut dormancy::Dormancy, sensor: &mut Sensor, journal: &Journal) -> bool {
    match dormancy.update(sensor) {
        Ok(dormancy::Change::None) => true,
        Ok(dormancy::Change::Woke(held)) => {
            journal.send(
                INFO,
                &format!(
                    "buildwatch guard: system call hooks attached for a build ({held} held \
                     processes continued)"
                ),
                &[],
            );
            true
        }
        Ok(dormancy::Change::Slept) => {
            journal.send(
                INFO,
                "buildwatch guard: system call hooks detached: nothing that can run crate code \
                 is running",
                &[],
            );
            true
        }
        Err(e) => {
            journal.send(
                ERR,
                &format!("buildwatch guard: error: not watching builds: {e}"),
                &[],
            );
            false
        }
    }
}

/// Sends an ended build's findings to every sink.
fn report(journal: &Journal, log: &mut Option<JsonLog>, build: &Ended, notify: bool) {
    if build.unfinished {
        journal.send(
            WARNING,
            &format!(
                "buildwatch guard: build {} (`{}`) was still running when the guard stopped: \
                 reported unfinished ({} findings so far), left running",
                build.root,
                crate::model::Shown(&build.command.join(" ")),
                build.report.findings.len()
            ),
            &[("BUILD_PID", build.root.to_string())],
        );
    }
    for problem in &build.problems {
        journal.send(WARNING, &format!("buildwatch guard: {problem}"), &[]);
    }
    for f in &build.report.findings {
        let priority = if f.severity == Severity::Error {
            ERR
        } else {
            WARNING
        };
        journal.send(priority, &f.headline(), &sinks::finding_fields(build, f));
    }
    if build.report.lost_events > 0 {
        journal.send(
            ERR,
            &format!(
                "buildwatch guard: {} events lost during build {}: its findings may be incomplete",
                build.report.lost_events, build.root
            ),
            &[],
        );
    }
    if let Some(out) = log
        && let Err(e) = out.write(build)
    {
        journal.send(ERR, &format!("buildwatch guard: {e}"), &[]);
    }
    if notify {
        sinks::notify(build);
    }
}

/// The home directories of the machine's users.
fn passwd_homes() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut homes: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(':').nth(5))
        .filter(|home| !home.is_empty() && *home != "/" && *home != "/nonexistent")
        .map(PathBuf::from)
        .filter(|home| home.is_dir())
        .collect();
    homes.sort();
    homes.dedup();
    homes
}
