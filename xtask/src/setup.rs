//! `cargo xtask setup`: what building and running the sensor needs, installed when missing.
//!
//! Idempotent: each step checks first and does nothing when its piece is already right.
//! - rust-src for the toolchain in use (the eBPF crate is built with `-Z build-std=core`);
//! - bpf-linker 0.13.0 linked against rustc's own libLLVM (docs/toolchain.md: Debian's LLVM is too
//!   old, and one LLVM for rustc and the linker avoids bitcode mismatches);
//! - tracefs mounted (the tracepoints need it), when running as root;
//! - the programs the tests use (python3, setpriv; tmux and sudo, installed with apt-get when
//!   missing).
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{describe, is_root, run};

const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn setup() -> Result<()> {
    let sysroot = capture(Command::new("rustc").args(["--print", "sysroot"]))?;
    let sysroot = PathBuf::from(sysroot.trim());
    rust_src(&sysroot)?;
    bpf_linker(&sysroot)?;
    tracefs()?;
    test_tools();
    Ok(())
}

fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            describe(cmd),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rust_src(sysroot: &Path) -> Result<()> {
    if sysroot
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .is_file()
    {
        return Ok(());
    }
    let toolchain = sysroot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", &toolchain]))
}

/// rustc's libLLVM (`lib/libLLVM.so.<major>.<minor>-rust-<version>`) and LLVM major version.
fn rustc_llvm(sysroot: &Path) -> Result<(PathBuf, u32)> {
    let lib = std::fs::read_dir(sysroot.join("lib"))
        .context("cannot list rustc's lib directory")?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libLLVM.so."))
        })
        .context("rustc's sysroot has no libLLVM.so.*: a rustup toolchain is needed")?;
    let verbose = capture(Command::new("rustc").arg("-vV"))?;
    let major = verbose
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse().ok())
        .context("rustc -vV names no LLVM version")?;
    Ok((lib, major))
}

fn bpf_linker(sysroot: &Path) -> Result<()> {
    let (llvm, major) = rustc_llvm(sysroot)?;
    if let Some(problem) = bpf_linker_problem(&llvm) {
        eprintln!("xtask: bpf-linker needs (re)installing: {problem}");
    } else {
        return Ok(());
    }
    // LLVM_PREFIX must look like an LLVM install: lib/libLLVM.so (and the versioned name, which
    // the installed binary's rpath then finds).
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")?;
    let version = sysroot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = home.join(".local/share/buildwatch/llvm").join(version);
    let lib_dir = prefix.join("lib");
    std::fs::create_dir_all(&lib_dir)
        .with_context(|| format!("cannot create {}", lib_dir.display()))?;
    let name = llvm.file_name().context("libLLVM has no file name")?;
    for link in [lib_dir.join("libLLVM.so"), lib_dir.join(name)] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&llvm, &link)
            .with_context(|| format!("cannot link {}", link.display()))?;
    }
    run(Command::new("cargo")
        .args([
            "install",
            "--locked",
            "--force",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
        ])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
        ])
        .env("LLVM_PREFIX", &prefix))?;
    if let Some(problem) = bpf_linker_problem(&llvm) {
        bail!("bpf-linker still unusable after installing it: {problem}");
    }
    Ok(())
}

/// Why the bpf-linker in PATH is not usable with this rustc, if it is not.
fn bpf_linker_problem(llvm: &Path) -> Option<String> {
    let Ok(version) = capture(Command::new("bpf-linker").arg("--version")) else {
        return Some("not installed".to_owned());
    };
    if !version.contains(BPF_LINKER_VERSION) {
        return Some(format!(
            "version {} instead of {BPF_LINKER_VERSION}",
            version.trim()
        ));
    }
    let Ok(path) = capture(Command::new("sh").args(["-c", "command -v bpf-linker"])) else {
        return Some("cannot locate it".to_owned());
    };
    let Ok(ldd) = capture(Command::new("ldd").arg(path.trim())) else {
        return Some("ldd failed on it".to_owned());
    };
    let wanted = llvm
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let linked = ldd
        .lines()
        .find(|l| l.contains("libLLVM"))
        .map(str::trim)
        .unwrap_or("no libLLVM");
    if linked.contains("not found") || !linked.starts_with(&wanted) {
        return Some(format!("linked against `{linked}`, not rustc's {wanted}"));
    }
    None
}

fn tracefs() -> Result<()> {
    if Path::new("/sys/kernel/tracing/events").is_dir() || !is_root() {
        // Not root: buildwatch (run with sudo) mounts it itself when needed.
        return Ok(());
    }
    run(Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]))
}

fn test_tools() {
    apt_tools();
    for (tool, why) in [
        ("python3", "the sensor tests' process behaviours"),
        ("setpriv", "the capability test"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output();
        if !found.is_ok_and(|o| o.status.success()) {
            eprintln!("xtask: warning: {tool} not found; it is needed by {why}");
        }
    }
}

/// What the profiles-check workloads need beyond a C compiler: C++ (cxx), make and perl
/// (openssl-src, jemalloc), libclang (bindgen's clang-sys finds it at build time), Python
/// (pyo3's build scripts ask the interpreter), OpenSSL's headers and pkg-config (system-libs).
/// Installed with apt-get when missing and root; otherwise a warning names them.
pub fn workload_packages() {
    const PACKAGES: &[(&str, &str)] = &[
        ("g++", "/usr/bin/g++"),
        ("make", "/usr/bin/make"),
        ("perl", "/usr/bin/perl"),
        ("pkg-config", "/usr/bin/pkg-config"),
        ("libssl-dev", "/usr/include/openssl/ssl.h"),
        ("libclang1", "/usr/lib/llvm-14/lib/libclang.so.1"),
        ("python3", "/usr/bin/python3"),
    ];
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return;
    }
    let apt = Command::new("sh")
        .args(["-c", "command -v apt-get"])
        .output()
        .is_ok_and(|o| o.status.success());
    if is_root() && apt {
        let installed = run(Command::new("apt-get").args(["update", "-q"])).and_then(|()| {
            run(Command::new("apt-get")
                .args(["install", "-y", "-q"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        });
        if let Err(e) = installed {
            eprintln!(
                "xtask: warning: installing {} failed: {e}",
                missing.join(" ")
            );
        }
        return;
    }
    eprintln!(
        "xtask: warning: missing {}; some profiles-check workloads will not build",
        missing.join(" ")
    );
}

/// Programs the privileged tests run, installed with apt-get when missing: tmux (the live view's
/// end-to-end test runs buildwatch in a real terminal) and sudo (the privilege-escalation test
/// gives a build user a passwordless sudo rule, as a GitHub-hosted runner has).
fn apt_tools() {
    let found = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let missing: Vec<&str> = ["tmux", "sudo"]
        .into_iter()
        .filter(|tool| !found(tool))
        .collect();
    if missing.is_empty() {
        return;
    }
    if is_root() && found("apt-get") {
        let installed = run(Command::new("apt-get").args(["update", "-q"])).and_then(|()| {
            run(Command::new("apt-get")
                .args(["install", "-y", "-q"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        });
        if let Err(e) = installed {
            eprintln!(
                "xtask: warning: installing {} failed: {e}",
                missing.join(" ")
            );
        }
        return;
    }
    eprintln!(
        "xtask: warning: {} not found; the live view's and the privilege-escalation end-to-end \
         tests need them",
        missing.join(" ")
    );
}
