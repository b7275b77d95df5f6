//! Quiet directories: where the kernel counts a failed read for its process instead of sending
//! it (monitor-ebpf/src/quiet.rs), because the classifier could not act on it.
//!
//! The classifier acts on a failed read-only open only when its path names a secret
//! (`sensitive-read`) or another process's memory (`process-tamper`), see `classify::open`. A
//! directory qualifies when no name below it can be either ([`no_secret_below`]; the kernel
//! adds that no component below it starts with a dot). These are the places a build's failed
//! opens come from: the dynamic loader's and rustc's search of the toolchain's and the target
//! directory's libraries, and the C compilers' search of the system's headers.
use crate::{
    model::{Places, paths},
    profile::sensitive::no_secret_below,
};

/// The system's library and header trees (`/lib` and `/lib64` are the names ld.so asks for,
/// whether or not they are links to `/usr`).
const SYSTEM: [&str; 3] = ["/usr", "/lib", "/lib64"];

/// The quiet directories of a run whose places (the run's as a whole: home, sysroot, target
/// directory, CARGO_HOME) are `places`, in the order the kernel should try them, then those of
/// `library_path` (the command's LD_LIBRARY_PATH: the dynamic loader tries each of its
/// directories for every library every program of the build loads). None until the watched
/// user's home is known: every check of a secret place is relative to it.
pub fn quiet_dirs(places: &Places, library_path: Option<&str>) -> Vec<String> {
    let Some(home) = places.home.as_deref() else {
        return Vec::new();
    };
    let cargo_home = places.cargo_home.as_deref();
    let candidates = SYSTEM
        .iter()
        .map(|d| (Some((*d).to_owned()), false))
        .chain([
            (places.sysroot.clone(), true),
            (places.target_dir.clone(), false),
            (cargo_home.map(|c| format!("{c}/registry/src")), true),
            (cargo_home.map(|c| format!("{c}/git/checkouts")), true),
        ])
        .chain(
            library_path
                .unwrap_or_default()
                .split(':')
                .map(|d| (Some(d.to_owned()), false)),
        );
    let mut dirs: Vec<String> = Vec::new();
    for (dir, toolchain) in candidates {
        let Some(dir) = dir else { continue };
        let dir = dir.trim_end_matches('/').to_owned();
        // A directory below one already quiet would only take a slot.
        if dir.len() <= monitor_common::QUIET_DIR_MAX
            && no_secret_below(&dir, Some(home), toolchain)
            && !dirs.iter().any(|d| paths::is_under(&dir, d))
        {
            dirs.push(dir);
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn places(home: &str) -> Places {
        Places {
            home: Some(home.to_owned()),
            sysroot: Some(format!(
                "{home}/.rustup/toolchains/stable-x86_64-unknown-linux-gnu"
            )),
            target_dir: Some(format!("{home}/work/app/target")),
            cargo_home: Some(format!("{home}/.cargo")),
            workspace: Some(format!("{home}/work/app")),
            ..Places::default()
        }
    }

    #[test]
    fn the_toolchain_the_system_and_the_target_directory() {
        assert_eq!(
            quiet_dirs(&places("/home/u"), None),
            [
                "/usr",
                "/lib",
                "/lib64",
                "/home/u/.rustup/toolchains/stable-x86_64-unknown-linux-gnu",
                "/home/u/work/app/target",
                "/home/u/.cargo/registry/src",
                "/home/u/.cargo/git/checkouts",
            ]
        );
    }

    #[test]
    fn the_library_path_s_directories_that_hold_no_secret() {
        let dirs = quiet_dirs(
            &places("/home/u"),
            Some("/opt/cuda/lib64::relative/lib:/usr/lib:/home/u:/etc:/home/u/app/lib/"),
        );
        assert_eq!(dirs[7..], ["/opt/cuda/lib64", "/home/u/app/lib"]);
    }

    #[test]
    fn nothing_until_the_home_is_known() {
        let p = Places {
            home: None,
            ..places("/home/u")
        };
        assert!(quiet_dirs(&p, Some("/usr/lib")).is_empty());
    }

    #[test]
    fn a_target_directory_that_holds_secrets_is_not_quiet() {
        for target in ["/home/u", "/home", "/", "/home/u/.ssh/t", "/etc"] {
            let p = Places {
                target_dir: Some(target.to_owned()),
                ..places("/home/u")
            };
            assert!(
                !quiet_dirs(&p, None).iter().any(|d| d == target),
                "{target}: {:?}",
                quiet_dirs(&p, None)
            );
        }
    }

    /// A name below a directory, as the kernel lets through: components that do not start
    /// with a dot.
    fn below() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-zA-Z0-9_+-][a-zA-Z0-9_.+-]{0,12}", 0..6)
            .prop_map(|parts| parts.iter().map(|p| format!("/{p}")).collect())
    }

    /// Homes and target directories anywhere, secret places included.
    fn dir() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "/home/u",
            "/home/u/.ssh",
            "/home/u/.config",
            "/root",
            "/root/x",
            "/home",
            "/home/other/w/target",
            "/var/lib/b",
            "/var/lib/b/t",
            "/etc",
            "/run",
            "/tmp/t",
            "/proc",
            "/",
            "/home/u/.cargo",
            "/home/u/.local/share",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        /// What the kernel counts instead of sending is never a read the classifier reports:
        /// no name below a quiet directory is a secret, whatever the home, the sysroot, the
        /// target directory and CARGO_HOME are.
        #[test]
        fn no_quiet_failure_is_a_secret(
            home in dir(),
            sysroot in dir(),
            target in dir(),
            cargo_home in dir(),
            library in prop::collection::vec(dir(), 0..3),
            rest in below(),
        ) {
            let p = Places {
                home: Some(home),
                sysroot: Some(sysroot),
                target_dir: Some(target),
                cargo_home: Some(cargo_home),
                ..Places::default()
            };
            for d in quiet_dirs(&p, Some(&library.join(":"))) {
                let path = format!("{d}{rest}");
                prop_assert_eq!(p.sensitive_read(&path), None, "{} below {}", path, d);
                prop_assert!(!path.starts_with("/proc/"), "{}", path);
            }
        }
    }
}
