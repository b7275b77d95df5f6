//! The binary's edge: runs a parsed command line, prints results and errors, picks the exit code.
use std::path::Path;

use thiserror::Error;

use crate::{
    cli::{Cli, Command, OutputArgs, PolicyArgs, ProfilesArgs, ReplayArgs, WatchArgs},
    config, coverage,
    learn::{Accept, Written},
    model::Shown,
    pipeline::{PipelineOptions, RunReport},
    policy::PolicyConfig,
    profile::{self, ProfileSet},
    replay, report,
    sensor::SensorConfig,
    shipped,
    watch::{self, Outcome, SetupError, WatchOptions},
};

/// Exit status for usage and setup errors (the command was not started).
pub const EXIT_SETUP: i32 = 2;
/// `ci`: a finding failed the policy.
pub const EXIT_POLICY: i32 = 3;
/// `ci`: monitoring was incomplete (events lost, sensor failure mid-run).
pub const EXIT_INCOMPLETE: i32 = 4;

/// Which command is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Watch,
    Learn,
    Ci,
}

/// An error before the command could start.
#[derive(Debug, Error)]
enum StartError {
    #[error("{0}")]
    Usage(String),
    #[error("invalid profiles (fix them, or move them out of the way):\n{0}")]
    Profiles(String),
}

/// Runs the command line; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Some(Command::Replay(args)) => return replay(&args),
        Some(Command::Profiles(args)) => return profiles(&args),
        Some(Command::Guard(args)) => return guard(&args),
        Some(Command::Attach(args)) => return crate::tui::attach::run(&args.socket, args.pid),
        Some(Command::Learn(args)) => match args.accept.as_deref().map(Accept::parse).transpose() {
            Ok(accept) => watch_command(
                args.watch,
                Mode::Learn,
                accept.unwrap_or_default(),
                Vec::new(),
            ),
            Err(e) => Err(StartError::Usage(format!("--accept: {e}"))),
        },
        Some(Command::Ci(args)) => {
            let extra_env = if args.offline_build {
                match offline_fetch(&args.watch) {
                    Ok(env) => env,
                    Err(e) => {
                        eprintln!("buildwatch: error: {e}");
                        return EXIT_SETUP;
                    }
                }
            } else {
                Vec::new()
            };
            watch_command(args.watch, Mode::Ci, Accept::default(), extra_env)
        }
        None => watch_command(cli.watch, Mode::Watch, Accept::default(), Vec::new()),
    };
    result.unwrap_or_else(|e| {
        eprintln!("buildwatch: error: {e}");
        EXIT_SETUP
    })
}

