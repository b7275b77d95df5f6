//! Which proc-macro inside a rustc answers for an event: the libraries rustc loads, and the
//! candidates for what rustc itself never does (the exact one when the sensor saw its code at
//! the system call).
use super::{Actor, Attributor, CrateRef, ProcKind, Role, RustcInfo, rustc_actor};
use crate::model::paths;

impl Attributor {
    /// The proc-macro(s) whose code the sensor found at the system call: the library the
    /// instruction pointer was in names it exactly (the call was made by that library's own code);
    /// otherwise the libraries with return addresses on the stack.
    pub(super) fn caller_actor(&self, r: &RustcInfo, callers: &[u8]) -> Option<Actor> {
        let of_slots = |slots: &mut dyn Iterator<Item = u8>| -> Vec<&CrateRef> {
            let wanted: Vec<u8> = slots.collect();
            let mut crates: Vec<&CrateRef> = r
                .slots
                .iter()
                .filter(|(slot, _)| wanted.contains(slot))
                .map(|(_, k)| k)
                .collect();
            crates.dedup();
            crates
        };
        let at_ip = of_slots(&mut callers.iter().filter_map(|&b| ip_slot(b)));
        let crates = if at_ip.is_empty() {
            of_slots(&mut callers.iter().copied().filter(|&b| ip_slot(b).is_none()))
        } else {
            at_ip
        };
        let first = *crates.first()?;
        let mut actor = Actor::for_crate(Role::ProcMacro, first);
        if crates.len() > 1 {
            // Nested expansion (one proc-macro calling into another's code): both are on
            // the stack.
            actor.exact = false;
            actor.candidates = crates.into_iter().cloned().collect();
        }
        actor.compiling = r.krate.clone();
        Some(actor)
    }

    /// The crate of a proc-macro library.
    pub fn macro_crate(&self, path: &str) -> CrateRef {
        match self.proc_macro_libs.get(path) {
            Some((krate, _)) => krate.clone(),
            None => self
                .context
                .crate_for_lib(paths::proc_macro_crate_name(path).unwrap_or(path)),
        }
    }

    /// Records the proc-macro libraries a rustc opens. True when `path` is one.
    pub(super) fn note_proc_macro_load(&mut self, pid: u32, path: &str, ok: bool) -> bool {
        if !ok || !path.ends_with(".so") {
            return false;
        }
        let Some(ProcKind::Rustc(r)) = self.table.get(pid).map(|p| &p.kind) else {
            return false;
        };
        // A proc-macro is a library cargo named with --extern, one this run built as a
        // proc-macro, or one of the build's own crates in a `-L dependency=` directory (a
        // proc-macro a direct dependency re-exports, such as git-version's git-version-macro,
        // built by an earlier run); any other shared library rustc loads (one a build script's
        // rustc-env preloaded, from its OUT_DIR or anywhere else) is no proc-macro, whatever its
        // name. (Writing a library into the deps directory is itself artifact-tamper.)
        let is_extern = r.externs.iter().any(|e| e.path == path);
        let in_target = r
            .target_dir
            .as_deref()
            .is_some_and(|t| paths::is_under(path, t));
        let in_dependency_dir = path
            .rsplit_once('/')
            .is_some_and(|(dir, _)| r.dependency_dirs.iter().any(|d| d == dir));
        if !(is_extern
            || (in_target && (self.proc_macro_libs.contains_key(path) || in_dependency_dir)))
        {
            return false;
        }
        if paths::proc_macro_crate_name(path).is_none() {
            return false;
        }
        let krate = self.macro_crate(path);
        if let Some(ProcKind::Rustc(r)) = self.table.get_mut(pid).map(|p| &mut p.kind)
            && !r.loaded_macros.iter().any(|(p, _)| p == path)
        {
            r.loaded_macros.push((path.to_owned(), krate.clone()));
            self.seen.insert((krate, Role::ProcMacro));
        }
        true
    }

    /// The proc-macro(s) behind something unexpected in a rustc process.
    pub(super) fn proc_macro_actor(&self, r: &RustcInfo, path: Option<&str>) -> Actor {
        let mut candidates: Vec<(CrateRef, Option<String>)> = r
            .loaded_macros
            .iter()
            .map(|(lib, krate)| {
                (
                    krate.clone(),
                    self.proc_macro_libs
                        .get(lib)
                        .and_then(|(_, dir)| dir.clone()),
                )
            })
            .collect();
        if candidates.is_empty() {
            // None seen loading (e.g. the opens were lost): every proc-macro it was given.
            candidates = r
                .proc_macro_externs()
                .map(|e| match self.proc_macro_libs.get(&e.path) {
                    Some((krate, dir)) => (krate.clone(), dir.clone()),
                    None => (self.context.crate_for_lib(&e.name), None),
                })
                .collect();
        }
        candidates.dedup_by(|a, b| a.0 == b.0);
        if candidates.is_empty() {
            // No proc-macro at all: rustc itself behaving unusually.
            return rustc_actor(r);
        }
        // A candidate whose own sources hold the path is the likeliest.
        if let Some(path) = path {
            candidates
                .sort_by_key(|(_, dir)| !dir.as_deref().is_some_and(|d| paths::is_under(path, d)));
        }
        let mut actor = Actor::for_crate(Role::ProcMacro, &candidates[0].0);
        actor.exact = candidates.len() == 1;
        if !actor.exact {
            actor.candidates = candidates.into_iter().map(|(k, _)| k).collect();
        }
        actor.compiling = r.krate.clone();
        actor
    }
}

/// The slot of a `callers` bit that says the instruction pointer at the system call was in that
/// slot's library (bits `MACRO_SLOTS..2 * MACRO_SLOTS`; lower bits are return addresses found on
/// the stack).
fn ip_slot(bit: u8) -> Option<u8> {
    let slots = monitor_common::MACRO_SLOTS as u8;
    (slots..2 * slots).contains(&bit).then(|| bit - slots)
}
