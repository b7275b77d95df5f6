//! Path facts attribution relies on: cargo's target layout, toolchain locations, system files.
//! All paths are absolute and already resolved by the kernel.

/// `path` is `dir` or inside it.
pub fn is_under(path: &str, dir: &str) -> bool {
    if dir.is_empty() {
        return false;
    }
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        // `dir` was "/".
        return path.starts_with('/');
    }
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// A directory named in an argument or a variable (`--out-dir`, `OUT_DIR`, `HOME`...), written
/// the way the kernel writes the paths of the files in it: absolute (a relative one is taken
/// against `cwd`), without `.` or `..` components, doubled or trailing slashes. cargo passes
/// `--target-dir ./t` on as `/cwd/./t/debug/...` while every open below it reads
/// `/cwd/t/debug/...`; compared as written, nothing would be under it. `..` is resolved lexically,
/// as the kernel does when no symbolic link is on the way. `None` for an empty value or a relative
/// one with no working directory to anchor it.
pub fn clean_dir(value: &str, cwd: Option<&str>) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.starts_with('/') {
        return Some(super::path::normalize(std::path::Path::new(value)));
    }
    let cwd = cwd.filter(|c| c.starts_with('/'))?;
    Some(super::path::normalize(
        &std::path::Path::new(cwd).join(value),
    ))
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The target directory of a path inside it: `/w/target/debug/deps` → `/w/target`,
/// `/w/target/x86_64-unknown-linux-gnu/release/build/foo-0123/out` → `/w/target`.
pub fn target_root(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    // The profile directory is the one holding cargo's fixed subdirectories.
    let marker = parts.iter().rposition(|p| {
        matches!(
            *p,
            "deps" | "build" | "incremental" | ".fingerprint" | "examples"
        )
    })?;
    if marker < 2 {
        return None;
    }
    let mut root = marker - 1; // index of the profile directory
    if root >= 1 && is_target_triple(parts[root - 1]) {
        root -= 1;
    }
    let joined = parts[..root].join("/");
    (!joined.is_empty()).then_some(joined)
}

