//! The built-in baseline: what any build script (and the compilers it runs) ordinarily does, so
//! that ordinary builds are quiet without any profile. Reading the crate's sources, the registry,
//! the sysroot, system headers and libraries; writing in its OUT_DIR (and the compilers' scratch
//! files); running rustc and the C/C++ toolchain.
pub use crate::model::Places;
use crate::model::paths;

impl Places {
    fn under(&self, path: &str, dir: &Option<String>) -> bool {
        dir.as_deref().is_some_and(|d| paths::is_under(path, d))
    }

    /// Reads every build script may make.
    pub fn expected_read(&self, path: &str) -> bool {
        self.under(path, &self.manifest_dir)
            || self.under(path, &self.out_dir)
            || self.under(path, &self.target_dir)
            || self.under(path, &self.sysroot)
            || paths::is_registry_source(path, self.cargo_home.as_deref())
            || paths::is_system_runtime_read(path)
            || is_system_build_input(path)
            || self.expected_scratch(path)
            || path.starts_with("pipe:")
            || path.starts_with("/proc/self/")
            || path.starts_with("/proc/thread-self/")
    }

    /// Whether reading `path` is reading a secret (the category), as
    /// [`crate::profile::sensitive_read`] says, except that the toolchain itself (the sysroot,
    /// CARGO_HOME's registry and git checkouts) is never a secret even when it lives in another
    /// user's home. Cargo's credentials stay secret.
    pub fn sensitive_read(&self, path: &str) -> Option<&'static str> {
        let kind = crate::profile::sensitive_read(path, self.home.as_deref())?;
        if kind == "root-home" && self.is_toolchain(path) {
            return None;
        }
        Some(kind)
    }

    /// Whether writing `path` plants persistence (the category); see [`Self::sensitive_read`]
    /// for the toolchain exception.
    /// Besides the places under HOME and the system ones: CARGO_HOME's `bin` and config
    /// wherever CARGO_HOME is, other crates' sources in the registry and git checkouts (compiled
    /// into the next build that uses them; a crate's own directory is not counted), and the Rust
    /// toolchain itself.
    pub fn persistence_write(&self, path: &str) -> Option<&'static str> {
        if let Some(kind) = crate::profile::persistence_write(path, self.home.as_deref()) {
            return Some(kind);
        }
        if self
            .workspace
            .as_deref()
            .is_some_and(|ws| crate::model::project::project_editor_config(path, ws))
        {
            return Some("editor");
        }
        if let Some(cargo_home) = self.cargo_home.as_deref() {
            if paths::is_under(path, &format!("{cargo_home}/bin")) {
                return Some("cargo-bin");
            }
            if path == format!("{cargo_home}/config.toml") || path == format!("{cargo_home}/config")
            {
                return Some("cargo-config");
            }
        }
        if paths::is_registry_source(path, self.cargo_home.as_deref())
            && !self.under(path, &self.manifest_dir)
        {
            return Some("dependency-source");
        }
        if self.is_toolchain_install(path) {
            return Some("rust-toolchain");
        }
        None
    }

    /// The sysroot and the rest of rustup's home (toolchains, rustup's settings).
    fn is_toolchain_install(&self, path: &str) -> bool {
        let rustup_home = self
            .sysroot
            .as_deref()
            .and_then(|s| s.rsplit_once("/toolchains/"))
            .map(|(h, _)| h);
        self.under(path, &self.sysroot) || rustup_home.is_some_and(|h| paths::is_under(path, h))
    }

    fn is_toolchain(&self, path: &str) -> bool {
        // <rustup home>/toolchains/<name> is the sysroot; the rest of rustup's home is too.
        self.is_toolchain_install(path)
            || paths::is_registry_source(path, self.cargo_home.as_deref())
    }

    /// Writes every build script may make.
    pub fn expected_write(&self, path: &str) -> bool {
        self.under(path, &self.out_dir)
            || self.expected_scratch(path)
            || matches!(path, "/dev/null" | "/dev/tty")
            || path.starts_with("pipe:")
    }

    /// Compiler drivers' temporary files (/tmp/cc*, /tmp/rustc*, and under TMPDIR).
    fn expected_scratch(&self, path: &str) -> bool {
        if paths::is_toolchain_scratch(path) {
            return true;
        }
        let Some(tmp) = self.tmpdir.as_deref() else {
            return false;
        };
        path.strip_prefix(tmp.trim_end_matches('/'))
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| {
                rest.starts_with("rustc") || (rest.starts_with("cc") && !rest.contains('/'))
            })
    }

    /// Programs every build script may run: rustc (feature probes) and the C/C++ toolchain,
    /// from the system's directories (a binary named `cc` dropped in OUT_DIR is not the
    /// compiler), and the build script's own binary.
    pub fn expected_exec(&self, image: &str) -> bool {
        if self.under(image, &self.sysroot) || self.build_script.as_deref() == Some(image) {
            return true;
        }
        if !is_system_program(image) {
            return false;
        }
        let name = paths::file_name(image);
        paths::is_linker_name(name)
            || matches!(
                name,
                "rustc"
                    | "cc1"
                    | "cc1plus"
                    | "as"
                    | "ar"
                    | "ranlib"
                    | "nm"
                    | "pkg-config"
                    | "pkgconf"
            )
            || name.ends_with("-as")
            || name.ends_with("-ar")
            || name.ends_with("-ranlib")
            || name.starts_with("llvm-ar")
    }
}

