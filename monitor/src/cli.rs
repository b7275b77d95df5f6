//! The command line (docs/cli.md is the contract).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Watch what a Cargo build's build scripts and proc-macros do at run time.
#[derive(Debug, Parser)]
#[command(
    name = "buildwatch",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "buildwatch [OPTIONS] -- <COMMAND>...\n       buildwatch learn [OPTIONS] -- <COMMAND>...\n       buildwatch ci [OPTIONS] -- <COMMAND>...\n       buildwatch replay [OPTIONS] <EVENTS>\n       buildwatch profiles [OPTIONS]\n       buildwatch guard [OPTIONS]\n       buildwatch attach [PID]",
    after_help = "Exit status: the watched command's own (128+N if signal N killed it); 2 when \
                  buildwatch could not start (the command was not run); ci: 3 when a finding \
                  fails the policy, 4 when monitoring was incomplete."
)]
pub struct Cli {
    /// A command other than watching.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of a watching run.
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch, and write or extend a profile per crate from what its build script and
    /// proc-macro did.
    Learn(LearnArgs),
    /// Watch without a TUI; findings that fail the policy decide the exit status.
    Ci(CiArgs),
    /// Attribution and checking on a recorded events file (JSON Lines, optionally .gz); no
    /// privileges needed.
    Replay(ReplayArgs),
    /// Without building: list the crates of the workspace that have a build script or are a
    /// proc-macro, and which profile (yours, shipped, none) covers each one's version.
    Profiles(ProfilesArgs),
    /// Run as a service (root): watch every build on the machine, whoever starts it (a
    /// terminal, an editor's rust-analyzer), and report each build's findings to the journal,
    /// a log and the user's desktop (docs/guard.md).
    Guard(GuardArgs),
    /// The live view of a build `buildwatch guard` is watching: the one with process PID, or
    /// your only one. Quitting leaves the build and the guard alone.
    Attach(AttachArgs),
}

/// Options of `attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// A process of the build (its root or any other; `buildwatch guard --status` lists the
    /// builds). Without it: your only build being watched.
    #[arg(value_name = "PID")]
    pub pid: Option<u32>,

    /// The running guard's socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/buildwatch/guard.sock"
    )]
    pub socket: PathBuf,
}

/// Options of `guard`.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Append every finding to FILE as JSON Lines (with the build's workspace and command).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Print the running guard's status (builds being watched, recent findings) and exit.
    #[arg(long)]
    pub status: bool,

    /// The running guard's status socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/buildwatch/guard.sock"
    )]
    pub socket: PathBuf,

    /// A directory holding cargo/rustc/rust-analyzer (or a toolchain with a bin/), besides
    /// the rustup toolchains of every user and the system's; repeatable.
    #[arg(long, value_name = "DIR")]
    pub toolchain: Vec<PathBuf>,

    /// How long a build's processes may outlive the build's root before the build is reported
    /// (they are reported, not killed, and no longer watched) (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub grace: u64,

    /// How long the system call hooks stay attached after the last process that can run crate
    /// code has ended (seconds). While they are attached every system call of the machine is
    /// slower; while they are not, a build's programs are held at exec until they are.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub idle_after: u64,

    /// Size of the sensor's ring buffer: a power of two, with an optional K/M/G suffix.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    pub ring_buffer_size: u32,

    /// No desktop notifications.
    #[arg(long)]
    pub no_notify: bool,

    /// Enforce in every build, as `ci --enforce`: crate code's network refused unless its
    /// profile allows it, and kill mode (docs/guard.md). Needs cgroup v2.
    #[arg(long)]
    pub enforce: bool,

    /// journald's native socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/systemd/journal/socket",
        hide = true
    )]
    pub journal_socket: PathBuf,
}

/// Where profiles come from, and what fails a run.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Per-crate allow profiles; the profiles shipped with buildwatch apply to crates that have
    /// none here.
    #[arg(long, value_name = "DIR", default_value = ".buildwatch/profiles")]
    pub profiles: PathBuf,

    /// Finding codes that are errors (fail a ci run), comma-separated, or `all`.
    /// Default: unexpected-network,raw-socket,agent-socket,sensitive-read,persistence-write,
    /// fileless-exec,process-tamper,compat-syscall,namespace-use,dropped-exec,source-tamper,
    /// artifact-tamper,link-injection,project-read,privilege-escalation,monitor-tamper,
    /// toolchain-changed.
    #[arg(long, value_name = "CODES")]
    pub fail_on: Option<String>,

    /// Configuration file (`[policy] fail-on = [...]`).
    #[arg(long, value_name = "FILE", default_value = ".buildwatch/config.toml")]
    pub config: PathBuf,
}

/// Output files.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write every event as JSON Lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Write the run's JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the findings as SARIF 2.1.0 to FILE.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,

    /// Write a Markdown summary to FILE (default for ci: $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write an in-toto attestation of the run (Statement v1, Runtime Trace predicate; the
    /// build's artifacts as subjects) to FILE.
    #[arg(long, value_name = "FILE")]
    pub attestation: Option<PathBuf>,
    /// Sign the attestation into a DSSE envelope with this ed25519 private key (PKCS#8 PEM, as
    /// `openssl genpkey -algorithm ed25519` writes).
    #[arg(long, value_name = "FILE", requires = "attestation")]
    pub attestation_key: Option<PathBuf>,
}

