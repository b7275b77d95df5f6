//! `link-injection`: what a build script makes rustc or the linker do beyond linking its own
//! output, judged on the directives rustc received (see [`crate::attribution::directives`]).
//!
//! Reported, on the crate whose build script emitted the directive:
//! - arguments that change which programs the link runs or how it links: the compiler driver's
//!   program prefix and linker choice (`-B`, `-fuse-ld`, `--ld-path`, `-specs`, `-wrapper`,
//!   plugins), symbol and entry rewiring (`--wrap`, `--defsym`, `-e`, `-init`, `-fini`,
//!   `--allow-multiple-definition`), linker scripts (`-T`, `--script`, version scripts), the
//!   program's loader and run-time library path (`--dynamic-linker`, `-rpath`), hardening
//!   turned off (`-z execstack`, `-z norelro`, `-no-pie`, ...), response files (`@file`), and
//!   start files left out (`-nostartfiles`, `-nostdlib`);
//! - search directories and input files outside the places a crate's link may take from: its
//!   own OUT_DIR and sources, the target directory (writes there by another crate are
//!   `artifact-tamper`), registry sources, the toolchain and the system's library directories;
//! - `rustc-env` variables that change which code rustc and the linker load or run
//!   (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `PATH`, ...).
//!
//! Ordinary `-sys` crates stay quiet: `-L native=$OUT_DIR/lib`, `-l static=z`, `-l dylib=ssl`,
//! `/usr/lib/x86_64-linux-gnu`, `-Wl,--as-needed`, `-Wl,-Bstatic`.
use super::{Allow, Run, Verdict};
use crate::{
    attribution::{Directed, Directive},
    model::{Actor, Event, EventKind, Places, Role, paths},
    policy::Code,
    profile::RuleList,
};

/// The system's library directories.
const SYSTEM_LIB_DIRS: [&str; 11] = [
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libx32",
    "/usr/local/lib",
    "/usr/local/lib64",
    "/usr/X11R6/lib",
];

/// The `link-injection` verdicts on a rustc's start (`event` is rustc's own exec), each blaming
/// the build script that emitted the directive.
pub fn link_injection(event: &Event, run: &Run<'_>) -> Vec<Verdict> {
    let (EventKind::Exec(_), Some(attribution)) = (&event.kind, run.attribution) else {
        return Vec::new();
    };
    let Some(rustc) = attribution.rustc_info(event.pid) else {
        return Vec::new();
    };
    // The linker's exec shares its rustc's facts: judged once, at rustc's own.
    if rustc.pid != event.pid || rustc.directives.is_empty() {
        return Vec::new();
    }
    let compiling = rustc
        .krate
        .as_ref()
        .map_or_else(|| "a crate".to_owned(), ToString::to_string);
    let cwd = rustc.cwd.as_deref();
    // `-Xlinker X` and `-z X` come as two directives.
    let mut pending: Option<&str> = None;
    let mut verdicts = Vec::new();
    for d in &rustc.directives {
        let places = attribution.places_for(Some(&d.owner));
        let place = Place {
            places: &places,
            cargo_home: attribution.cargo_home(),
            cwd,
        };
        let reason = match &d.directive {
            Directive::Search(dir) => place
                .outside(dir)
                .then(|| "a library search directory outside its OUT_DIR and the system's library directories".to_owned()),
            Directive::Lib(spec) => lib(spec),
            Directive::Arg(arg) => match pending.take() {
                Some("-z") => linker_args(["-z", arg.as_str()].into_iter(), &place),
                Some(_) => linker_args(std::iter::once(arg.as_str()), &place),
                None if arg == "-Xlinker" || arg == "-z" => {
                    pending = Some(arg.as_str());
                    None
                }
                None => driver_arg(arg, &place),
            },
            Directive::Env { name, .. } => Some(env_reason(name)),
        };
        if let Some(reason) = reason {
            verdicts.push(verdict(d, &compiling, &reason));
        }
    }
    verdicts
}

fn verdict(d: &Directed, compiling: &str, reason: &str) -> Verdict {
    let what = match &d.directive {
        Directive::Env { .. } => "set in rustc's environment (cargo:rustc-env)",
        _ => "passed to rustc",
    };
    Verdict {
        blame: Some(Actor::for_crate(Role::BuildScript, &d.owner)),
        ..Verdict::new(
            Code::LinkInjection,
            Allow::List(RuleList::Link),
            d.directive.subject(),
            format!(
                "the build script of {} had cargo {what} {} compiling {compiling}: {reason}",
                d.owner,
                shown(&d.directive)
            ),
        )
    }
}

