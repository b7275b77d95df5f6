//! What a rustc invocation is compiling, read from its argv and environment, and which events
//! rustc (and the linker it runs) produce on their own.
//!
//! rustc itself never connects anywhere, never runs anything but its linker, and only reads the
//! sysroot, the crate's sources, the registry's sources, the target directory and a few system
//! files. Everything else in a rustc process is done by the proc-macros it loaded.
use crate::model::{Event, EventKind, Exec};

use crate::model::{CrateRef, paths};

/// One `--extern name=path` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extern {
    /// The crate name as the compiled crate refers to it.
    pub name: String,
    /// The library file.
    pub path: String,
}

/// What a rustc process is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RustcInfo {
    /// The package being compiled (None for cargo's `rustc -vV`-style probes).
    pub krate: Option<CrateRef>,
    /// `--crate-name`.
    pub crate_name: Option<String>,
    /// `--crate-type` values.
    pub crate_types: Vec<String>,
    /// `-C extra-filename=`.
    pub extra_filename: Option<String>,
    /// `--out-dir`.
    pub out_dir: Option<String>,
    /// The sysroot (the directory holding `bin/rustc` and `lib/rustlib`).
    pub sysroot: Option<String>,
    /// CARGO_MANIFEST_DIR: the crate's sources.
    pub manifest_dir: Option<String>,
    /// OUT_DIR of the crate's build script, if it has one.
    pub build_out_dir: Option<String>,
    /// The target directory (parent of the profile directories).
    pub target_dir: Option<String>,
    /// `-C linker=`.
    pub linker: Option<String>,
    /// `--extern` libraries.
    pub externs: Vec<Extern>,
    /// Native library search directories (`-L native=DIR`, `-L DIR`, ...), which build scripts
    /// add with `cargo:rustc-link-search`: rustc lists them (even in `cargo check`) looking
    /// for the libraries the crate links.
    pub search_dirs: Vec<String>,
    /// The directories of this build's crates (`-L dependency=DIR`: `<target>/<profile>/deps`),
    /// where rustc also finds the proc-macros its direct dependencies re-export.
    pub dependency_dirs: Vec<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// The process's own pid (to recognise /proc/<pid>/...).
    pub pid: u32,
    /// Proc-macro libraries this rustc opened, in order: (path, crate).
    pub loaded_macros: Vec<(String, CrateRef)>,
    /// The sensor's slots for this rustc's proc-macro libraries (see `macro-lib` events).
    pub slots: Vec<(u8, CrateRef)>,
    /// The link directives of build scripts it received, with the crate that emitted each.
    pub directives: Vec<super::directives::Directed>,
}