/// The profile set: the user's directory (every error reported), then the shipped profiles.
fn load_profiles(dir: &Path) -> Result<ProfileSet, StartError> {
    let user = profile::load_dir(dir).map_err(|errors| {
        StartError::Profiles(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let shipped = shipped::profiles().map_err(|e| StartError::Profiles(e.to_string()))?;
    Ok(ProfileSet::new(user, shipped))
}

/// The policy from `--fail-on`, else the config file, else the default.
fn load_policy(args: &PolicyArgs) -> Result<PolicyConfig, StartError> {
    if let Some(spec) = &args.fail_on {
        let fail_on = PolicyConfig::parse_fail_on(spec)
            .map_err(|e| StartError::Usage(format!("--fail-on: {e}")))?;
        return Ok(PolicyConfig {
            fail_on,
            monitor_pid: None,
        });
    }
    match config::load(&args.config) {
        Ok(Some(cfg)) => Ok(cfg.policy),
        Ok(None) => Ok(PolicyConfig::default()),
        Err(e) => Err(StartError::Usage(e.to_string())),
    }
}

fn replay(args: &ReplayArgs) -> i32 {
    let run = || -> Result<RunReport, String> {
        let profiles = load_profiles(&args.policy.profiles).map_err(|e| e.to_string())?;
        let policy = load_policy(&args.policy).map_err(|e| e.to_string())?;
        let options = PipelineOptions {
            events: args.output.events.as_deref(),
            profiles,
            policy,
            learn: false,
            // The stream's digests are the evidence: never re-hashed from this machine.
            digests: false,
        };
        replay::replay(&args.input, options).map_err(|e| e.to_string())
    };
    match run() {
        Ok(report) => {
            eprintln!("buildwatch: replay of {}", args.input.display());
            eprint!("{}", report.render());
            let meta = report::RunMeta {
                command: vec![],
                exit_status: None,
                user: None,
            };
            for e in write_outputs(&args.output, &report, &meta, false) {
                eprintln!("buildwatch: error: {e}");
            }
            0
        }
        Err(e) => {
            eprintln!("buildwatch: error: {e}");
            EXIT_SETUP
        }
    }
}

/// `profiles`: the survey of the workspace's build-time code, printed; 0, or 2 on an error.
fn profiles(args: &ProfilesArgs) -> i32 {
    let run = || -> Result<String, String> {
        let profiles = load_profiles(&args.profiles).map_err(|e| e.to_string())?;
        let user = crate::user::resolve(args.user.as_deref()).map_err(|e| e.to_string())?;
        let env = crate::user::command_env(&user);
        // The features decide which optional dependencies the build reaches.
        let mut features: Vec<String> = args
            .features
            .iter()
            .flat_map(|f| ["--features".to_owned(), f.clone()])
            .collect();
        if args.all_features {
            features.push("--all-features".to_owned());
        }
        if args.no_default_features {
            features.push("--no-default-features".to_owned());
        }
        let (metadata, target) = coverage::cargo::metadata(
            args.manifest_path.as_deref(),
            args.target.as_deref(),
            &features,
            &user,
            &env,
        )
        .map_err(|e| e.to_string())?;
        let entries = coverage::survey(&metadata, &target, &profiles);
        Ok(if args.json {
            coverage::output::json(&entries)
        } else {
            coverage::output::text(&entries)
        })
    };
    match run() {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("buildwatch: error: {e}");
            EXIT_SETUP
        }
    }
}

/// `guard`: the service, or `--status` of the running one.
fn guard(args: &crate::cli::GuardArgs) -> i32 {
    if args.status {
        return crate::guard::status::print(&args.socket);
    }
    crate::guard::run(&crate::guard::GuardOptions {
        log: args.log.clone(),
        socket: args.socket.clone(),
        toolchains: args.toolchain.clone(),
        grace: std::time::Duration::from_secs(args.grace),
        idle_after: std::time::Duration::from_secs(args.idle_after),
        ring_buffer_bytes: args.ring_buffer_size,
        notify: !args.no_notify,
        journal: args.journal_socket.clone(),
        enforce: args.enforce,
    })
}

/// `ci --offline-build`: fetches as the build's user, unwatched; the variables that then keep
/// the build offline.
fn offline_fetch(args: &WatchArgs) -> Result<Vec<(String, String)>, String> {
    let target = crate::user::resolve(args.user.as_deref()).map_err(|e| e.to_string())?;
    let env = crate::user::command_env(&target);
    crate::fetch::run(&args.command, &target, &env).map_err(|e| e.to_string())?;
    let (key, value) = crate::fetch::OFFLINE_ENV;
    Ok(vec![(key.to_owned(), value.to_owned())])
}

fn watch_command(
    args: WatchArgs,
    mode: Mode,
    accept: Accept,
    extra_env: Vec<(String, String)>,
) -> Result<i32, StartError> {
    let profiles = load_profiles(&args.policy.profiles)?;
    let policy = load_policy(&args.policy)?;
    // A bad signing key or toolchain record is found before the build runs, not after.
    if let Some(key) = &args.output.attestation_key {
        report::attestation::load_key(key).map_err(|e| StartError::Usage(e.to_string()))?;
    }
    let toolchain_file = crate::toolchain_drift::file_for(&args.policy.profiles);
    let toolchain_recorded = if mode == Mode::Watch {
        None
    } else {
        crate::toolchain_drift::load(&toolchain_file)
            .map_err(|e| StartError::Usage(e.to_string()))?
    };
    let options = WatchOptions {
        command: args.command.clone(),
        events: args.output.events.clone(),
        user: args.user.clone(),
        sensor: SensorConfig {
            ring_buffer_bytes: args.ring_buffer_size,
            enforce: args.enforce,
            // Filled in once the build's user is known (watch::run).
            build_uid: 0,
            guard: false,
        },
        metadata: !args.no_metadata,
        profiles,
        policy,
        learn: mode == Mode::Learn,
        linger: (mode == Mode::Ci).then_some(std::time::Duration::from_secs(args.grace)),
        extra_env,
    };
    let mut outcome = match run_observed(&options, &args, mode) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("buildwatch: error: {e}");
            if let SetupError::Sensor(sensor) = &e
                && let Some(log) = sensor.verifier_log()
            {
                if args.verbose {
                    eprintln!("verifier log:\n{log}");
                } else {
                    eprintln!("(run with -v for the verifier log)");
                }
            }
            return Ok(EXIT_SETUP);
        }
    };
    let toolchain_learned = toolchain_step(mode, &mut outcome, toolchain_recorded, &options.policy);
    print_outcome(&options, &outcome);
    let meta = report::RunMeta {
        command: options.command.clone(),
        exit_status: Some(outcome.status.exit_code()),
        user: Some(outcome.user.name.clone()),
    };
    let mut failed_outputs = write_outputs(&args.output, &outcome.report, &meta, mode == Mode::Ci);
    for path in [
        &args.output.report,
        &args.output.sarif,
        &args.output.summary,
        &args.output.events,
        &args.output.attestation,
    ]
    .into_iter()
    .flatten()
    {
        watch::give_to_user(path, &outcome.user);
    }
    if mode == Mode::Learn
        && let Some(learner) = &outcome.learner
    {
        let header = vec![
            format!(
                "Learned by `buildwatch learn` from `{}`.",
                options.command.join(" ")
            ),
            "Review before committing: everything here is allowed from now on.".to_owned(),
        ];
        match learner.write(&args.policy.profiles, accept, &header) {
            Ok(written) => report_learned(&written, &args.policy.profiles),
            Err(e) => failed_outputs.push(format!("learning: {e}")),
        }
        give_tree_to_user(&args.policy.profiles, &outcome.user);
    }
    if let Some(recorded) = toolchain_learned {
        match std::fs::write(&toolchain_file, crate::toolchain_drift::render(&recorded)) {
            Ok(()) => {
                eprintln!(
                    "buildwatch: toolchain digests recorded in {}",
                    toolchain_file.display()
                );
                watch::give_to_user(&toolchain_file, &outcome.user);
            }
            Err(e) => failed_outputs.push(write_error(&toolchain_file, &e)),
        }
    }
    for e in &failed_outputs {
        eprintln!("buildwatch: error: {e}");
    }
    Ok(exit_code(mode, &outcome, !failed_outputs.is_empty()))
}

