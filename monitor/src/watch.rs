//! A watching run: load the sensor, start the command under it, stream events through the
//! pipeline until the command ends, drain, summarize.
//!
//! The run loop knows nothing of the screen or of enforcement: whoever follows the run (the
//! live view, the enforcer) is an [`Observer`], told when the command started, of every event,
//! at every turn of the loop, and when the run finished.
use std::{
    io::IsTerminal as _,
    path::PathBuf,
    sync::{
        Arc,
        mpsc::{Receiver, sync_channel},
    },
    thread,
    time::{Duration, Instant},
};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use thiserror::Error;

use crate::{
    attribution::BuildContext,
    command::{self, SpawnError, Status, Stream},
    decode::Decoder,
    enforce::Enforcer,
    learn::Learner,
    metadata,
    observer::Observer,
    pipeline::{Pipeline, PipelineOptions, RunReport},
    policy::PolicyConfig,
    profile::ProfileSet,
    sensor::{ProtectedSet, Sensor, SensorConfig, SensorError, StreamMessage},
    user::{self, TargetUser, UserError},
    watchdog::Watchdog,
};

/// What a watching run needs.
pub struct WatchOptions {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// `--events` file.
    pub events: Option<PathBuf>,
    /// `--user`.
    pub user: Option<String>,
    /// Sensor settings.
    pub sensor: SensorConfig,
    /// Run `cargo metadata` for workspace facts.
    pub metadata: bool,
    /// Profiles to check against.
    pub profiles: ProfileSet,
    /// Which findings are errors.
    pub policy: PolicyConfig,
    /// Record behaviour for `learn`.
    pub learn: bool,
    /// Keep watching processes that outlive the command for this long, then kill those acting
    /// for a crate (`ci`); None: report them and stop at once.
    pub linger: Option<Duration>,
    /// Set in the command's environment on top of the user's (`--offline-build`).
    pub extra_env: Vec<(String, String)>,
}

