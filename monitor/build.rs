//! Builds the eBPF programs (monitor-ebpf) for the bpf target with aya-build and leaves the object
//! in OUT_DIR, where `sensor` embeds it with `include_bytes_aligned!`.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow, bail};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    embed_shipped_profiles()?;
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
    // RUSTC_BOOTSTRAP=1 is set for that inner cargo only (docs/toolchain.md). aya-build reads it from
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

/// Writes `$OUT_DIR/shipped_profiles.rs`: every `profiles/*.toml` of the repository, embedded
/// with `include_str!` so that the binary carries them.
fn embed_shipped_profiles() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, String)> = Vec::new();
    if dir.is_dir() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                println!("cargo:rerun-if-changed={}", path.display());
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                let abs = path
                    .canonicalize()
                    .with_context(|| format!("cannot resolve {}", path.display()))?;
                entries.push((name, abs.display().to_string()));
            }
        }
    }
    entries.sort();
    let mut code = String::from(
        "/// Profiles shipped with buildwatch: (crate, file name, TOML).\npub static SHIPPED: &[(&str, &str, &str)] = &[\n",
    );
    for (name, path) in entries {
        code.push_str(&format!(
            "    ({name:?}, \"profiles/{name}.toml\", include_str!({path:?})),\n"
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    std::fs::write(out.join("shipped_profiles.rs"), code)
        .context("cannot write shipped_profiles.rs")?;
    Ok(())
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