fn shown(d: &Directive) -> String {
    match d {
        Directive::Search(dir) => format!("-L {dir}"),
        Directive::Lib(spec) => format!("-l {spec}"),
        Directive::Arg(arg) => format!("-C link-arg={arg}"),
        Directive::Env { name, value } => format!("{name}={value}"),
    }
}

/// The places a crate's link may take inputs from.
struct Place<'a> {
    places: &'a Places,
    cargo_home: Option<&'a str>,
    cwd: Option<&'a str>,
}

impl Place<'_> {
    /// Whether `path` (a directory or an input file) is outside them.
    fn outside(&self, path: &str) -> bool {
        let path = paths::clean_dir(path, self.cwd).unwrap_or_else(|| path.to_owned());
        let p = self.places;
        let under =
            |dir: &Option<String>| dir.as_deref().is_some_and(|d| paths::is_under(&path, d));
        !(under(&p.out_dir)
            || under(&p.manifest_dir)
            || under(&p.target_dir)
            || under(&p.sysroot)
            || paths::is_registry_source(&path, self.cargo_home)
            || SYSTEM_LIB_DIRS.iter().any(|d| paths::is_under(&path, d)))
    }
}

/// A library named by a path, or by something that is not a name, is an input file in disguise.
fn lib(spec: &str) -> Option<String> {
    let name = spec.rsplit_once('=').map_or(spec, |(_, n)| n);
    let name = name.split_once(':').map_or(name, |(n, _)| n);
    (name.contains('/') || name.starts_with('-') || name.starts_with('@') || name.is_empty())
        .then(|| "a library named by a path or an option rather than a name".to_owned())
}

/// One argument for the compiler driver (`cc`), which rustc runs as the linker.
fn driver_arg(arg: &str, place: &Place<'_>) -> Option<String> {
    if let Some(rest) = arg.strip_prefix("-Wl,") {
        return linker_args(rest.split(','), place);
    }
    if arg.starts_with('@') {
        return Some(RESPONSE_FILE.to_owned());
    }
    if let Some(prefix) = arg.strip_prefix("-B") {
        // `-Bstatic`, `-Bdynamic` and `-Bsymbolic*` are the linker's, which cc passes on.
        if !is_ld_b_option(prefix) {
            return Some("a directory where the compiler driver looks for the linker and other programs it runs".to_owned());
        }
        return None;
    }
    for (flag, reason) in DRIVER_FLAGS {
        let (flag, reason): (&str, &str) = (flag, reason);
        if arg == flag || (flag.ends_with('=') && arg.starts_with(flag)) {
            return Some(reason.to_owned());
        }
    }
    if arg.starts_with("-T") {
        return Some(LINKER_SCRIPT.to_owned());
    }
    if let Some(dir) = arg.strip_prefix("-L") {
        return place.outside(dir).then(|| SEARCH_OUTSIDE.to_owned());
    }
    if !arg.starts_with('-') {
        return place.outside(arg).then(|| INPUT_OUTSIDE.to_owned());
    }
    None
}

const RESPONSE_FILE: &str = "a response file, whose contents the link reads as more arguments";
const LINKER_SCRIPT: &str =
    "a linker script, which decides the layout, symbols and inputs of the link";
const SEARCH_OUTSIDE: &str =
    "a library search directory outside its OUT_DIR and the system's library directories";
const INPUT_OUTSIDE: &str =
    "an input to the link from outside its OUT_DIR and the system's library directories";

/// Driver flags that change which programs the link runs or how it links.
const DRIVER_FLAGS: [(&str, &str); 11] = [
    ("-fuse-ld=", "chooses another linker program"),
    ("--ld-path=", "chooses another linker program"),
    (
        "-specs=",
        "a specs file, which rewrites how the compiler driver runs the link",
    ),
    (
        "--specs=",
        "a specs file, which rewrites how the compiler driver runs the link",
    ),
    (
        "-wrapper",
        "runs every program of the link through another program",
    ),
    ("-fplugin=", "loads a compiler plugin"),
    ("-nostartfiles", "leaves out the system's start files"),
    (
        "-nostdlib",
        "leaves out the system's start files and libraries",
    ),
    (
        "-no-pie",
        "turns off position-independent executables (ASLR)",
    ),
    ("-e", "changes the program's entry point"),
    ("--entry=", "changes the program's entry point"),
];

