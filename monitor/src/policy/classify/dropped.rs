//! `dropped-exec`: a program executed that the watched run itself wrote.
//!
//! A build script that writes a program and runs it (proc-macro1 in August 2026 wrote
//! `/tmp/rust-setup` and ran it detached) leaves two events: the write, remembered by
//! attribution's [`WriteTable`] with the process that made it, and the exec. Whoever runs the
//! program (the build script itself, a shell, the linker through flags the build script
//! printed, cargo), the crate whose code wrote it answers for it.
//!
//! The one exception is what compile-and-run probes produce (cc-rs and autocfg probes,
//! autoconf's `conftest`, cmake's try_compile): an executable written by the toolchain (a
//! compiler or linker process, told by its executable's real path) working for a crate, inside
//! that crate's own OUT_DIR. The file's name never decides.
//!
//! Pure: an exec, the write table and the crates' OUT_DIRs in, the verdict out.
use crate::{
    attribution::{WriteTable, Writer},
    model::{CrateRef, Exec, paths},
};

/// A dropped program that was run.
#[derive(Debug)]
pub struct Dropped<'a> {
    /// Who wrote it last.
    pub writer: &'a Writer,
    /// The program (for a script run directly, the script).
    pub path: String,
}

impl Dropped<'_> {
    /// `ran /tmp/x, which the build-script of d 0.1.0 (build-script-build, pid 4) wrote`.
    pub fn detail(&self, runner: Option<&str>) -> String {
        let by = runner.map(|r| format!("; run by {r}")).unwrap_or_default();
        format!(
            "ran {}, a program written during this build by {}{by}",
            self.path,
            self.writer.describe()
        )
    }
}

/// Whether `exec` ran a program the crates' code wrote during the run; `out_dir_of` gives a
/// crate's OUT_DIR.
pub fn dropped_exec<'a>(
    exec: &Exec,
    writes: &'a WriteTable,
    out_dir_of: impl Fn(&CrateRef) -> Option<String>,
) -> Option<Dropped<'a>> {
    // The script itself when a `#!` script is run directly, then the image the kernel loaded
    // (the interpreter of a script; the program through a symlink).
    let requested = exec.requested();
    let image = exec.image();
    [requested.as_str(), image].into_iter().find_map(|path| {
        let writer = writes.writer(path)?;
        let probe = writer.toolchain
            && writer
                .actor
                .crate_ref()
                .and_then(|k| out_dir_of(&k))
                .is_some_and(|out| paths::is_under(path, &out));
        (!probe).then(|| Dropped {
            writer,
            path: path.to_owned(),
        })
    })
}

/// Whether `exec` ran a compile-and-run probe: a program the toolchain wrote for a crate in
/// that crate's own OUT_DIR. The baseline lets every crate run these (the exception above).
pub fn is_toolchain_probe(
    exec: &Exec,
    writes: &WriteTable,
    out_dir_of: impl Fn(&CrateRef) -> Option<String>,
) -> bool {
    let image = exec.image();
    writes.writer(image).is_some_and(|w| {
        w.toolchain
            && w.actor
                .crate_ref()
                .and_then(|k| out_dir_of(&k))
                .is_some_and(|out| paths::is_under(image, &out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Access, Actor, Event, EventKind, Open, OpenSyscall, Role};

    fn write(t: &mut WriteTable, path: &str, actor: Actor, image: &str) {
        let event = Event {
            time_ns: 1,
            pid: 9,
            tid: 9,
            ppid: 1,
            comm: "x".into(),
            actor: Some(actor),
            callers: Vec::new(),
            kind: EventKind::Open(Open {
                syscall: OpenSyscall::Openat,
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
        };
        t.observe(&event, image, None);
    }

    fn exec(path: &str, exe: Option<&str>) -> Exec {
        Exec {
            path: path.into(),
            exe: exe.map(Into::into),
            argv: vec![path.into()],
            ..Default::default()
        }
    }

    const OUT: &str = "/w/target/debug/build/p-0123456789abcdef/out";

    fn out_dir(k: &CrateRef) -> Option<String> {
        (k.name == "p").then(|| OUT.to_owned())
    }

    fn tool(krate: &str) -> Actor {
        let mut a = Actor::for_crate(Role::Tool, &CrateRef::new(krate, Some("1.0.0")));
        a.via = Some(Role::BuildScript);
        a
    }

    #[test]
    fn a_program_the_build_script_wrote() {
        let mut t = WriteTable::default();
        let bs = Actor::for_crate(Role::BuildScript, &CrateRef::new("p", Some("1.0.0")));
        write(
            &mut t,
            "/tmp/rust-setup",
            bs.clone(),
            "/w/target/debug/build/p-1/build-script-build",
        );
        let d = dropped_exec(&exec("/tmp/rust-setup", None), &t, out_dir).expect("dropped");
        assert_eq!(d.writer.actor, bs);
        // Even in its own OUT_DIR: the build script wrote it, not a compiler.
        write(
            &mut t,
            &format!("{OUT}/x"),
            bs,
            "/w/target/debug/build/p-1/build-script-build",
        );
        assert!(dropped_exec(&exec(&format!("{OUT}/x"), None), &t, out_dir).is_some());
        // A `#!` script run directly: the image is the interpreter, the script was dropped.
        write(&mut t, "/tmp/s.sh", tool("p"), "/usr/bin/cp");
        let d =
            dropped_exec(&exec("/tmp/s.sh", Some("/usr/bin/dash")), &t, out_dir).expect("script");
        assert_eq!(d.path, "/tmp/s.sh");
    }

    #[test]
    fn probes_the_toolchain_built_in_the_crates_own_out_dir() {
        let mut t = WriteTable::default();
        let probe = format!("{OUT}/probe");
        write(
            &mut t,
            &probe,
            tool("p"),
            "/usr/bin/x86_64-linux-gnu-ld.bfd",
        );
        assert!(dropped_exec(&exec(&probe, None), &t, out_dir).is_none());
        assert!(is_toolchain_probe(&exec(&probe, None), &t, out_dir));
        // The same linker output outside OUT_DIR, or in another crate's: dropped.
        write(
            &mut t,
            "/tmp/probe",
            tool("p"),
            "/usr/bin/x86_64-linux-gnu-ld.bfd",
        );
        assert!(dropped_exec(&exec("/tmp/probe", None), &t, out_dir).is_some());
        write(&mut t, &probe, tool("q"), "/usr/bin/ld");
        assert!(dropped_exec(&exec(&probe, None), &t, out_dir).is_some());
        assert!(!is_toolchain_probe(&exec(&probe, None), &t, out_dir));
        // Programs nobody in the crates wrote.
        assert!(dropped_exec(&exec("/usr/bin/cc", None), &t, out_dir).is_none());
        assert!(!is_toolchain_probe(&exec("/usr/bin/cc", None), &t, out_dir));
    }
}