fn is_target_triple(s: &str) -> bool {
    s.split('-').count() >= 3
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// A build script binary: `<target>/<profile>/build/<pkg>-<16 hex>/build-script-<name>`. Returns
/// the package name.
pub fn build_script_package(image: &str) -> Option<&str> {
    let mut parts = image.rsplit('/');
    let file = parts.next()?;
    let dir = parts.next()?;
    let build = parts.next()?;
    if !file.starts_with("build-script-") || build != "build" {
        return None;
    }
    let (pkg, hash) = dir.rsplit_once('-')?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(pkg)
}

/// A proc-macro library name: `lib<crate_name>-<hash>.so` → `crate_name`.
pub fn proc_macro_crate_name(path: &str) -> Option<&str> {
    let name = file_name(path).strip_prefix("lib")?.strip_suffix(".so")?;
    Some(name.rsplit_once('-').map(|(n, _)| n).unwrap_or(name))
}

/// Names of linkers and the programs compiler drivers run to link.
pub fn is_linker_name(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "cc",
        "c++",
        "gcc",
        "g++",
        "clang",
        "clang++",
        "ld",
        "ld.bfd",
        "ld.gold",
        "ld.lld",
        "lld",
        "rust-lld",
        "mold",
        "ld.mold",
        "collect2",
        "lto-wrapper",
        "lto1",
        "strip",
        "objcopy",
        "llvm-strip",
        "llvm-objcopy",
        "rust-objcopy",
        "dsymutil",
        "zig",
    ];
    if EXACT.contains(&name) {
        return true;
    }
    // Target-prefixed and versioned drivers: x86_64-linux-gnu-gcc-12, aarch64-linux-gnu-ld.
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    [
        "-gcc", "-g++", "-clang", "-clang++", "-ld", "-ld.bfd", "-ld.gold", "-cc", "-c++",
    ]
    .iter()
    .any(|suffix| stem.ends_with(suffix))
        || ["gcc-", "clang-", "ld.lld-"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Programs that are cargo itself (or a cargo subcommand).
pub fn is_cargo_name(name: &str) -> bool {
    name == "cargo" || name.starts_with("cargo-")
}

/// Registry and git-dependency sources: `$CARGO_HOME/registry/src/**`, `$CARGO_HOME/git/checkouts/**`.
pub fn is_registry_source(path: &str, cargo_home: Option<&str>) -> bool {
    if let Some(home) = cargo_home
        && (is_under(path, &format!("{home}/registry/src"))
            || is_under(path, &format!("{home}/git/checkouts")))
    {
        return true;
    }
    path.contains("/.cargo/registry/src/") || path.contains("/.cargo/git/checkouts/")
}

/// Temporary files of rustc and C compiler drivers: `/tmp/rustc*/**`, `/tmp/cc*`.
pub fn is_toolchain_scratch(path: &str) -> bool {
    let Some(rest) = path
        .strip_prefix("/tmp/")
        .or_else(|| path.strip_prefix("/var/tmp/"))
    else {
        return false;
    };
    rest.starts_with("rustc") || (rest.starts_with("cc") && !rest.contains('/'))
}

/// Reads every dynamically linked program makes, and the system facts runtimes query.
pub fn is_system_runtime_read(path: &str) -> bool {
    const DIRS: &[&str] = &[
        "/lib",
        "/lib64",
        "/usr/lib",
        "/usr/lib64",
        "/usr/local/lib",
        "/usr/libexec",
        "/usr/share/locale",
        "/usr/lib/locale",
        "/sys/devices/system/cpu",
        "/sys/fs/cgroup",
        "/sys/kernel/mm/transparent_hugepage",
    ];
    const FILES: &[&str] = &[
        "/",
        "/etc/ld.so.cache",
        "/etc/ld.so.preload",
        "/etc/locale.alias",
        "/usr/share/locale/locale.alias",
        "/proc/sys/vm/overcommit_memory",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/filesystems",
        "/dev/null",
        "/dev/tty",
        "/dev/urandom",
        "/dev/random",
        "/dev/zero",
    ];
    FILES.contains(&path) || DIRS.iter().any(|d| is_under(path, d))
}

/// The unix sockets of libc's name service cache (nscd), which any program may reach through
/// libc on its own (getpwnam, getaddrinfo): not network.
pub const NAME_SERVICE_SOCKETS: [&str; 2] = ["/var/run/nscd/socket", "/run/nscd/socket"];

/// `path` is the name service cache's socket ([`NAME_SERVICE_SOCKETS`]).
pub fn is_name_service_socket(path: &str) -> bool {
    NAME_SERVICE_SOCKETS.contains(&path)
}

/// The directories programs are installed in (`PATH`'s usual entries): a program there is
/// named by its file name in profiles.
pub const BIN_DIRS: [&str; 6] = [
    "/usr/bin",
    "/bin",
    "/usr/local/bin",
    "/usr/sbin",
    "/sbin",
    "/usr/local/sbin",
];

/// `/proc/self/...` or `/proc/<pid>/...` of the process itself.
pub fn is_own_proc(path: &str, pid: u32) -> bool {
    let Some(rest) = path.strip_prefix("/proc/") else {
        return false;
    };
    let first = rest.split('/').next().unwrap_or("");
    first == "self" || first == "thread-self" || first == pid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_written_as_the_kernel_writes_paths() {
        let clean = |v: &str, cwd: Option<&str>| clean_dir(v, cwd);
        assert_eq!(
            clean("/tmp/np/./tt/debug/build/x-0123/out", None).as_deref(),
            Some("/tmp/np/tt/debug/build/x-0123/out")
        );
        assert_eq!(clean("/w//target/", None).as_deref(), Some("/w/target"));
        assert_eq!(
            clean("/w/sub/../target", None).as_deref(),
            Some("/w/target")
        );
        assert_eq!(clean("target", Some("/w")).as_deref(), Some("/w/target"));
        assert_eq!(
            clean("./t/../target", Some("/w/")).as_deref(),
            Some("/w/target")
        );
        assert_eq!(clean("target", None), None);
        assert_eq!(clean("target", Some("relative")), None);
        assert_eq!(clean("", Some("/w")), None);
        assert_eq!(clean("/", None).as_deref(), Some("/"));
    }

    #[test]
    fn target_roots() {
        assert_eq!(
            target_root("/w/target/debug/deps").as_deref(),
            Some("/w/target")
        );
        assert_eq!(
            target_root("/w/target/release/build/foo-0123456789abcdef/out").as_deref(),
            Some("/w/target")
        );
        assert_eq!(
            target_root("/w/t/x86_64-unknown-linux-gnu/debug/deps").as_deref(),
            Some("/w/t")
        );
        assert_eq!(
            target_root("/w/target/debug/incremental/x-1").as_deref(),
            Some("/w/target")
        );
        assert_eq!(target_root("/usr/lib"), None);
    }

    #[test]
    fn build_scripts() {
        assert_eq!(
            build_script_package(
                "/w/target/debug/build/libz-sys-9670f5bbcdc62e58/build-script-build"
            ),
            Some("libz-sys")
        );
        assert_eq!(
            build_script_package("/w/target/debug/build/foo-123/build-script-build"),
            None
        );
        assert_eq!(
            build_script_package("/w/target/debug/deps/build_script_build-9670f5bbcdc62e58"),
            None
        );
    }

    #[test]
    fn names() {
        for l in [
            "cc",
            "x86_64-linux-gnu-gcc-12",
            "ld.lld",
            "rust-lld",
            "collect2",
            "aarch64-linux-gnu-ld",
            "gcc-12",
        ] {
            assert!(is_linker_name(l), "{l}");
        }
        for n in [
            "curl",
            "sh",
            "git",
            "python3",
            "build-script-build",
            "ccache-evil",
        ] {
            assert!(!is_linker_name(n), "{n}");
        }
        assert_eq!(
            proc_macro_crate_name("/t/deps/libserde_derive-0f3a8e4c1b2d9e77.so"),
            Some("serde_derive")
        );
        assert!(
            is_under("/a/b/c", "/a/b") && !is_under("/a/bc", "/a/b") && is_under("/a/b", "/a/b/")
        );
        assert!(
            is_toolchain_scratch("/tmp/rustcAbC123/symbols.o")
                && is_toolchain_scratch("/tmp/ccX1.s")
        );
        assert!(!is_toolchain_scratch("/tmp/exfil.txt") && !is_toolchain_scratch("/tmp/ccdir/x"));
        assert!(is_own_proc("/proc/42/maps", 42) && !is_own_proc("/proc/43/environ", 42));
    }
}
