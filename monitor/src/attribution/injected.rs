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
