//! The link directives a build script gave cargo, read back from the rustc invocations they
//! reached, and the crate whose build script emitted each.
//!
//! cargo turns `cargo:rustc-link-search`, `rustc-link-lib`, `rustc-flags`, `rustc-link-arg*`
//! and `rustc-cdylib-link-arg` into rustc arguments (`-L`, `-l`, `-C link-arg=`) placed after
//! everything else of the invocation (its own arguments, then the user's RUSTFLAGS), and
//! `cargo:rustc-env` into the environment of the rustc compiling the crate. They are read here
//! from rustc's argv and environment, not from the build script's `output` file: what rustc
//! received is what the link does, the events hold it (so `replay` sees the same), and nothing
//! has to be read from disk while cargo may still be writing it, or after a build script
//! rewrote it.
//!
//! Who emitted a directive: `-l`, `-C link-arg` and `rustc-env` reach only the rustc of the
//! package whose build script printed them; `-L` reaches that package's rustc and every
//! dependent's. Dependencies are compiled before their dependents, so the first rustc to carry
//! a search directory names the crate that emitted it.
use std::collections::HashMap;

use crate::model::{CrateRef, Exec, paths};

/// One directive, as rustc received it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Directive {
    /// `-L [KIND=]DIR` (`rustc-link-search`, `rustc-flags`).
    Search(String),
    /// `-l [KIND[:MODIFIERS]=]NAME[:RENAME]` (`rustc-link-lib`, `rustc-flags`).
    Lib(String),
    /// One argument of `-C link-arg=` / `-C link-args=` (`rustc-link-arg*`,
    /// `rustc-cdylib-link-arg`).
    Arg(String),
    /// A variable of rustc's environment (`rustc-env`) that changes which code rustc and the
    /// linker run, with a value cargo did not give it.
    Env {
        /// The variable.
        name: String,
        /// Its value in rustc's environment.
        value: String,
    },
}

impl Directive {
    /// The directive as a profile's `link` list names it: `search:DIR`, `lib:SPEC`, `arg:ARG`,
    /// `env:NAME=VALUE`.
    pub fn subject(&self) -> String {
        match self {
            Directive::Search(dir) => format!("search:{dir}"),
            Directive::Lib(spec) => format!("lib:{spec}"),
            Directive::Arg(arg) => format!("arg:{arg}"),
            Directive::Env { name, value } => format!("env:{name}={value}"),
        }
    }
}

/// A directive and the crate whose build script emitted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directed {
    /// The directive.
    pub directive: Directive,
    /// The crate whose build script emitted it.
    pub owner: CrateRef,
}

/// Variables of rustc's environment that change which code rustc and the linker it runs load or
/// execute: the dynamic loader's, the search path for programs (rustc runs `cc` by name), the
/// compiler driver's program and library search paths, and cargo's wrappers.
pub const INJECTABLE_VARIABLES: [&str; 10] = [
    "LD_PRELOAD",
    "LD_AUDIT",
    "LD_LIBRARY_PATH",
    "PATH",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
    "LIBRARY_PATH",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC",
];

/// Which crate emitted each search directory seen so far.
#[derive(Debug, Default)]
pub struct SearchOwners {
    owners: HashMap<String, CrateRef>,
}

/// What [`directives`] needs to know of the invocation's surroundings.
pub struct Invocation<'a> {
    /// The package rustc compiles.
    pub krate: &'a CrateRef,
    /// The user's flags (`CARGO_ENCODED_RUSTFLAGS` as cargo gave build scripts), when known:
    /// they come before the directives and are nobody's directives.
    pub rustflags: Option<&'a [String]>,
    /// The environment of the cargo that started rustc (its kept variables), when known.
    pub cargo_env: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The target directory, where cargo's own additions to `LD_LIBRARY_PATH` lie.
    pub target_dir: Option<&'a str>,
    /// The package has a build script (cargo gave rustc an OUT_DIR in the target directory).
    /// A package without one emitted nothing: what follows cargo's arguments in its rustc is
    /// the user's flags and its dependencies' search directories.
    pub has_build_script: bool,
}

