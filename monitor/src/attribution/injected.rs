//! Code a build script's directives brought into rustc and its linker: a library its
//! `rustc-env` preloads (`LD_PRELOAD`, `LD_AUDIT`, `LD_LIBRARY_PATH`), a program the link runs
//! from a directory its link arguments or `PATH` named (`-B DIR`, `-L DIR`) or from its OUT_DIR.
//! What that code does answers to the crate whose build script emitted the directive, not to
//! the crate being compiled nor to a proc-macro: the chain says how it got there.
use super::{Attributor, Directive, RustcInfo, is_toolchain_program};
use crate::model::{Actor, CrateRef, Exec, Role, paths};

/// The variables through which a library gets into every process rustc starts.
const LOADER_VARIABLES: [&str; 3] = ["LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH"];

impl Attributor {
    /// The build script whose `rustc-env` made the dynamic loader bring code into this rustc
    /// (and the linker it runs): the actor for what rustc never does itself when no proc-macro's
    /// code asked for it.
    pub(super) fn preload_actor(&self, r: &RustcInfo, in_linker: bool) -> Option<Actor> {
        let (owner, name, value) = r.directives.iter().find_map(|d| match &d.directive {
            Directive::Env { name, value } if LOADER_VARIABLES.contains(&name.as_str()) => {
                Some((&d.owner, name, value))
            }
            _ => None,
        })?;
        let mut chain = vec!["rustc".to_owned()];
        if in_linker {
            chain.push("linker".to_owned());
        }
        chain.push(format!("{name}={value}"));
        Some(tool_of(owner, chain, r))
    }

    /// The build script whose directives (or OUT_DIR) put the program `image` that rustc's
    /// linker step runs where the link looks for programs.
    pub(super) fn injected_program(
        &self,
        r: &RustcInfo,
        exec: &Exec,
        runner: &str,
    ) -> Option<Actor> {
        // The toolchain's own programs stay the linker's, whatever directory a directive named
        // (`-L /usr/lib` holds gcc's collect2).
        let (real, requested) = (exec.image(), exec.requested());
        let sysroot = r.sysroot.as_deref();
        if is_toolchain_program(real, sysroot) && is_toolchain_program(&requested, sysroot) {
            return None;
        }
        let image = requested.as_str();
        let by_directive = r.directives.iter().find_map(|d| {
            let dirs: Vec<&str> = match &d.directive {
                Directive::Arg(arg) => arg
                    .strip_prefix("-B")
                    .filter(|p| !p.is_empty() && p.starts_with('/'))
                    .into_iter()
                    .collect(),
                Directive::Search(dir) => vec![dir.as_str()],
                Directive::Env { name, value } if name == "PATH" || name == "COMPILER_PATH" => {
                    value.split(':').collect()
                }
                _ => Vec::new(),
            };
            dirs.iter()
                .any(|dir| paths::is_under(image, dir))
                .then_some((&d.owner, d.directive.subject()))
        });
        let (owner, how) = match by_directive {
            Some((owner, subject)) => (owner.clone(), subject),
            None => {
                let (krate, _) = self.crate_dirs.iter().find(|(_, dirs)| {
                    dirs.out_dir
                        .as_deref()
                        .is_some_and(|o| paths::is_under(image, o))
                })?;
                (krate.clone(), "its OUT_DIR".to_owned())
            }
        };
        let chain = vec![
            "rustc".to_owned(),
            runner.to_owned(),
            format!("{} (from {how})", paths::file_name(image)),
        ];
        Some(tool_of(&owner, chain, r))
    }
}

/// A tool acting for `owner`'s build script, inside the compilation of `r`'s crate.
fn tool_of(owner: &CrateRef, chain: Vec<String>, r: &RustcInfo) -> Actor {
    let mut actor = Actor::for_crate(Role::Tool, owner);
    actor.via = Some(Role::BuildScript);
    actor.chain = chain;
    actor.compiling = r.krate.clone();
    actor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, EventKind, Fork};

    fn event(pid: u32, ppid: u32, kind: EventKind) -> Event {
        Event {
            time_ns: 1,
            pid,
            tid: pid,
            ppid,
            comm: "x".into(),
            actor: None,
            callers: Vec::new(),
            kind,
        }
    }

    fn exec(path: &str, argv: &[&str], env: &[(&str, &str)]) -> EventKind {
        EventKind::Exec(Exec {
            path: path.into(),
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            cwd: Some("/w".into()),
            ..Exec::default()
        })
    }

    fn open(path: &str) -> EventKind {
        let json = format!(
            r#"{{"syscall":"openat","path":"{path}","flags":0,"access":"read","result":3}}"#
        );
        EventKind::Open(serde_json::from_str(&json).expect("open"))
    }

    /// A library a build script's rustc-env preloads into rustc is no proc-macro: what it does
    /// acts for that build script, with the chain.
    #[test]
    fn a_preloaded_library_acts_for_the_build_script_that_set_it() {
        let out = "/w/target/debug/build/p-0123456789abcdef/out";
        let lib = format!("{out}/libbwpreload.so");
        let mut a = Attributor::new();
        let path = ("PATH", "/usr/bin:/bin");
        a.process(&mut event(
            10,
            1,
            exec("/usr/bin/cargo", &["cargo", "build"], &[path]),
        ));
        a.process(&mut event(10, 1, EventKind::Fork(Fork { child_pid: 11 })));
        let preload = ("LD_PRELOAD", lib.as_str());
        a.process(&mut event(
            11,
            10,
            exec(
                "/r/bin/rustc",
                &[
                    "rustc",
                    "--crate-name",
                    "p",
                    "--out-dir",
                    "/w/target/debug/deps",
                    "-L",
                    "dependency=/w/target/debug/deps",
                ],
                &[
                    path,
                    preload,
                    ("CARGO_PKG_NAME", "p"),
                    ("CARGO_PKG_VERSION", "0.1.0"),
                    ("OUT_DIR", out),
                ],
            ),
        ));
        let r = a.rustc_info(11).expect("rustc");
        assert_eq!(r.directives.len(), 1, "{:?}", r.directives);
        let mut load = event(11, 10, open(&lib));
        a.process(&mut load);
        assert!(a.seen().is_empty(), "no proc-macro: {:?}", a.seen());
        let mut read = event(11, 10, open("/home/u/.ssh/id_rsa"));
        a.process(&mut read);
        let actor = read.actor.expect("actor");
        assert_eq!(actor.policy_role(), Role::BuildScript);
        assert_eq!(actor.crate_ref(), Some(CrateRef::new("p", Some("0.1.0"))));
        assert!(
            actor.chain.iter().any(|c| c.starts_with("LD_PRELOAD=")),
            "{actor:?}"
        );
    }
}