/// Toolchain drift after the run: in `ci`, `toolchain-changed` findings (added to the report)
/// and notes; in `learn`, the record to write.
fn toolchain_step(
    mode: Mode,
    outcome: &mut Outcome,
    recorded: Option<crate::toolchain_drift::Recorded>,
    policy: &PolicyConfig,
) -> Option<crate::toolchain_drift::Recorded> {
    use crate::toolchain_drift as drift;
    if mode == Mode::Watch {
        return None;
    }
    let images = &outcome.report.images;
    let user = &outcome.user;
    // The build's rustc is run as the build's user, never with more rights.
    let ids = (user.uid != nix::unistd::Uid::effective().as_raw()).then_some((user.uid, user.gid));
    let version = drift::sysroots(images)
        .iter()
        .find_map(|s| drift::rustc_version(&format!("{s}/bin/rustc"), ids));
    let observed = drift::observe(images, Some(&user.home), version);
    if mode == Mode::Learn {
        return observed
            .version
            .is_some()
            .then(|| drift::learn(recorded.unwrap_or_default(), &observed));
    }
    let Some(recorded) = recorded else {
        if observed.version.is_some() {
            eprintln!(
                "buildwatch: note: no toolchain.toml: the toolchain's digests were not compared (`buildwatch learn` records them)"
            );
        }
        return None;
    };
    let severity = if policy
        .fail_on
        .contains(&crate::policy::Code::ToolchainChanged)
    {
        crate::policy::Severity::Error
    } else {
        crate::policy::Severity::Warning
    };
    let (findings, notes) = drift::check(&recorded, &observed, severity);
    for note in notes {
        eprintln!("buildwatch: note: {note}");
    }
    outcome.report.findings.extend(findings);
    outcome.report.findings.sort_by_key(|f| f.severity);
    None
}

/// Runs the watch: with the live view when watching (not learn or ci) on a terminal without
/// `--no-tui`, plainly otherwise.
fn run_observed(
    options: &WatchOptions,
    args: &WatchArgs,
    mode: Mode,
) -> Result<Outcome, SetupError> {
    use std::io::IsTerminal as _;
    let tui = mode == Mode::Watch
        && !args.no_tui
        && std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal();
    if tui {
        crate::tui::live::run_with_view(options, &args.policy.profiles)
    } else {
        watch::run(options, &mut [])
    }
}