/// The link directives in a rustc invocation, each with the crate that emitted it.
pub fn directives(exec: &Exec, inv: &Invocation<'_>, owners: &mut SearchOwners) -> Vec<Directed> {
    let cwd = exec.cwd.as_deref();
    let mut out = Vec::new();
    let own = |directive| Directed {
        directive,
        owner: inv.krate.clone(),
    };
    for (flag, value) in directive_args(&exec.argv, inv.rustflags) {
        match flag {
            Flag::Search => {
                let (kind, dir) = match value.split_once('=') {
                    Some((k, d)) if ["native", "all", "framework", "crate"].contains(&k) => {
                        (Some(k), d)
                    }
                    _ => (None, value.as_str()),
                };
                if kind == Some("crate") {
                    continue;
                }
                let dir = paths::clean_dir(dir, cwd).unwrap_or_else(|| dir.to_owned());
                let owner = match owners.owners.get(&dir) {
                    Some(owner) => owner.clone(),
                    None if inv.has_build_script => {
                        owners.owners.insert(dir.clone(), inv.krate.clone());
                        inv.krate.clone()
                    }
                    // Nobody's: the user's flags (or a dependency whose rustc was not seen).
                    None => continue,
                };
                out.push(Directed {
                    directive: Directive::Search(dir),
                    owner,
                });
            }
            _ if !inv.has_build_script => {}
            Flag::Lib => out.push(own(Directive::Lib(value))),
            Flag::LinkArg => out.push(own(Directive::Arg(value))),
            Flag::LinkArgs => out.extend(
                value
                    .split_whitespace()
                    .map(|a| own(Directive::Arg(a.to_owned()))),
            ),
        }
    }
    if let Some(cargo_env) = inv.cargo_env.filter(|_| inv.has_build_script) {
        let searched: Vec<&str> = out
            .iter()
            .filter_map(|d| match &d.directive {
                Directive::Search(dir) => Some(dir.as_str()),
                _ => None,
            })
            .collect();
        let mut env = Vec::new();
        for name in INJECTABLE_VARIABLES {
            let Some(value) = exec.var(name) else {
                continue;
            };
            let theirs = cargo_env.get(name).map(String::as_str);
            if theirs == Some(value)
                || is_cargos_library_path(name, value, theirs, inv.target_dir, &searched)
            {
                continue;
            }
            env.push(own(Directive::Env {
                name: name.to_owned(),
                value: value.to_owned(),
            }));
        }
        out.extend(env);
    }
    out
}