/// A run that could not start: the command was not run.
#[derive(Debug, Error)]
pub enum SetupError {
    /// The user to run as could not be determined.
    #[error(transparent)]
    User(#[from] UserError),
    /// The sensor could not be loaded.
    #[error(transparent)]
    Sensor(#[from] SensorError),
    /// The command could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// An output file could not be created.
    #[error("cannot create {path}: {error}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
}

/// How a watching run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The command's status.
    pub status: Status,
    /// The command's pid.
    pub pid: u32,
    /// The user it ran as.
    pub user: TargetUser,
    /// What the run amounted to.
    pub report: RunReport,
    /// Records that could not be decoded (sensor bugs), counted as lost in the summary too.
    pub decode_errors: u64,
    /// Processes of the tree still running when the run ended.
    pub still_running: Vec<(u32, String)>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Problems writing outputs during the run.
    pub output_errors: Vec<String>,
    /// What `learn` recorded.
    pub learner: Option<Learner>,
}

/// What the pump receives: batches of events from the sensor thread, the command's exit, and
/// cargo metadata's workspace facts.
enum Message {
    Stream(Vec<StreamMessage>),
    ChildExited(Result<Status, SpawnError>),
    Context(BuildContext),
}

/// After the command exits, how long to wait before draining: every record of the command's own
/// tree was produced before its exit was reported, but one being written on another CPU at that
/// moment may not be committed yet.
const SETTLE: Duration = Duration::from_millis(20);

/// After killing leftover processes, how long to keep reading for their exit records.
const KILL_SETTLE: Duration = Duration::from_millis(300);

/// The coverage gap of a build that runs as root (buildwatch run as root without sudo and without
/// `--user`): root in the build can detach the sensor's programs, move itself out of the build's
/// cgroup, or stop buildwatch, so what the report leaves out cannot be vouched for.
pub const ROOT_BUILD_GAP: &str = "the build ran as root (no SUDO_UID and no --user), so its code \
     could switch the monitor off; run buildwatch with sudo from the build's own user, or pass \
     --user NAME";

/// What a run needs of the user's files before its command starts.
struct Prepared {
    /// The command's environment.
    env: Vec<(String, String)>,
    /// The user's secrets by identity: a secret opened under any name is a sensitive read.
    protected: ProtectedSet,
    /// Persistence targets by identity, for --enforce's kill (what a write there is, is
    /// decided by path in any case).
    persist: Option<crate::sensor::PersistSet>,
}

/// Works out the command's environment and resolves the secrets (in the home the command is
/// given and in the user's own) and, with `--enforce`, the persistence targets.
fn prepare(options: &WatchOptions, target: &TargetUser) -> Prepared {
    let mut env = user::command_env(target);
    for (key, value) in &options.extra_env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    let command_home = env
        .iter()
        .find(|(k, _)| k == "HOME")
        .map(|(_, v)| PathBuf::from(v));
    let homes: Vec<&std::path::Path> = command_home
        .iter()
        .map(PathBuf::as_path)
        .chain([target.home.as_path()])
        .collect();
    let cwd = std::env::current_dir().ok();
    let protected = ProtectedSet::resolve(&homes, cwd.as_deref());
    let persist = options.sensor.enforce.then(|| {
        crate::sensor::PersistSet::resolve(
            &homes,
            cwd.as_deref(),
            &crate::policy::CiChannels::from_process(),
        )
    });
    Prepared {
        env,
        protected,
        persist,
    }
}

/// Runs the command under the sensor, telling `observers` of its course (and the enforcer,
/// with `--enforce`).
pub fn run(
    options: &WatchOptions,
    observers: &mut [&mut dyn Observer],
) -> Result<Outcome, SetupError> {
    let started = Instant::now();
    let target = user::resolve(options.user.as_deref())?;
    // The user's files are looked at on the other core while this one loads the sensor (a
    // workspace's `.env` walk can take as long as the kernel's verification).
    let (sensor, prepared) = thread::scope(|scope| {
        let prepared = scope.spawn(|| prepare(options, &target));
        let sensor = Sensor::load(&SensorConfig {
            build_uid: target.uid,
            ..options.sensor.clone()
        });
        (sensor, prepared.join())
    });
    let Prepared {
        env,
        protected,
        persist,
    } = prepared.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let mut sensor = sensor?;
    let mut coverage_gaps = sensor.coverage_gaps().to_vec();
    if target.uid == 0 {
        coverage_gaps.push(ROOT_BUILD_GAP.to_owned());
    }
    for gap in &coverage_gaps {
        eprintln!("buildwatch: warning: {gap}");
    }
    sensor.protect(&protected)?;
    if protected.left_out > 0 {
        eprintln!(
            "buildwatch: warning: {} secret files beyond the first {} are recognised by path only",
            protected.left_out,
            protected.files.len()
        );
    }
    let persist = match persist {
        Some(set) => {
            sensor.persist(&set)?;
            set
        }
        None => crate::sensor::PersistSet::default(),
    };
    let protected_files: Arc<[crate::model::ProtectedFile]> = Arc::from(protected.files);
    let known = crate::enforce::KnownFiles::new(protected_files.clone(), &persist);
    let persist_files: Arc<[crate::model::ProtectedFile]> = Arc::from(persist.targets);
    let pipeline_options = PipelineOptions {
        events: options.events.as_deref(),
        profiles: options.profiles.clone(),
        policy: PolicyConfig {
            // Signals, ptrace and /proc reads aimed at buildwatch are monitor tampering.
            monitor_pid: Some(std::process::id()),
            ..options.policy.clone()
        },
        learn: options.learn,
        digests: true,
    };
    let mut pipeline = Pipeline::new(pipeline_options).map_err(|error| SetupError::Output {
        path: options
            .events
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        error,
    })?;
    if let Some(path) = &options.events {
        give_to_user(path, &target);
    }
    let stream = sensor
        .take_stream()
        .ok_or_else(|| SensorError::Object("event stream already taken".to_owned()))?;

    // Batches of up to `stream::BATCH` events: the ring buffer is the large buffer, this only
    // smooths the hand-over between the reader and the pipeline.
    let (tx, rx) = sync_channel::<Message>(64);
    let stop = crate::sensor::StopSignal::new()
        .map_err(|e| SpawnError::Sys(format!("cannot make the reader's stop signal: {e}")))?;
    let reader = {
        let stop = stop.clone();
        let tx = tx.clone();
        let decoder = Decoder::for_this_boot()
            .with_protected(protected_files)
            .with_persist(persist_files);
        thread::Builder::new()
            .name("sensor".into())
            .spawn(move || stream.run(decoder, |m| tx.send(Message::Stream(m)).is_ok(), stop))
            .map_err(|e| SpawnError::Sys(format!("cannot start the sensor thread: {e}")))?
    };

    // Signals are caught before the command starts, so none is missed.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        .map_err(|e| SpawnError::Sys(format!("cannot install signal handlers: {e}")))?;
    let signals_handle = signals.handle();

    if options.metadata
        && let Some(facts) = metadata::spawn(&options.command, &target, &env)
    {
        let tx = tx.clone();
        thread::spawn(move || {
            if let Ok(context) = facts.recv() {
                let _ = tx.send(Message::Context(context));
            }
        });
    }
    let capture = observers.iter().any(|o| o.takes_output());
    let foreground = !capture && std::io::stdin().is_terminal();
    let (stdio, mut readers) = if capture {
        capture_stdio()?
    } else {
        (command::Stdio::default(), Vec::new())
    };
    // The watchdog is started while the command waits to exec: the build never runs without
    // one.
    let mut watchdog = None;
    let cgroup = sensor
        .cgroup_dir()
        .map(|fd| fd.try_clone_to_owned())
        .transpose()
        .map_err(|e| {
            SpawnError::Sys(format!(
                "cannot duplicate the build cgroup's descriptor: {e}"
            ))
        })?;
    let child = command::spawn_with(
        &options.command,
        &target,
        &env,
        foreground,
        stdio,
        cgroup.as_ref().map(std::os::fd::AsFd::as_fd),
        |pid, in_cgroup| {
            sensor.track(pid, in_cgroup).map_err(|e| e.to_string())?;
            let switch = sensor.kill_switch().map_err(|e| e.to_string())?;
            let started = Watchdog::start(pid, switch).map_err(|e| {
                format!("cannot start the watchdog that stops the build if buildwatch dies: {e}")
            })?;
            watchdog = Some(started);
            Ok(())
        },
    )?;
    let mut watchdog = watchdog.ok_or_else(|| SpawnError::Sys("no watchdog".to_owned()))?;
    let child = Arc::new(child);
    let pid = child.pid;
    for observer in observers.iter_mut() {
        let output = if observer.takes_output() {
            std::mem::take(&mut readers)
        } else {
            Vec::new()
        };
        if let Err(e) = observer.started(&child, output) {
            // The command runs already: it must not block on a full pipe nobody reads.
            child.signal_group(libc::SIGKILL);
            return Err(SpawnError::Sys(format!("cannot read the command's output: {e}")).into());
        }
    }

    let signal_thread = {
        let child = child.clone();
        thread::spawn(move || {
            for sig in signals.forever() {
                child.signal_group(sig);
            }
        })
    };
    let waiter = {
        let child = child.clone();
        let tx = tx.clone();
        thread::spawn(move || {
            let _ = tx.send(Message::ChildExited(child.wait()));
        })
    };
    drop(tx);

    // Checks that nothing detaches the sensor's cgroup programs during the run.
    let mut integrity = sensor
        .integrity()
        .map_err(SetupError::Sensor)?
        .map(crate::integrity::IntegrityWatch::new);
    // Failed reads in the toolchain's, the system's and the target directory's trees are
    // counted in the kernel (policy::quiet), unless the events file is to have them all.
    let mut quiet = if options.events.is_none() {
        let library_path = env
            .iter()
            .find(|(k, _)| k == "LD_LIBRARY_PATH")
            .map(|(_, v)| v.clone());
        Some(crate::quiet_feed::QuietFeed::new(
            sensor.quiet_slots().map_err(SetupError::Sensor)?,
            library_path,
        ))
    } else {
        None
    };
    let mut enforcer = if options.sensor.enforce {
        Some(
            Enforcer::new(&mut sensor, options.profiles.clone(), known)
                .map_err(SetupError::Sensor)?,
        )
    } else {
        None
    };
    // The enforcer first: a new build script's network is allowed as soon as possible.
    let mut all: Vec<&mut dyn Observer> = Vec::with_capacity(observers.len() + 4);
    all.push(&mut watchdog);
    if let Some(integrity) = integrity.as_mut() {
        all.push(integrity);
    }
    if let Some(enforcer) = enforcer.as_mut() {
        all.push(enforcer);
    }
    if let Some(quiet) = quiet.as_mut() {
        all.push(quiet);
    }
    for observer in observers.iter_mut() {
        all.push(&mut **observer);
    }
    let pumped = pump(&rx, &mut pipeline, &stop, pid, options.linger, &mut all);
    let mut output_errors_extra: Vec<String> =
        all.iter_mut().flat_map(|o| o.take_errors()).collect();
    drop(all);
    drop(enforcer);
    // The run ended normally: what the build left running stays as it was (reported below).
    watchdog.disarm();
    let (status, decode_errors, output_errors) =
        (pumped.status, pumped.decode_errors, pumped.output_errors);
    pipeline.outlived(&pumped.outlived, &pumped.killed, options.linger);
    signals_handle.close();
    let _ = signal_thread.join();
    let _ = waiter.join();
    let _ = reader.join();
    drop(rx);

    let still_running = pipeline
        .attributor()
        .table()
        .alive()
        .filter(|p| p.pid != pid)
        .map(|p| (p.pid, p.image_name().to_owned()))
        .collect();
    let mut output_errors = output_errors;
    output_errors.append(&mut output_errors_extra);
    for observer in observers.iter_mut() {
        observer.finishing(&pipeline);
    }
    // A failed last flush (a full disk) costs the events file, never the report.
    if let Err(e) = pipeline.close_events() {
        output_errors.push(events_error(&e));
    }
    let (mut report, learner) = pipeline.finish().unwrap_or_else(|e| {
        output_errors.push(format!("finishing the run: {e}"));
        (RunReport::default(), None)
    });
    report.coverage_gaps = coverage_gaps;
    if let Some(integrity) = &integrity {
        report
            .coverage_gaps
            .extend(integrity.lost().iter().cloned());
    }
    for observer in observers.iter_mut() {
        observer.finished(&report, status.as_ref().ok().copied());
    }
    drop(sensor);
    Ok(Outcome {
        status: status?,
        pid,
        user: target,
        report,
        decode_errors,
        still_running,
        elapsed: started.elapsed(),
        output_errors,
        learner,
    })
}

/// What the event pump ended with.
struct Pumped {
    status: Result<Status, SpawnError>,
    decode_errors: u64,
    output_errors: Vec<String>,
    /// Processes still running once the command had exited.
    outlived: Vec<u32>,
    /// Those of them killed at the end of the grace period.
    killed: Vec<u32>,
}

/// Moves events through the pipeline (and on to the observers) until the command has
/// exited (and, with `linger`, the processes it left behind have exited or been killed when the
/// grace period ran out) and the stream is drained.
fn pump(
    rx: &Receiver<Message>,
    pipeline: &mut Pipeline,
    stop: &crate::sensor::StopSignal,
    pid: u32,
    linger: Option<Duration>,
    observers: &mut [&mut dyn Observer],
) -> Pumped {
    let mut status = None;
    let mut decode_errors = 0;
    let mut output_errors = Vec::new();
    let mut exited_at: Option<Instant> = None;
    let mut outlived: Option<Vec<u32>> = None;
    let mut killed: Vec<u32> = Vec::new();
    let mut killed_at: Option<Instant> = None;
    // What is decided on the processes still alive (which were left behind, whether to stop,
    // which to kill) needs every fork and exit record there is: those records do not wake the
    // reader (monitor-ebpf output::lifecycle), so it is asked first, and each decision waits
    // for its answer. A kill on a stale table could hit a reused pid.
    let mut flush_asked = false;
    let mut fresh = false;
    loop {
        // The command's exit, once the settling period after it is over (and not stopping).
        let settled = exited_at.filter(|at| at.elapsed() >= SETTLE && !stop.is_set());
        if settled.is_some() && !fresh && !flush_asked {
            stop.flush();
            flush_asked = true;
        }
        if let Some(at) = settled
            && fresh
        {
            fresh = false;
            let alive: Vec<u32> = pipeline
                .attributor()
                .table()
                .alive()
                .map(|p| p.pid)
                .filter(|p| *p != pid)
                .collect();
            let outlived = outlived.get_or_insert_with(|| alive.clone());
            let waiting = linger.is_some_and(|grace| at.elapsed() < grace);
            if alive.is_empty()
                || (!waiting && killed_at.is_some_and(|k| k.elapsed() >= KILL_SETTLE))
            {
                stop.set();
            } else if linger.is_none() {
                // Plain watching reports processes left behind but does not wait for them.
                stop.set();
            } else if !waiting && killed_at.is_none() {
                // Grace period over: the build scripts' leftovers are killed.
                for p in alive.iter().filter(|p| outlived.contains(p)) {
                    if pipeline.attributor().acts_for_crate(*p) {
                        // SAFETY: kill(2) on a pid of the watched tree, seen alive just now.
                        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
                        killed.push(*p);
                    }
                }
                killed_at = Some(Instant::now());
            }
        }
        for observer in observers.iter_mut() {
            observer.tick(pipeline);
        }
        // Once the command has exited, wake up in time to end the settling period; after it,
        // the reader's answers wake the loop, and leftovers are looked at every 10 ms (each
        // look asks the reader for a flush).
        let timeout = match exited_at {
            Some(at) if !stop.is_set() && at.elapsed() < SETTLE => SETTLE
                .saturating_sub(at.elapsed())
                .max(Duration::from_millis(1)),
            Some(_) if !stop.is_set() => Duration::from_millis(10),
            _ => Duration::from_millis(50),
        };
        match rx.recv_timeout(timeout) {
            Ok(Message::Stream(batch)) => {
                let mut drained = false;
                for message in batch {
                    match message {
                        StreamMessage::Event(event) => {
                            let (event, error) = pipeline.process_through(event);
                            if let Some(e) = error {
                                output_errors.push(events_error(&e));
                            }
                            for observer in observers.iter_mut() {
                                observer.event(&event, pipeline);
                            }
                        }
                        StreamMessage::DecodeError(e) => {
                            decode_errors += 1;
                            // Every observer is told (no short cut): each may count it.
                            let mut shown = false;
                            for observer in observers.iter_mut() {
                                shown |= observer.undecodable();
                            }
                            if !shown && decode_errors == 1 {
                                eprintln!("buildwatch: warning: undecodable sensor record ({e})");
                            }
                        }
                        StreamMessage::Drained => drained = true,
                        StreamMessage::Flushed => {
                            flush_asked = false;
                            fresh = true;
                        }
                    }
                }
                if drained {
                    break;
                }
            }
            Ok(Message::Context(context)) => pipeline.set_context(context),
            Ok(Message::ChildExited(s)) => {
                status = Some(s);
                exited_at = Some(Instant::now());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status =
        status.unwrap_or_else(|| Err(SpawnError::Sys("the command's status was lost".to_owned())));
    Pumped {
        status,
        decode_errors,
        output_errors,
        outlived: outlived.unwrap_or_default(),
        killed,
    }
}

/// The events file could not be written (the pipeline gives it up after the first error).
fn events_error(e: &std::io::Error) -> String {
    format!(
        "writing the events file (--events) failed: {e}; it ends at the last event written \
         before the failure (the run went on: findings and the report are complete). Free \
         space there or point --events elsewhere"
    )
}

/// Pipes for the command's stdout and stderr (and /dev/null for its stdin), and the reading
/// ends.
fn capture_stdio() -> Result<(command::Stdio, Vec<(std::os::fd::OwnedFd, Stream)>), SpawnError> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| SpawnError::Sys(format!("cannot create a pipe for the output: {e}")))
    };
    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let null = std::fs::File::open("/dev/null")
        .map_err(|e| SpawnError::Sys(format!("cannot open /dev/null: {e}")))?;
    Ok((
        command::Stdio {
            stdin: Some(null.into()),
            stdout: Some(out_write),
            stderr: Some(err_write),
        },
        vec![(out_read, Stream::Stdout), (err_read, Stream::Stderr)],
    ))
}

/// Output files written as root for a sudo user belong to that user.
pub fn give_to_user(path: &std::path::Path, user: &TargetUser) {
    if user.switch {
        let _ = nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(user.uid)),
            Some(nix::unistd::Gid::from_raw(user.gid)),
        );
    }
}