/// The exit status: in ci, 4 outranks 3, and 3 outranks the command's own failure.
fn exit_code(mode: Mode, outcome: &Outcome, output_failed: bool) -> i32 {
    if mode != Mode::Ci {
        return outcome.status.exit_code();
    }
    // An output that could not be written (the events file, a report) leaves the run's
    // record incomplete: ci must not pass as if it were whole.
    let incomplete = outcome.report.lost_events > 0
        || outcome.decode_errors > 0
        || output_failed
        || !outcome.output_errors.is_empty();
    if incomplete {
        EXIT_INCOMPLETE
    } else if outcome.report.has_errors() {
        EXIT_POLICY
    } else {
        outcome.status.exit_code()
    }
}

fn print_outcome(options: &WatchOptions, outcome: &Outcome) {
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        // The build wrote to this terminal directly: a colour or "conceal" (`ESC [8m`) it left
        // set would hide or disguise the findings below. Reset the attributes first.
        eprint!("\x1b[0m");
    }
    eprintln!(
        "buildwatch: `{}` (pid {}, user {}) ended after {:.1}s: {}",
        Shown(&options.command.join(" ")),
        outcome.pid,
        outcome.user.name,
        outcome.elapsed.as_secs_f64(),
        outcome.status
    );
    eprint!("{}", outcome.report.render());
    if outcome.decode_errors > 0 {
        eprintln!(
            "buildwatch: {} sensor records could not be decoded",
            outcome.decode_errors
        );
    }
    if !outcome.still_running.is_empty() {
        let list: Vec<String> = outcome
            .still_running
            .iter()
            .take(10)
            .map(|(pid, image)| format!("{} ({pid})", Shown(image)))
            .collect();
        eprintln!(
            "buildwatch: {} processes of the build were still running: {}",
            outcome.still_running.len(),
            list.join(", ")
        );
    }
    for e in &outcome.output_errors {
        eprintln!("buildwatch: error: {e}");
    }
}

fn report_learned(written: &[Written], dir: &Path) {
    if written.is_empty() {
        eprintln!("buildwatch learn: no build script or proc-macro ran; no profile written");
        return;
    }
    for w in written {
        let what = if w.created { "wrote" } else { "extended" };
        let review = if w.review > 0 {
            format!(" ({} items left for review, see the file)", w.review)
        } else {
            String::new()
        };
        eprintln!("buildwatch learn: {what} {}{review}", w.path.display());
    }
    eprintln!("buildwatch learn: profiles are in {}", dir.display());
}

/// Writes --report, --sarif and --summary; returns what failed.
fn write_outputs(
    output: &OutputArgs,
    run: &RunReport,
    meta: &report::RunMeta,
    ci: bool,
) -> Vec<String> {
    let mut failed = Vec::new();
    let mut write = |path: &Path, text: String| {
        if let Err(e) = std::fs::write(path, text) {
            // No truncated report left behind for a later step to take as complete.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
                let _ = std::fs::remove_file(path);
            }
            failed.push(write_error(path, &e));
        }
    };
    if let Some(path) = &output.report {
        write(path, report::json(run, meta));
    }
    if let Some(path) = &output.sarif {
        let sources = report::Sources::discover(run, meta);
        write(path, report::sarif(run, meta, &sources));
    }
    let summary = output.summary.clone().or_else(|| {
        ci.then(|| std::env::var_os("GITHUB_STEP_SUMMARY").map(std::path::PathBuf::from))
            .flatten()
    });
    if let Some(path) = &output.attestation {
        let key = output
            .attestation_key
            .as_deref()
            .map(report::attestation::load_key)
            .transpose();
        let text = key.and_then(|key| {
            report::attestation::attestation(
                run,
                meta,
                &report::attestation::AttestationContext::current(),
                &crate::sensor::program_names(),
                key.as_ref(),
            )
        });
        match text {
            Ok(text) => write(path, text),
            Err(e) => failed.push(format!("attestation {}: {e}", path.display())),
        }
    }
    if let Some(path) = summary {
        let text = report::markdown(run, meta);
        // The step summary is shared by the job's steps: append.
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        if let Err(e) = result {
            failed.push(write_error(&path, &e));
        }
    }
    failed
}

/// An output file could not be written: the error and what to do.
fn write_error(path: &Path, e: &std::io::Error) -> String {
    let advice = match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => {
            "the disk is full: free space there or write it elsewhere"
        }
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => "write it somewhere writable",
        Some(libc::ENOENT) => "its directory does not exist: create it first",
        _ => "write it elsewhere",
    };
    format!("cannot write {}: {e} ({advice})", path.display())
}

/// Files created as root under sudo go back to the invoking user.
fn give_tree_to_user(dir: &Path, user: &crate::user::TargetUser) {
    watch::give_to_user(dir, user);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            watch::give_to_user(&entry.path(), user);
        }
    }
}