/// The directory of a `-L [KIND=]DIR` value.
/// The sysroot of the rustc at `path`, an absolute `<sysroot>/bin/rustc`.
pub fn sysroot_of(path: &str) -> Option<String> {
    path.strip_prefix('/')?;
    path.strip_suffix("/bin/rustc")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn search_dir(value: &str) -> &str {
    match value.split_once('=') {
        Some((kind, dir)) if ["native", "all", "framework", "crate"].contains(&kind) => dir,
        _ => value,
    }
}

impl RustcInfo {
    /// Reads a rustc invocation.
    pub fn from_exec(pid: u32, exec: &Exec) -> Self {
        let mut info = RustcInfo {
            pid,
            cwd: exec.cwd.clone(),
            manifest_dir: exec.dir_var("CARGO_MANIFEST_DIR"),
            build_out_dir: exec.dir_var("OUT_DIR"),
            ..Default::default()
        };
        // Directories and files as the kernel names them in the events (`--out-dir /w/./t/..`
        // from `--target-dir ./t`, a relative `-L`), so that they compare with opened paths.
        let cwd = exec.cwd.as_deref();
        let dir = |v: &str| paths::clean_dir(v, cwd).unwrap_or_else(|| v.to_owned());
        let mut args = exec.argv.iter().skip(1).peekable();
        let mut dependency_dirs = Vec::new();
        while let Some(arg) = args.next() {
            // Options come as `--opt value` or `--opt=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| args.next().cloned());
            match flag {
                "--crate-name" => info.crate_name = value(),
                "--crate-type" => info.crate_types.extend(
                    value()
                        .into_iter()
                        .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>()),
                ),
                "--out-dir" => info.out_dir = value().map(|v| dir(&v)),
                "--sysroot" => info.sysroot = value().map(|v| dir(&v)),
                "--extern" => {
                    if let Some(v) = value()
                        && let Some((name, path)) = v.split_once('=')
                    {
                        // `priv:name` / `noprelude:name` modifiers.
                        let name = name.rsplit(':').next().unwrap_or(name);
                        info.externs.push(Extern {
                            name: name.to_owned(),
                            path: dir(path),
                        });
                    }
                }
                "-L" => {
                    if let Some(v) = value() {
                        if let Some(d) = v.strip_prefix("dependency=") {
                            dependency_dirs.push(dir(d));
                        } else {
                            info.search_dirs.push(dir(search_dir(&v)));
                        }
                    }
                }
                "-C" | "--codegen" => {
                    if let Some(v) = value() {
                        if let Some(x) = v.strip_prefix("extra-filename=") {
                            info.extra_filename = Some(x.to_owned());
                        } else if let Some(x) = v.strip_prefix("linker=") {
                            info.linker = Some(x.to_owned());
                        }
                    }
                }
                _ => {
                    if let Some(x) = flag.strip_prefix("-C") {
                        if let Some(x) = x.strip_prefix("extra-filename=") {
                            info.extra_filename = Some(x.to_owned());
                        } else if let Some(x) = x.strip_prefix("linker=") {
                            info.linker = Some(x.to_owned());
                        }
                    } else if let Some(d) = flag.strip_prefix("-Ldependency=") {
                        dependency_dirs.push(dir(d));
                    } else if let Some(d) = flag.strip_prefix("-L") {
                        info.search_dirs.push(dir(search_dir(d)));
                    }
                }
            }
        }
        if info.sysroot.is_none() {
            info.sysroot = sysroot_of(exec.image());
        }
        // Not from OUT_DIR: rustc may carry one the watched command inherited.
        info.target_dir = info
            .out_dir
            .iter()
            .chain(dependency_dirs.iter())
            .find_map(|d| paths::target_root(d));
        info.dependency_dirs = dependency_dirs;
        if info.crate_name.is_some() {
            info.krate = exec.var("CARGO_PKG_NAME").map(|name| CrateRef {
                name: name.to_owned(),
                version: exec.var("CARGO_PKG_VERSION").map(str::to_owned),
            });
            if info.krate.is_none() {
                // rustc run by hand or by a tool: the crate name is all there is.
                info.krate = info.crate_name.as_ref().map(|n| CrateRef {
                    name: n.clone(),
                    version: None,
                });
            }
        }
        info
    }

    /// Whether this invocation builds a proc-macro crate.
    pub fn builds_proc_macro(&self) -> bool {
        self.crate_types.iter().any(|t| t == "proc-macro")
    }

    /// The proc-macro library this invocation produces (`<out-dir>/lib<name><extra>.so`).
    pub fn proc_macro_output(&self) -> Option<String> {
        if !self.builds_proc_macro() {
            return None;
        }
        let (out, name) = (self.out_dir.as_ref()?, self.crate_name.as_ref()?);
        Some(format!(
            "{out}/lib{name}{}.so",
            self.extra_filename.as_deref().unwrap_or("")
        ))
    }

    /// The `--extern` proc-macro libraries (shared objects).
    pub fn proc_macro_externs(&self) -> impl Iterator<Item = &Extern> {
        self.externs.iter().filter(|e| e.path.ends_with(".so"))
    }

    /// Whether `event`, seen in this rustc process or in the linker it runs, is rustc's own doing.
    /// `cargo_home` locates the registry's sources.
    ///
    /// Reads elsewhere in the workspace are not rustc's: it reads its own crate's sources and the
    /// metadata of the others. (A crate that `include_str!`s a file from outside its directory
    /// is the rare exception; it shows up as a read by the crate's proc-macros, if it has any.)
    pub fn expects(&self, event: &Event, cargo_home: Option<&str>) -> bool {
        match &event.kind {
            // rustc never makes 32-bit system calls: a proc-macro did.
            EventKind::Open(open) if open.compat => false,
            EventKind::Open(open) => {
                let p = open.path.as_str();
                // The jobserver's pipes, reopened through /dev/fd, are rustc's too.
                if self.in_build_dirs(p)
                    || paths::is_toolchain_scratch(p)
                    || p == "/dev/null"
                    || p.starts_with("pipe:")
                {
                    return true;
                }
                if open.writes() {
                    return false;
                }
                let under =
                    |dir: &Option<String>| dir.as_deref().is_some_and(|d| paths::is_under(p, d));
                under(&self.sysroot)
                    || under(&self.manifest_dir)
                    || self.search_dirs.iter().any(|d| paths::is_under(p, d))
                    || paths::is_registry_source(p, cargo_home)
                    || paths::is_system_runtime_read(p)
                    || paths::is_own_proc(p, event.pid)
            }
            // rustc never connects; forks and exits are process bookkeeping (the child is judged by
            // what it executes).
            EventKind::Connect(_)
            | EventKind::Dns(_)
            | EventKind::Tamper(_)
            | EventKind::IoUring(_)
            | EventKind::CompatSyscall(_)
            | EventKind::Socket(_)
            | EventKind::Killed(_) => false,
            EventKind::Fork(_)
            | EventKind::Exit(_)
            | EventKind::Lost(_)
            | EventKind::Exec(_)
            | EventKind::MacroLib(_) => true,
        }
    }

    /// The target directory, out dirs and dependency dirs: where rustc reads and writes.
    fn in_build_dirs(&self, p: &str) -> bool {
        [&self.target_dir, &self.out_dir, &self.build_out_dir]
            .into_iter()
            .any(|d| d.as_deref().is_some_and(|d| paths::is_under(p, d)))
    }

    /// Whether a program run by this rustc is its linker (or part of the linker's toolchain).
    pub fn is_linker(&self, exec: &Exec) -> bool {
        let image = exec.image();
        let name = paths::file_name(image);
        let argv0 = exec.argv.first().map(|a| paths::file_name(a)).unwrap_or("");
        if let Some(linker) = &self.linker
            && (image == linker
                || name == paths::file_name(linker)
                || argv0 == paths::file_name(linker))
        {
            return true;
        }
        if self
            .sysroot
            .as_deref()
            .is_some_and(|s| paths::is_under(image, s))
        {
            // rust-lld and the gcc-ld wrapper ship in the sysroot.
            return true;
        }
        paths::is_linker_name(name) || paths::is_linker_name(argv0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_search_dirs_are_rustc_s_reads() {
        let r = RustcInfo::from_exec(
            7,
            &exec(
                &[
                    "rustc",
                    "--crate-name",
                    "app",
                    "-L",
                    "native=/home/u/.pyenv/versions/3.11.7/lib",
                    "-Lnative=/opt/lib",
                    "-L",
                    "dependency=/w/target/debug/deps",
                    "-L",
                    "/plain",
                ],
                &[],
            ),
        );
        assert_eq!(
            r.search_dirs,
            ["/home/u/.pyenv/versions/3.11.7/lib", "/opt/lib", "/plain"]
        );
        let open = |path: &str, access: &str| -> Event {
            let json = format!(
                r#"{{"time_ns":1,"pid":7,"tid":7,"ppid":1,"comm":"rustc","kind":"open","syscall":"openat","path":"{path}","flags":0,"access":"{access}","result":3}}"#
            );
            serde_json::from_str(&json).expect("event")
        };
        assert!(r.expects(&open("/home/u/.pyenv/versions/3.11.7/lib", "read"), None));
        assert!(r.expects(&open("/opt/lib/libz.a", "read"), None));
        assert!(!r.expects(&open("/opt/lib/x", "write"), None));
        assert!(!r.expects(&open("/home/u/.ssh/id_rsa", "read"), None));
    }

    fn exec(argv: &[&str], env: &[(&str, &str)]) -> Exec {
        Exec {
            path: "/home/u/.rustup/toolchains/stable/bin/rustc".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: Some("/w".into()),
            ..Default::default()
        }
    }

    #[test]
    fn reads_a_cargo_rustc_invocation() {
        let e = exec(
            &[
                "rustc",
                "--crate-name",
                "serde_derive",
                "--edition=2021",
                "--crate-type",
                "proc-macro",
                "-C",
                "extra-filename=-0f3a8e4c1b2d9e77",
                "--out-dir",
                "/w/target/debug/deps",
                "-L",
                "dependency=/w/target/debug/deps",
                "--extern",
                "proc_macro2=/w/target/debug/deps/libproc_macro2-aa.rlib",
                "--extern",
                "noprelude:quote_impl=/w/target/debug/deps/libquote_impl-bb.so",
                "-Clinker=/usr/bin/clang",
            ],
            &[
                ("CARGO_PKG_NAME", "serde_derive"),
                ("CARGO_PKG_VERSION", "1.0.219"),
            ],
        );
        let r = RustcInfo::from_exec(7, &e);
        assert_eq!(
            r.krate,
            Some(CrateRef::new("serde_derive", Some("1.0.219")))
        );
        assert_eq!(r.target_dir.as_deref(), Some("/w/target"));
        // An OUT_DIR the watched command inherited says nothing about this build's target.
        let probe = RustcInfo::from_exec(
            8,
            &exec(
                &["rustc", "-", "--crate-name", "___", "--print=file-names"],
                &[(
                    "OUT_DIR",
                    "/elsewhere/target/release/build/x-0123456789abcdef/out",
                )],
            ),
        );
        assert_eq!(probe.target_dir, None);
        assert_eq!(
            r.sysroot.as_deref(),
            Some("/home/u/.rustup/toolchains/stable")
        );
        assert_eq!(r.linker.as_deref(), Some("/usr/bin/clang"));
        assert_eq!(
            r.proc_macro_output().as_deref(),
            Some("/w/target/debug/deps/libserde_derive-0f3a8e4c1b2d9e77.so")
        );
        let pm: Vec<&str> = r.proc_macro_externs().map(|e| e.name.as_str()).collect();
        assert_eq!(pm, ["quote_impl"]);
    }

    /// `cargo install --target-dir ./t` from /np: cargo writes `/np/./t/...` in rustc's
    /// arguments and environment; the kernel names the files `/np/t/...`. rustc's own temporary
    /// files there stay rustc's, whatever proc-macro it has loaded.
    #[test]
    fn directories_compare_as_the_kernel_writes_paths() {
        let e = exec(
            &[
                "rustc",
                "--crate-name",
                "tool",
                "--crate-type",
                "lib",
                "--out-dir",
                "/np/./t/debug/deps",
                "-L",
                "dependency=/np/./t/debug/deps",
                "--extern",
                "derive=/np/./t/debug/deps/libderive-cc.so",
                "-L",
                "native=sub/../lib",
            ],
            &[
                ("CARGO_PKG_NAME", "tool"),
                ("OUT_DIR", "/np/./t/debug/build/tool-0123456789abcdef/out"),
            ],
        );
        let r = RustcInfo::from_exec(7, &e);
        assert_eq!(r.target_dir.as_deref(), Some("/np/t"));
        assert_eq!(r.out_dir.as_deref(), Some("/np/t/debug/deps"));
        assert_eq!(r.externs[0].path, "/np/t/debug/deps/libderive-cc.so");
        assert_eq!(r.search_dirs, ["/w/lib"]);
        let open = |path: &str| -> Event {
            let json = format!(
                r#"{{"time_ns":1,"pid":7,"tid":7,"ppid":1,"comm":"rustc","kind":"open","syscall":"openat","path":"{path}","flags":0,"access":"write","result":3}}"#
            );
            serde_json::from_str(&json).expect("event")
        };
        for temp in [
            "/np/t/debug/deps/rmetaAbC123/full.rmeta",
            "/np/t/debug/deps/.tmpXyZ789.temp-archive/tmp.a",
            "/np/t/debug/build/tool-0123456789abcdef/out/gen.rs",
        ] {
            assert!(r.expects(&open(temp), None), "{temp}");
        }
        assert!(!r.expects(&open("/np/elsewhere/x"), None));
    }

    #[test]
    fn a_probe_has_no_crate() {
        let r = RustcInfo::from_exec(7, &exec(&["rustc", "-vV"], &[]));
        assert_eq!(r.krate, None);
    }
}