fn is_ld_b_option(rest: &str) -> bool {
    matches!(rest, "static" | "dynamic" | "group" | "shareable") || rest.starts_with("symbolic")
}

/// Arguments for the linker itself (`-Wl,a,b,c` or after `-Xlinker`).
fn linker_args<'a>(args: impl Iterator<Item = &'a str>, place: &Place<'_>) -> Option<String> {
    let args: Vec<&str> = args.collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        let next = args.get(i + 1).copied().unwrap_or("");
        let value_of = |flag: &str| -> Option<&str> {
            if a == flag {
                Some(next)
            } else {
                a.strip_prefix(flag).and_then(|v| v.strip_prefix('='))
            }
        };
        let reason: Option<String> = if a.starts_with('@') {
            Some(RESPONSE_FILE.to_owned())
        } else if a == "-z" || a.starts_with("-z") {
            let keyword = if a == "-z" { next } else { &a[2..] };
            weak_keyword(keyword).map(|w| format!("turns off a hardening of the program (-z {w})"))
        } else if let Some(v) = value_of("--wrap") {
            Some(format!("redirects calls to {v} (--wrap)"))
        } else if let Some(v) = value_of("--defsym") {
            Some(format!(
                "defines a symbol ({v}), which can replace a function (--defsym)"
            ))
        } else if ["--dynamic-linker", "-dynamic-linker"]
            .iter()
            .any(|f| value_of(f).is_some())
            || (a.starts_with("-I") && a.len() > 2)
        {
            Some(
                "chooses the program that loads the output at run time (--dynamic-linker)"
                    .to_owned(),
            )
        } else if ["-rpath", "--rpath", "-R", "-rpath-link", "--rpath-link"]
            .iter()
            .any(|f| value_of(f).is_some())
        {
            Some("a run-time library search path baked into the output (rpath)".to_owned())
        } else if ["-plugin", "--plugin", "-plugin-opt", "--plugin-opt"]
            .iter()
            .any(|f| value_of(f).is_some())
        {
            Some("loads a linker plugin".to_owned())
        } else if a == "-T"
            || a.starts_with("--script")
            || a.starts_with("--version-script")
            || a.starts_with("--dynamic-list")
            || (a.starts_with("-T") && a.len() > 2)
        {
            Some(LINKER_SCRIPT.to_owned())
        } else if ["-e", "--entry", "-init", "--init", "-fini", "--fini"]
            .iter()
            .any(|f| value_of(f).is_some())
        {
            Some("changes the code that runs at start or exit (entry, init, fini)".to_owned())
        } else if a == "--allow-multiple-definition" || a == "--no-pie" {
            Some("lets a symbol be defined twice, or turns off position independence".to_owned())
        } else if let Some(dir) = value_of("--library-path")
            .or_else(|| value_of("-L"))
            .or_else(|| a.strip_prefix("-L"))
        {
            place.outside(dir).then(|| SEARCH_OUTSIDE.to_owned())
        } else if !a.starts_with('-') && !a.is_empty() && i > 0 && takes_value(args[i - 1]) {
            None
        } else if !a.starts_with('-') && !a.is_empty() {
            place.outside(a).then(|| INPUT_OUTSIDE.to_owned())
        } else {
            None
        };
        if reason.is_some() {
            return reason;
        }
        i += 1;
    }
    None
}

/// Linker options whose value is the next argument, which is then not an input file.
fn takes_value(flag: &str) -> bool {
    [
        "-z",
        "-soname",
        "-h",
        "--hash-style",
        "--build-id",
        "-m",
        "-O",
        "--sort-section",
        "--exclude-libs",
        "-u",
        "--undefined",
        "--gc-keep-exported",
        "-L",
        "--library-path",
    ]
    .contains(&flag)
}

/// `-z` keywords that turn a hardening off.
fn weak_keyword(keyword: &str) -> Option<&str> {
    [
        "execstack",
        "norelro",
        "lazy",
        "noseparate-code",
        "muldefs",
        "notext",
        "textoff",
        "nodelete",
        "initfirst",
        "interpose",
    ]
    .contains(&keyword)
    .then_some(keyword)
}