/// Options of every command that watches a build.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Outputs.
    #[command(flatten)]
    pub output: OutputArgs,

    /// Profiles and policy.
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Plain progress and summary, no TUI (automatic when stdout is not a terminal).
    #[arg(long)]
    pub no_tui: bool,

    /// Run the command as this user (default: the user who invoked sudo, or yourself).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Size of the sensor's ring buffer: a power of two, with an optional K/M/G suffix.
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = parse_size)]
    pub ring_buffer_size: u32,

    /// Do not run `cargo metadata` for workspace facts (attribution then relies on events only).
    #[arg(long)]
    pub no_metadata: bool,

    /// ci: how long to keep watching processes the build left running before killing those
    /// started by a build script or proc-macro (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub grace: u64,

    /// Refuse the network of build scripts, proc-macros and what they run, unless their
    /// profile allows it (the build runs in its own cgroup; needs cgroup v2).
    #[arg(long)]
    pub enforce: bool,

    /// More detail on errors (e.g. the eBPF verifier's log).
    #[arg(short, long)]
    pub verbose: bool,

    /// The command to watch, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Options of `learn`.
#[derive(Debug, Args)]
pub struct LearnArgs {
    /// Also allow these, which learning otherwise leaves for review: comma-separated
    /// `sensitive-read`, `network`, `persistence-write`.
    #[arg(long, value_name = "KINDS")]
    pub accept: Option<String>,

    /// Watching options.
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// Options of `ci`.
#[derive(Debug, Args)]
pub struct CiArgs {
    /// Run `cargo fetch` first (not watched: it runs no crate code), then the command with
    /// CARGO_NET_OFFLINE=true, so that any network during the build proper stands out.
    #[arg(long)]
    pub offline_build: bool,

    /// Watching options.
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// Options of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recorded events (as written by `--events`).
    #[arg(value_name = "EVENTS")]
    pub input: PathBuf,

    /// Outputs.
    #[command(flatten)]
    pub output: OutputArgs,

    /// Profiles and policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Options of `profiles`.
#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// The workspace's Cargo.toml (default: cargo's search from the current directory).
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Per-crate allow profiles; the shipped profiles apply to crates that have none here.
    #[arg(long, value_name = "DIR", default_value = ".buildwatch/profiles")]
    pub profiles: PathBuf,

    /// The platform to resolve dependencies for (default: the host, as `cargo build`).
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,

    /// Features of the workspace's packages to enable, as for `cargo build --features`.
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,

    /// Enable every feature, as `cargo build --all-features`.
    #[arg(long)]
    pub all_features: bool,

    /// Leave the default features off, as `cargo build --no-default-features`.
    #[arg(long)]
    pub no_default_features: bool,

    /// Run cargo as this user (default: the user who invoked sudo, or yourself).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses `4096`, `64K`, `16M`, `1G`.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1u64 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1u64 << 30),
        _ => (s, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 4096, 64K, 16M)"))?;
    let bytes = n
        .checked_mul(mult)
        .filter(|b| *b <= u32::MAX as u64 / 2 + 1)
        .ok_or("size too large")?;
    let bytes = bytes as u32;
    if !bytes.is_power_of_two() || bytes < 4096 {
        return Err(format!(
            "{bytes} bytes: must be a power of two of at least 4096"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("3000").is_err());
        assert!(parse_size("1k").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn command_after_double_dash() {
        let cli = Cli::try_parse_from([
            "buildwatch",
            "--events",
            "e.jsonl",
            "--",
            "cargo",
            "build",
            "--release",
        ])
        .expect("parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.watch.command, ["cargo", "build", "--release"]);
        assert_eq!(
            cli.watch.output.events.as_deref(),
            Some(std::path::Path::new("e.jsonl"))
        );
        assert!(Cli::try_parse_from(["buildwatch", "--bogus", "--", "true"]).is_err());
        assert!(Cli::try_parse_from(["buildwatch"]).is_err());
        // `replay` after `--` is a command to watch, not the subcommand.
        let cli = Cli::try_parse_from(["buildwatch", "--", "replay"]).expect("parse");
        assert!(cli.command.is_none());
    }

    #[test]
    fn learn_and_ci() {
        let cli = Cli::try_parse_from([
            "buildwatch",
            "learn",
            "--accept",
            "network",
            "--",
            "cargo",
            "build",
        ])
        .expect("parse");
        assert!(
            matches!(&cli.command, Some(Command::Learn(l)) if l.accept.as_deref() == Some("network") && l.watch.command == ["cargo", "build"])
        );
        let cli = Cli::try_parse_from([
            "buildwatch",
            "ci",
            "--fail-on",
            "all",
            "--sarif",
            "x.sarif",
            "--",
            "cargo",
            "build",
        ])
        .expect("parse");
        assert!(
            matches!(&cli.command, Some(Command::Ci(c)) if c.watch.policy.fail_on.as_deref() == Some("all"))
        );
        assert!(Cli::try_parse_from(["buildwatch", "ci", "--",]).is_err());
    }

    #[test]
    fn profiles() {
        let cli = Cli::try_parse_from([
            "buildwatch",
            "profiles",
            "--manifest-path",
            "w/Cargo.toml",
            "--json",
        ])
        .expect("parse");
        assert!(
            matches!(&cli.command, Some(Command::Profiles(p)) if p.json && p.manifest_path.as_deref() == Some(std::path::Path::new("w/Cargo.toml")))
        );
        assert!(Cli::try_parse_from(["buildwatch", "profiles", "--", "cargo"]).is_err());
    }

    #[test]
    fn replay() {
        let cli = Cli::try_parse_from(["buildwatch", "replay", "e.jsonl"]).expect("parse");
        assert!(
            matches!(cli.command, Some(Command::Replay(ReplayArgs { ref input, .. })) if input.as_os_str() == "e.jsonl")
        );
        assert!(Cli::try_parse_from(["buildwatch", "replay"]).is_err());
        assert!(Cli::try_parse_from(["buildwatch", "--events", "x", "replay", "e.jsonl"]).is_err());
    }
}
