//! Developer tasks: `cargo xtask <setup|test|demo|record|bench|profiles-check|fuzz>`.
//!
//! Every task first runs `setup`, which installs what building the eBPF sensor needs when it is
//! missing (docs/toolchain.md) and does nothing when it is all there.
mod bench;
mod fuzz;
mod profiles_check;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  setup   install what the eBPF build needs (rust-src, bpf-linker on rustc's LLVM), mount tracefs
  test    run every test: unit, end-to-end and privileged (as root; uses sudo when not root)
  demo    build buildwatch and watch `cargo build` of the example workspace (examples/demo)
  record  re-record the event streams the attribution unit tests replay (tests/fixtures/streams)
  bench   measure buildwatch's overhead, event rate, memory and startup; rewrites BENCHMARKS.md
          (as root; takes over an hour: `cargo xtask bench --help` for shorter runs)
  profiles-check [WORKLOAD...]
          check every workload crate of the shipped profiles (profiles/) under
          `buildwatch ci --fail-on all`: zero findings expected (as root; downloads crates;
          about an hour on two cores; names like profiles-rust or git-delta-0.20.1 pick some)
  fuzz [--time SECS] [TARGET...]
          run every cargo-fuzz target (fuzz/: profile, config, replay, decode) for SECS seconds
          each (default 180); installs cargo-fuzz when missing; fails on a crash";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::setup(),
        Some("test") => test(&args[1..]),
        Some("demo") => demo(&args[1..]),
        Some("record") => record(),
        Some("bench") => bench::bench(&args[1..]),
        Some("profiles-check") => profiles_check::profiles_check(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

/// The repository's top level.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs a command, failing with its description when it fails.
fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("failed to start {}", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(root());
    cmd
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `cmd` as root: directly when we are root, through `sudo -E` otherwise.
fn as_root(cmd: Command) -> Command {
    if is_root() {
        return cmd;
    }
    let mut sudo = Command::new("sudo");
    sudo.arg("-E")
        .arg("--preserve-env=PATH")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        sudo.current_dir(dir);
    }
    sudo
}

/// `cargo xtask test [-- <args for the test binaries>]`: lints, unit and end-to-end tests, then
/// the privileged tests (which load the real eBPF programs) single-threaded, as root.
fn test(extra: &[String]) -> Result<()> {
    setup::setup()?;
    let extra: Vec<&String> = extra.iter().skip_while(|a| *a == "--").collect();
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // Userspace (the default members), then the eBPF crate for its own target.
    run(cargo().args([
        "clippy",
        "--all-targets",
        "--release",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .current_dir(root().join("monitor-ebpf"))
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .args([
            "--target-dir",
            "../target/ebpf-clippy",
            "--",
            "-D",
            "warnings",
        ]))?;
    // Build every test binary as the invoking user first, so that only running them needs root.
    run(cargo().args(["test", "--release", "--no-run"]))?;
    let mut unprivileged = cargo();
    unprivileged.args(["test", "--release", "--"]).args(&extra);
    run(&mut unprivileged)?;
    let mut privileged = cargo();
    privileged
        .args(["test", "--release", "--", "--ignored", "--test-threads=1"])
        .args(&extra);
    run(&mut as_root(privileged))?;
    eprintln!("xtask: all tests passed");
    Ok(())
}

/// `cargo xtask demo`: builds buildwatch and watches a clean `cargo build` of examples/demo.
fn demo(extra: &[String]) -> Result<()> {
    setup::setup()?;
    run(cargo().args(["build", "--release", "--package", "monitor"]))?;
    let demo = root().join("examples/demo");
    let bin = root().join("target/release/buildwatch");
    run(cargo()
        .args(["clean", "--manifest-path"])
        .arg(demo.join("Cargo.toml")))?;
    let events = root().join("target/demo-events.jsonl");
    let mut watch = Command::new(&bin);
    watch
        .current_dir(&demo)
        // The build runs as from a shell, not with the LD_LIBRARY_PATH cargo run sets for
        // xtask (the dynamic loader would try its directories for every library).
        .env_remove("LD_LIBRARY_PATH")
        .arg("--events")
        .arg(&events)
        .args(extra)
        .args(["--", "cargo", "build"]);
    run(&mut as_root(watch))?;
    eprintln!(
        "xtask: every event of that build is in {}",
        events.display()
    );
    Ok(())
}

/// `cargo xtask record`: runs the real sensor over fixture builds and stores the event streams
/// (gzipped) that the attribution and learning unit tests replay.
fn record() -> Result<()> {
    setup::setup()?;
    run(cargo().args(["build", "--release", "--package", "monitor"]))?;
    let bin = root().join("target/release/buildwatch");
    let streams = root().join("tests/fixtures/streams");
    std::fs::create_dir_all(&streams)?;
    let tmp = std::env::temp_dir().join("buildwatch-record");
    for (fixture, name, script) in [
        // `sleep` keeps watching while the daemonized grandchild does its late read.
        (
            "mixed",
            "attribution-mixed",
            "cargo build --offline && sleep 1",
        ),
        (
            "hostile",
            "attribution-hostile",
            "BW_PORT=9 BW_SECRET_FILE=/etc/hostname cargo build --offline && sleep 1",
        ),
    ] {
        let ws = tmp.join(fixture);
        let _ = std::fs::remove_dir_all(&ws);
        std::fs::create_dir_all(&ws)?;
        run(Command::new("cp")
            .arg("-r")
            .arg(root().join("tests/fixtures").join(fixture).join("."))
            .arg(&ws))?;
        let _ = std::fs::remove_dir_all(ws.join("target"));
        let events = tmp.join(format!("{name}.jsonl"));
        let mut watch = Command::new(&bin);
        watch
            .current_dir(&ws)
            .arg("--no-tui")
            .arg("--events")
            .arg(&events)
            .args(["--", "sh", "-c", script]);
        run(&mut as_root(watch))?;
        run(Command::new("gzip")
            .arg("-9")
            .arg("-f")
            .arg("-k")
            .arg(&events))?;
        std::fs::copy(
            tmp.join(format!("{name}.jsonl.gz")),
            streams.join(format!("{name}.jsonl.gz")),
        )?;
    }
    eprintln!("xtask: streams written to {}", streams.display());
    Ok(())
}
