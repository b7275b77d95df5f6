//! The binary's edge: runs a parsed command line, prints results and errors, picks the exit code.
use crate::{
    cli::{Cli, Command, ReplayArgs, WatchArgs},
    replay,
    sensor::SensorConfig,
    watch::{self, SetupError, WatchOptions},
};

/// Exit status for usage and setup errors (the command was not started).
pub const EXIT_SETUP: i32 = 2;

/// Runs the command line; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Some(Command::Replay(args)) => replay(&args),
        None => watch(cli.watch),
    }
}

fn replay(args: &ReplayArgs) -> i32 {
    match replay::replay(&args.input, args.events.as_deref()) {
        Ok(report) => {
            eprintln!("buildwatch: replay of {}", args.input.display());
            eprint!("{}", report.render());
            0
        }
        Err(e) => {
            eprintln!("buildwatch: error: {e}");
            EXIT_SETUP
        }
    }
}

fn watch(args: WatchArgs) -> i32 {
    let options = WatchOptions {
        command: args.command,
        events: args.events,
        user: args.user,
        sensor: SensorConfig {
            ring_buffer_bytes: args.ring_buffer_size,
        },
        metadata: !args.no_metadata,
    };
    match watch::run(&options) {
        Ok(outcome) => {
            eprintln!(
                "buildwatch: `{}` (pid {}, user {}) ended after {:.1}s: {}",
                options.command.join(" "),
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
                    .map(|(pid, image)| format!("{image} ({pid})"))
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
            outcome.status.exit_code()
        }
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
            EXIT_SETUP
        }
    }
}