/// A program installed in the system's directories (not in the target directory, a temporary
/// directory or a home directory).
pub fn is_system_program(path: &str) -> bool {
    [
        "/usr/bin",
        "/bin",
        "/usr/local/bin",
        "/usr/sbin",
        "/sbin",
        "/usr/lib",
        "/usr/libexec",
        "/usr/local/lib",
        "/opt",
    ]
    .iter()
    .any(|d| paths::is_under(path, d))
}

/// Headers, pkg-config files and the like a C build reads.
fn is_system_build_input(path: &str) -> bool {
    [
        "/usr/include",
        "/usr/local/include",
        "/usr/share/pkgconfig",
        "/usr/local/share/pkgconfig",
        "/usr/bin",
        "/bin",
        "/usr/local/bin",
        "/etc/alternatives",
    ]
    .iter()
    .any(|d| paths::is_under(path, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        Places {
            manifest_dir: Some("/home/u/.cargo/registry/src/idx/libz-sys-1.1.20".into()),
            out_dir: Some("/w/target/debug/build/libz-sys-0123456789abcdef/out".into()),
            target_dir: Some("/w/target".into()),
            sysroot: Some("/home/u/.rustup/toolchains/stable".into()),
            cargo_home: Some("/home/u/.cargo".into()),
            home: Some("/home/u".into()),
            tmpdir: None,
            workspace: Some("/w".into()),
            build_script: None,
        }
    }

    #[test]
    fn ordinary_build_script_behaviour() {
        let p = places();
        assert!(
            p.expected_read("/home/u/.cargo/registry/src/idx/libz-sys-1.1.20/src/zlib/adler32.c")
        );
        assert!(p.expected_read("/usr/include/stdio.h"));
        assert!(p.expected_read("/usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h"));
        assert!(p.expected_write("/w/target/debug/build/libz-sys-0123456789abcdef/out/lib/libz.a"));
        assert!(p.expected_write("/tmp/ccA1b2C3.s"));
        assert!(p.expected_exec("/usr/bin/x86_64-linux-gnu-gcc-12"));
        assert!(p.expected_exec("/usr/bin/x86_64-linux-gnu-ar"));
        assert!(p.expected_exec("/home/u/.rustup/toolchains/stable/bin/rustc"));
    }

    #[test]
    fn unusual_behaviour() {
        let p = places();
        assert!(!p.expected_read("/home/u/.ssh/id_rsa"));
        assert!(!p.expected_read("/etc/passwd"));
        assert!(!p.expected_write("/w/src/generated.rs"));
        assert!(!p.expected_write("/home/u/.bashrc"));
        assert!(!p.expected_write("/tmp/payload"));
        assert!(!p.expected_exec("/usr/bin/curl"));
        assert!(!p.expected_exec("/bin/sh"));
        // A "compiler" dropped by the build script is not the compiler.
        assert!(!p.expected_exec("/w/target/debug/build/libz-sys-0123456789abcdef/out/cc"));
        assert!(!p.expected_exec("/tmp/x86_64-linux-gnu-gcc-12"));
    }

    #[test]
    fn persistence_beyond_home_dotfiles() {
        let mut p = places();
        p.cargo_home = Some("/opt/cargo".into());
        p.manifest_dir = Some("/opt/cargo/registry/src/idx/libz-sys-1.1.20".into());
        assert_eq!(
            p.persistence_write("/opt/cargo/bin/cargo"),
            Some("cargo-bin")
        );
        assert_eq!(
            p.persistence_write("/opt/cargo/config.toml"),
            Some("cargo-config")
        );
        assert_eq!(
            p.persistence_write("/opt/cargo/registry/src/idx/serde-1.0.0/src/lib.rs"),
            Some("dependency-source")
        );
        assert_eq!(
            p.persistence_write("/opt/cargo/git/checkouts/dep-0123/abc/src/lib.rs"),
            Some("dependency-source")
        );
        // Its own sources: a bad habit, not an attack on others.
        assert_eq!(
            p.persistence_write("/opt/cargo/registry/src/idx/libz-sys-1.1.20/src/gen.rs"),
            None
        );
        assert_eq!(
            p.persistence_write("/home/u/.rustup/toolchains/stable/bin/rustc"),
            Some("rust-toolchain")
        );
        assert_eq!(
            p.persistence_write("/home/u/.rustup/settings.toml"),
            Some("rust-toolchain")
        );
        assert_eq!(
            p.persistence_write("/home/u/.bashrc"),
            Some("shell-startup")
        );
        assert_eq!(
            p.persistence_write("/w/target/debug/build/x/out/a.rs"),
            None
        );
        assert_eq!(p.persistence_write("/tmp/x"), None);
    }
}
