//! The link is judged, not trusted: rustc runs its linker, and the linker its helpers, and
//! build scripts can steer which programs those are (`cargo:rustc-link-arg=-B<dir>`,
//! `-fuse-ld=<path>`, wrapper flags). A program run in rustc's linker step that is not part of
//! the toolchain — the compiler drivers, assemblers, linkers and archivers of the system or of
//! the Rust sysroot, told by the executable's real path, not its name — or the linker the user
//! configured (`-C linker=`), is an `unexpected-exec` on the crate being linked.
//!
//! Pure: an exec, rustc's sysroot and configured linker in, the verdict out.
use crate::{
    attribution::is_toolchain_program,
    model::{Exec, paths},
};

/// Whether `exec`, run in rustc's linker step, runs something other than the toolchain.
pub fn foreign_link_program(exec: &Exec, sysroot: Option<&str>, linker: Option<&str>) -> bool {
    let image = exec.image();
    if is_toolchain_program(image, sysroot) {
        return false;
    }
    // The configured linker (and what lives beside it: a wrapper's own tools).
    let configured = linker.is_some_and(|l| {
        let dir = l.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty());
        image == l
            || dir.is_some_and(|d| paths::is_under(image, d))
            || (!l.contains('/') && paths::file_name(image) == l)
    });
    !configured
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(image: &str) -> Exec {
        Exec {
            path: image.into(),
            argv: vec![image.into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_toolchain_and_the_configured_linker_are_not_foreign() {
        let sysroot = Some("/r/toolchains/stable");
        for ok in [
            "/usr/bin/x86_64-linux-gnu-gcc-12",
            "/usr/libexec/gcc/x86_64-linux-gnu/12/collect2",
            "/usr/bin/x86_64-linux-gnu-ld.bfd",
            "/r/toolchains/stable/lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld",
        ] {
            assert!(!foreign_link_program(&exec(ok), sysroot, None), "{ok}");
        }
        assert!(!foreign_link_program(
            &exec("/home/u/zig/zig"),
            sysroot,
            Some("/home/u/zig/zigcc")
        ));
        // A linker planted by a build script's `-B` flag, whatever its name.
        assert!(foreign_link_program(&exec("/tmp/evil/ld"), sysroot, None));
        assert!(foreign_link_program(
            &exec("/w/target/debug/build/x-1/out/ld"),
            sysroot,
            None
        ));
        assert!(foreign_link_program(
            &exec("/usr/bin/curl"),
            sysroot,
            Some("cc")
        ));
    }
}
