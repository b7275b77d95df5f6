//! Builds the eBPF programs (monitor-ebpf) for the bpf target with aya-build and leaves the object
//! in OUT_DIR, where `sensor` embeds it with `include_bytes_aligned!`.
use std::{env, path::Path, process::Command};

use anyhow::{Context as _, anyhow, bail};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    check_prerequisites()?;
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("failed to run `cargo metadata` to find the monitor-ebpf package")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "monitor-ebpf")
        .ok_or_else(|| anyhow!("monitor-ebpf package not found in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent directory for {}", ebpf.manifest_path))?;
    // The eBPF crate is built with `-Z build-std=core`; stable rustc allows that when
    // RUSTC_BOOTSTRAP=1 is set for that inner cargo only (TOOLCHAIN.md). aya-build reads it from
    // this process's environment and the inner cargo inherits it.
    // SAFETY: build scripts are single-threaded at this point; nothing else reads the environment.
    unsafe { env::set_var("RUSTC_BOOTSTRAP", "1") };
    // Build with the toolchain this build runs with, so that rustc and bpf-linker share one LLVM.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".to_owned());
    let package = aya_build::Package {
        name: ebpf.name.as_str(),
        root_dir: root_dir.as_str(),
        ..Default::default()
    };
    aya_build::build_ebpf([package], Toolchain::Custom(&toolchain))
        .context("failed to build the eBPF programs (monitor-ebpf); `cargo xtask setup` installs what they need")
}

/// Fails early, with the fix, when a piece the eBPF build needs is missing.
fn check_prerequisites() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=PATH");
    let linker = env::var_os("PATH")
        .map(|paths| {
            env::split_paths(&paths)
                .map(|d| d.join("bpf-linker"))
                .any(|p| p.is_file())
        })
        .unwrap_or(false);
    if !linker {
        bail!(
            "bpf-linker is not installed (needed to link the eBPF programs): run `cargo xtask setup`"
        );
    }
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
        .args(["--print", "sysroot"])
        .output()
        .context("failed to run rustc --print sysroot")?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if !Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/core")
        .is_dir()
    {
        bail!(
            "the rust-src component is missing from {sysroot} (needed for -Z build-std=core): run `cargo xtask setup`"
        );
    }
    Ok(())
}