fn env_reason(name: &str) -> String {
    match name {
        "LD_PRELOAD" | "LD_AUDIT" => {
            format!("{name} makes rustc and the linker load this library's code")
        }
        "LD_LIBRARY_PATH" => {
            "LD_LIBRARY_PATH changes which shared libraries rustc and the linker load".to_owned()
        }
        "PATH" => "PATH changes which programs rustc runs as the linker and which the linker runs"
            .to_owned(),
        "GCC_EXEC_PREFIX" | "COMPILER_PATH" => {
            format!("{name} changes which programs the compiler driver runs to link")
        }
        "LIBRARY_PATH" => "LIBRARY_PATH adds library search directories to the link".to_owned(),
        _ => format!("{name} changes which compiler runs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        Places {
            out_dir: Some("/w/target/debug/build/z-sys-1/out".into()),
            manifest_dir: Some("/h/.cargo/registry/src/idx/z-sys-1.0.0".into()),
            target_dir: Some("/w/target".into()),
            sysroot: Some("/h/.rustup/toolchains/stable".into()),
            ..Places::default()
        }
    }

    fn judged(arg: &str) -> Option<String> {
        let p = places();
        let place = Place {
            places: &p,
            cargo_home: Some("/h/.cargo"),
            cwd: Some("/w"),
        };
        driver_arg(arg, &place)
    }

    /// What ordinary -sys crates and linker tuning print stays quiet.
    #[test]
    fn ordinary_link_arguments_are_quiet() {
        for arg in [
            "-Wl,--as-needed",
            "-Wl,--no-as-needed",
            "-Wl,-Bstatic",
            "-Bdynamic",
            "-Wl,--whole-archive",
            "-Wl,-soname,libfoo.so.1",
            "-Wl,--gc-sections",
            "-lstdc++",
            "-pthread",
            "-L/usr/lib/x86_64-linux-gnu",
            "-Wl,-L,/w/target/debug/build/z-sys-1/out/lib",
            "/w/target/debug/build/z-sys-1/out/obj.o",
            "/usr/lib/x86_64-linux-gnu/crt1.o",
        ] {
            assert_eq!(judged(arg), None, "{arg}");
        }
    }

    /// What changes the programs the link runs, or how it links, is reported.
    #[test]
    fn link_manipulation_is_reported() {
        for arg in [
            "-B/tmp/bw",
            "-fuse-ld=/tmp/ld",
            "--ld-path=/tmp/ld",
            "-specs=/tmp/x.specs",
            "-wrapper",
            "@/tmp/args",
            "-Wl,@/tmp/args",
            "-Wl,--defsym=main=evil",
            "-Wl,--defsym,main=evil",
            "-Wl,--wrap=malloc",
            "-Wl,-T,/tmp/x.ld",
            "-T/tmp/x.ld",
            "-Wl,--script=/tmp/x.ld",
            "-Wl,-plugin,/tmp/p.so",
            "-Wl,--dynamic-linker=/tmp/ld.so",
            "-Wl,-rpath,/tmp/lib",
            "-Wl,-rpath=$ORIGIN",
            "-Wl,-z,execstack",
            "-Wl,-znorelro",
            "-Wl,-e,evil",
            "-Wl,--allow-multiple-definition",
            "-no-pie",
            "-L/tmp/evil",
            "-Wl,-L/opt/evil",
            "/tmp/evil.o",
            "evil.o",
        ] {
            assert!(judged(arg).is_some(), "{arg}");
        }
        assert!(lib("static=z").is_none());
        assert!(lib("dylib=ssl").is_none());
        assert!(lib("static:+whole-archive,-bundle=foo").is_none());
        assert!(lib("static:+verbatim=/tmp/evil.o").is_some());
        assert!(lib("dylib=-Wl,-B/tmp").is_some());
    }

    #[test]
    fn search_directories() {
        let p = places();
        let place = Place {
            places: &p,
            cargo_home: Some("/h/.cargo"),
            cwd: Some("/w"),
        };
        for quiet in [
            "/w/target/debug/build/z-sys-1/out/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/local/lib",
            "/h/.cargo/registry/src/idx/z-sys-1.0.0/prebuilt",
            "/h/.rustup/toolchains/stable/lib/rustlib/x86_64-unknown-linux-gnu/lib",
        ] {
            assert!(!place.outside(quiet), "{quiet}");
        }
        for loud in ["/tmp/evil", "/home/u/lib", "/opt/x/lib", "/w/vendor", "rel"] {
            assert!(place.outside(loud), "{loud}");
        }
    }
}