/// cargo prepends directories of the target directory (`deps`, the native search directories
/// of build scripts there) to the `LD_LIBRARY_PATH` it inherited.
fn is_cargos_library_path(
    name: &str,
    value: &str,
    inherited: Option<&str>,
    target_dir: Option<&str>,
    searched: &[&str],
) -> bool {
    if name != "LD_LIBRARY_PATH" {
        return false;
    }
    let Some(target) = target_dir else {
        return false;
    };
    let prefix = match inherited {
        Some(inherited) if !inherited.is_empty() => match value.strip_suffix(inherited) {
            Some(p) => p.strip_suffix(':').unwrap_or(p),
            None => return false,
        },
        _ => value,
    };
    // cargo writes the target directory as it was given (`--target-dir ./tt` run from /w gives
    // `/w/./tt/debug/deps`): compared once normalized.
    let clean = |d: &str| paths::clean_dir(d, None).unwrap_or_else(|| d.to_owned());
    let target = clean(target);
    let searched: Vec<String> = searched.iter().map(|d| clean(d)).collect();
    prefix.split(':').filter(|d| !d.is_empty()).all(|d| {
        let d = clean(d);
        paths::is_under(&d, &target) && (d.ends_with("/deps") || searched.contains(&d))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    Search,
    Lib,
    LinkArg,
    LinkArgs,
}

/// The directive arguments of an argv: what follows the user's flags (or, when they are not
/// known, cargo's own arguments, which end with `-L dependency=` and `--extern`).
fn directive_args(argv: &[String], rustflags: Option<&[String]>) -> Vec<(Flag, String)> {
    let args: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    // cargo's own arguments end with the dependencies.
    let mut start = 0;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--extern" || (a == "-L" && next_is_dependency(&args, i)) {
            start = i + 2;
            i += 2;
            continue;
        }
        if a.starts_with("--extern=") || a.starts_with("-Ldependency=") {
            start = i + 1;
        }
        i += 1;
    }
    // Then the user's flags, as one run.
    if let Some(flags) = rustflags.filter(|f| !f.is_empty())
        && let Some(at) = find_run(&args[start..], flags)
    {
        start += at + flags.len();
    }
    let mut out = Vec::new();
    let mut i = start;
    while i < args.len() {
        let a = args[i];
        let mut take = |inline: Option<&str>| -> Option<String> {
            match inline {
                Some(v) => Some(v.to_owned()),
                None => {
                    i += 1;
                    args.get(i).map(|s| (*s).to_owned())
                }
            }
        };
        let found = match a {
            "-L" => take(None).map(|v| (Flag::Search, v)),
            "-l" => take(None).map(|v| (Flag::Lib, v)),
            "-C" | "--codegen" => take(None).and_then(|v| codegen(&v)),
            _ => {
                if let Some(v) = a.strip_prefix("-L") {
                    Some((Flag::Search, v.to_owned()))
                } else if let Some(v) = a.strip_prefix("-l") {
                    Some((Flag::Lib, v.to_owned()))
                } else if let Some(v) = a
                    .strip_prefix("-C")
                    .or_else(|| a.strip_prefix("--codegen="))
                {
                    codegen(v)
                } else {
                    None
                }
            }
        };
        out.extend(found);
        i += 1;
    }
    out
}

fn codegen(v: &str) -> Option<(Flag, String)> {
    if let Some(x) = v.strip_prefix("link-arg=") {
        Some((Flag::LinkArg, x.to_owned()))
    } else {
        v.strip_prefix("link-args=")
            .map(|x| (Flag::LinkArgs, x.to_owned()))
    }
}

fn next_is_dependency(args: &[&str], i: usize) -> bool {
    args.get(i + 1)
        .is_some_and(|v| v.starts_with("dependency="))
}

/// Where `run` occurs in `args` as a contiguous run (the last occurrence).
fn find_run(args: &[&str], run: &[String]) -> Option<usize> {
    if run.len() > args.len() {
        return None;
    }
    (0..=args.len() - run.len()).rev().find(|&at| {
        args[at..at + run.len()]
            .iter()
            .zip(run)
            .all(|(a, b)| a == b)
    })
}

