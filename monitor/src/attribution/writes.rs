//! Who wrote each file during the run: the table `dropped-exec` is decided from.
//!
//! Keyed by the kernel-resolved path of every successful write, rename or link onto a name (the
//! sensor reports no inode, so a file is known by the name it was written under; a rename or
//! link onto a new name counts as writing it, since it puts a file of the writer's choosing
//! there). Only the last writer matters: a file a build script wrote and the compiler then
//! overwrote holds the compiler's output.
//!
//! Only code of crates is remembered (build scripts, proc-macros and everything they ran,
//! compilers included, with a flag saying which): a file cargo, rustc or the watched command
//! wrote last is forgotten, which keeps the table to what crates produced.
use std::collections::HashMap;

use crate::model::{Actor, Event, EventKind, OpenSyscall, Role, paths};

/// The process that last wrote a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writer {
    /// Who answers for the write (a build script, a proc-macro, or a tool acting for one).
    pub actor: Actor,
    /// The writing process.
    pub pid: u32,
    /// Its executable.
    pub exe: String,
    /// The writing process was the toolchain (a compiler, assembler, linker or archiver of the
    /// system or of the Rust sysroot, by the real path of its executable) run for the crate:
    /// what compile-and-run probes produce.
    pub toolchain: bool,
}

impl Writer {
    /// `the build-script of dropper 0.1.0 (cp, pid 42)`.
    pub fn describe(&self) -> String {
        let who = match (self.actor.role, self.actor.crate_ref(), self.actor.via) {
            (Role::Tool, Some(k), Some(via)) => format!("a program run by the {via} of {k}"),
            (role, Some(k), _) => format!("the {role} of {k}"),
            (role, None, _) => format!("the {role}"),
        };
        format!("{who} ({}, pid {})", paths::file_name(&self.exe), self.pid)
    }
}

/// Every file the crates' code wrote during the run, by path.
#[derive(Debug, Default)]
pub struct WriteTable {
    by_path: HashMap<String, Writer>,
}

impl WriteTable {
    /// The last writer of `path`, when it was the code of a crate.
    pub fn writer(&self, path: &str) -> Option<&Writer> {
        self.by_path.get(path)
    }

    /// Number of files remembered.
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// No file remembered.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// Updates the table with an attributed event of process `image` (its executable), where
    /// `sysroot` is rustc's.
    pub fn observe(&mut self, event: &Event, image: &str, sysroot: Option<&str>) {
        let EventKind::Open(open) = &event.kind else {
            return;
        };
        if open.result < 0 {
            return;
        }
        let names_file = matches!(
            open.syscall,
            OpenSyscall::Rename | OpenSyscall::Link | OpenSyscall::Symlink
        );
        if open.syscall == OpenSyscall::RenameSource {
            // The file is gone from its old name.
            self.by_path.remove(&open.path);
            return;
        }
        if !names_file && !open.writes() {
            return;
        }
        let Some(actor) = event.actor.as_ref() else {
            self.by_path.remove(&open.path);
            return;
        };
        if !matches!(actor.policy_role(), Role::BuildScript | Role::ProcMacro) {
            self.by_path.remove(&open.path);
            return;
        }
        let toolchain = actor.role == Role::Tool && is_toolchain_program(image, sysroot);
        self.by_path.insert(
            open.path.clone(),
            Writer {
                actor: actor.clone(),
                pid: event.pid,
                exe: image.to_owned(),
                toolchain,
            },
        );
    }
}

/// The compilers, assemblers, linkers and archivers that write what compile-and-run probes
/// execute: programs of the Rust sysroot, or of the system's directories by these names. The
/// real path decides (a `cc` in a temporary directory is not the compiler).
pub fn is_toolchain_program(image: &str, sysroot: Option<&str>) -> bool {
    if sysroot.is_some_and(|s| paths::is_under(image, s)) {
        return true;
    }
    if !crate::baseline::is_system_program(image) {
        return false;
    }
    let name = paths::file_name(image);
    paths::is_linker_name(name)
        || matches!(name, "rustc" | "cc1" | "cc1plus" | "as" | "ar" | "ranlib")
        || name.ends_with("-as")
        || name.ends_with("-ar")
        || name.ends_with("-ranlib")
        || name.starts_with("llvm-ar")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Access, CrateRef, Open};

    fn open(pid: u32, path: &str, syscall: OpenSyscall, actor: Option<Actor>) -> Event {
        Event {
            time_ns: 1,
            pid,
            tid: pid,
            ppid: 1,
            comm: "x".into(),
            actor,
            callers: Vec::new(),
            kind: EventKind::Open(Open {
                syscall,
                path: path.into(),
                requested: None,
                flags: 0o1101,
                access: Access::Write,
                create: true,
                result: 3,
                error: None,
                truncated: false,
                compat: false,
                protected: None,
            }),
        }
    }

    fn tool(krate: &str) -> Actor {
        let mut a = Actor::for_crate(Role::Tool, &CrateRef::new(krate, Some("0.1.0")));
        a.via = Some(Role::BuildScript);
        a
    }

    #[test]
    fn last_writer_of_crate_code_is_remembered() {
        let mut t = WriteTable::default();
        let bs = Actor::for_crate(Role::BuildScript, &CrateRef::new("d", Some("0.1.0")));
        t.observe(
            &open(5, "/tmp/x", OpenSyscall::Openat, Some(bs)),
            "/t/build-script-build",
            None,
        );
        let w = t.writer("/tmp/x").expect("remembered");
        assert!(!w.toolchain);
        assert_eq!(w.actor.krate.as_deref(), Some("d"));
        // The linker of a probe overwrites it: the toolchain's output now.
        t.observe(
            &open(6, "/tmp/x", OpenSyscall::Openat, Some(tool("d"))),
            "/usr/bin/ld.bfd",
            None,
        );
        assert!(t.writer("/tmp/x").expect("remembered").toolchain);
        // A program named like a linker but outside the system's directories is not one.
        t.observe(
            &open(7, "/tmp/x", OpenSyscall::Openat, Some(tool("d"))),
            "/tmp/ld",
            None,
        );
        assert!(!t.writer("/tmp/x").expect("remembered").toolchain);
        // cargo writing it last: forgotten.
        t.observe(
            &open(
                8,
                "/tmp/x",
                OpenSyscall::Openat,
                Some(Actor::of(Role::Cargo)),
            ),
            "/usr/bin/cargo",
            None,
        );
        assert!(t.writer("/tmp/x").is_none());
    }

    #[test]
    fn renames_move_and_name_files() {
        let mut t = WriteTable::default();
        t.observe(
            &open(5, "/tmp/a", OpenSyscall::Openat, Some(tool("d"))),
            "/bin/cp",
            None,
        );
        t.observe(
            &open(5, "/tmp/a", OpenSyscall::RenameSource, Some(tool("d"))),
            "/bin/mv",
            None,
        );
        t.observe(
            &open(5, "/tmp/b", OpenSyscall::Rename, Some(tool("d"))),
            "/bin/mv",
            None,
        );
        assert!(t.writer("/tmp/a").is_none());
        assert!(t.writer("/tmp/b").is_some());
        assert!(is_toolchain_program(
            "/home/u/.rustup/toolchains/s/bin/rustc",
            Some("/home/u/.rustup/toolchains/s")
        ));
        assert!(is_toolchain_program(
            "/usr/libexec/gcc/x86_64-linux-gnu/12/cc1",
            None
        ));
        assert!(!is_toolchain_program("/usr/bin/curl", None));
    }
}