/// `CARGO_ENCODED_RUSTFLAGS`: the flags separated by 0x1f.
pub fn decode_rustflags(encoded: &str) -> Vec<String> {
    encoded
        .split('\x1f')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn exec(argv: &str, env: &[(&str, &str)]) -> Exec {
        Exec {
            path: "/r/bin/rustc".into(),
            argv: argv.split(' ').map(str::to_owned).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            cwd: Some("/w".into()),
            ..Default::default()
        }
    }

    const APP: &str = "rustc --crate-name app --crate-type bin --out-dir /w/target/debug/deps -L dependency=/w/target/debug/deps --extern dep=/w/target/debug/deps/libdep-1.rlib -C link-arg=-Wl,-O1 -L /opt/user";

    /// The directives of cargo's own example, after the user's RUSTFLAGS.
    #[test]
    fn reads_the_directives_after_the_users_flags() {
        let krate = CrateRef::new("app", Some("0.1.0"));
        let flags = decode_rustflags("-C\x1flink-arg=-Wl,-O1\x1f-L\x1f/opt/user");
        let mut owners = SearchOwners::default();
        let argv = format!(
            "{APP} -L native=/w/target/debug/build/app-1/out -L rel -l static=z -l dylib=m -C link-arg=-B/tmp/x -C link-args=-Wl,-T,s.ld -C link-arg=-Wl,--wrap=f"
        );
        let inv = Invocation {
            krate: &krate,
            rustflags: Some(&flags),
            cargo_env: None,
            target_dir: Some("/w/target"),
            has_build_script: true,
        };
        let found: Vec<String> = directives(&exec(&argv, &[]), &inv, &mut owners)
            .iter()
            .map(|d| d.directive.subject())
            .collect();
        assert_eq!(
            found,
            [
                "search:/w/target/debug/build/app-1/out",
                "search:/w/rel",
                "lib:static=z",
                "lib:dylib=m",
                "arg:-B/tmp/x",
                "arg:-Wl,-T,s.ld",
                "arg:-Wl,--wrap=f",
            ]
        );
        // Unknown user flags: only cargo's arguments are skipped.
        let inv = Invocation {
            rustflags: None,
            ..inv
        };
        let found = directives(&exec(APP, &[]), &inv, &mut owners);
        assert_eq!(found.len(), 2, "{found:?}");
        // A package without a build script emitted nothing: its arguments are the user's.
        let inv = Invocation {
            has_build_script: false,
            ..inv
        };
        let mut fresh = SearchOwners::default();
        assert_eq!(directives(&exec(APP, &[]), &inv, &mut fresh), []);
    }

    /// A dependency's search directory reaches its dependents: it stays the dependency's.
    #[test]
    fn a_search_directory_belongs_to_the_first_crate_that_carried_it() {
        let (dep, app) = (
            CrateRef::new("dep", Some("1.0.0")),
            CrateRef::new("app", None::<&str>),
        );
        let mut owners = SearchOwners::default();
        let inv = |krate| Invocation {
            krate,
            rustflags: Some(&[]),
            cargo_env: None,
            target_dir: None,
            has_build_script: true,
        };
        directives(
            &exec("rustc --crate-name dep -L native=/opt/evil", &[]),
            &inv(&dep),
            &mut owners,
        );
        let found = directives(
            &exec(
                "rustc --crate-name app -L native=/opt/evil -L /opt/own",
                &[],
            ),
            &inv(&app),
            &mut owners,
        );
        assert_eq!(found[0].owner, dep);
        assert_eq!(found[1].owner, app);
    }

    /// `rustc-env`: a variable cargo did not give rustc; cargo's own `LD_LIBRARY_PATH`
    /// additions are not.
    #[test]
    fn injected_variables() {
        let krate = CrateRef::new("app", None::<&str>);
        let cargo: BTreeMap<String, String> =
            [("PATH", "/usr/bin:/bin"), ("LD_LIBRARY_PATH", "/r/lib")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        let inv = Invocation {
            krate: &krate,
            rustflags: Some(&[]),
            cargo_env: Some(&cargo),
            target_dir: Some("/w/target"),
            has_build_script: true,
        };
        let mut owners = SearchOwners::default();
        let quiet = exec(
            "rustc --crate-name app",
            &[
                ("PATH", "/usr/bin:/bin"),
                ("LD_LIBRARY_PATH", "/w/target/debug/deps:/r/lib"),
            ],
        );
        assert_eq!(directives(&quiet, &inv, &mut owners), []);
        // The target directory as cargo was given it (`--target-dir ./target` from /w).
        let unclean = exec(
            "rustc --crate-name app",
            &[
                ("PATH", "/usr/bin:/bin"),
                ("LD_LIBRARY_PATH", "/w/./target/debug/deps:/r/lib"),
            ],
        );
        assert_eq!(directives(&unclean, &inv, &mut owners), []);
        let loud = exec(
            "rustc --crate-name app",
            &[
                ("PATH", "/tmp/x:/usr/bin:/bin"),
                ("LD_PRELOAD", "/tmp/x/libevil.so"),
                ("LD_LIBRARY_PATH", "/w/target/debug/build/app-1/out"),
            ],
        );
        let found: Vec<String> = directives(&loud, &inv, &mut owners)
            .iter()
            .map(|d| d.directive.subject())
            .collect();
        assert_eq!(
            found,
            [
                "env:LD_PRELOAD=/tmp/x/libevil.so",
                "env:LD_LIBRARY_PATH=/w/target/debug/build/app-1/out",
                "env:PATH=/tmp/x:/usr/bin:/bin",
            ]
        );
    }
}
