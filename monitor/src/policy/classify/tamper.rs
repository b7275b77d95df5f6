//! `source-tamper` and `artifact-tamper`: writes that change what this build, or the next one,
//! compiles.
//!
//! Cargo's rule is that a build script writes only inside its OUT_DIR. A write (or a rename or
//! link onto a name) by a crate's code onto the project's files outside the target directory
//! (sources, manifests, `build.rs`, `Cargo.lock`, `.cargo/`, `.git/`, `.github/`, editor
//! folders) or onto the sources of a crate (the registry's, a git checkout's) is
//! `source-tamper`; one into another crate's OUT_DIR or target-directory entries (`deps`,
//! `build`, `.fingerprint`, `incremental`) is `artifact-tamper`: it swaps what the final link
//! or the next compilation takes. rustc and its linker are judged by the second rule too: they
//! only ever write the entries of the crate they compile.
//!
//! Pure: a written path, the writer's places and crate in, the verdict out.
use super::Code;
use crate::model::{CrateRef, Places, paths, project};

/// What a write tampers with.
#[derive(Debug, PartialEq, Eq)]
pub struct Tamper {
    /// `source-tamper` or `artifact-tamper`.
    pub code: Code,
    /// What the path is: `source`, `manifest`, `Cargo.lock`, `vcs`, `crate-source`, or the
    /// target entry (`deps of serde`, `build of libz-sys`...).
    pub what: String,
}

/// The verdict on a write to `path` by the code of `krate` (or by rustc compiling it), whose
/// places are `places`; `crate_name` is rustc's `--crate-name` when rustc wrote (a binary or a
/// library named apart from its package).
pub fn write_tamper(
    path: &str,
    places: &Places,
    krate: &CrateRef,
    crate_name: Option<&str>,
) -> Option<Tamper> {
    let own_out_dir = places
        .out_dir
        .as_deref()
        .is_some_and(|o| paths::is_under(path, o));
    if own_out_dir {
        return None;
    }
    if let Some(ws) = places.workspace.as_deref()
        && let Some(what) = project::project_file(path, ws, places.target_dir.as_deref())
    {
        return Some(Tamper {
            code: Code::SourceTamper,
            what: what.to_owned(),
        });
    }
    if paths::is_registry_source(path, places.cargo_home.as_deref()) {
        return Some(Tamper {
            code: Code::SourceTamper,
            what: "crate-source".to_owned(),
        });
    }
    let target = places.target_dir.as_deref()?;
    let (entry, owners) = project::target_entry_owner(path, target)?;
    let mine = [Some(krate.name.as_str()), crate_name]
        .into_iter()
        .flatten()
        .any(|n| owners.contains(&project::normalize(n)));
    (!mine).then(|| Tamper {
        code: Code::ArtifactTamper,
        what: format!(
            "{entry} of {}",
            owners.last().map(String::as_str).unwrap_or("another crate")
        ),
    })
}

impl Tamper {
    /// `wrote /w/app/src/main.rs (the project's source)`.
    pub fn detail(&self, verb: &str, path: &str) -> String {
        let what = match (self.code, self.what.as_str()) {
            (Code::ArtifactTamper, entry) => {
                format!("another crate's build output: {entry}")
            }
            (_, "crate-source") => {
                "a crate's sources, compiled by every build that uses them".into()
            }
            (_, "vcs") => "the project's version control data".into(),
            (_, "ci-config") => "the project's CI configuration".into(),
            (_, "cargo-config") => "cargo's configuration for the project".into(),
            (_, "editor") => "the project's editor configuration".into(),
            (_, other) => format!("the project's {other}"),
        };
        format!("{verb} {path} ({what})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        Places {
            manifest_dir: Some("/h/.cargo/registry/src/idx/evil-1.0.0".into()),
            out_dir: Some("/w/target/debug/build/evil-0123456789abcdef/out".into()),
            target_dir: Some("/w/target".into()),
            cargo_home: Some("/h/.cargo".into()),
            workspace: Some("/w".into()),
            ..Places::default()
        }
    }

    fn evil() -> CrateRef {
        CrateRef::new("evil", Some("1.0.0"))
    }

    fn code(path: &str) -> Option<Code> {
        write_tamper(path, &places(), &evil(), None).map(|t| t.code)
    }

    #[test]
    fn sources_and_artifacts() {
        assert_eq!(code("/w/app/src/main.rs"), Some(Code::SourceTamper));
        assert_eq!(code("/w/Cargo.lock"), Some(Code::SourceTamper));
        assert_eq!(code("/w/.github/workflows/x.yml"), Some(Code::SourceTamper));
        assert_eq!(
            code("/h/.cargo/registry/src/idx/evil-1.0.0/src/lib.rs"),
            Some(Code::SourceTamper)
        );
        assert_eq!(
            code("/w/target/debug/build/victim-sys-0123456789abcdef/out/libv.a"),
            Some(Code::ArtifactTamper)
        );
        assert_eq!(
            code("/w/target/debug/deps/libvictim-0123456789abcdef.rlib"),
            Some(Code::ArtifactTamper)
        );
        // Its own places, and what belongs to no crate.
        assert_eq!(
            code("/w/target/debug/build/evil-0123456789abcdef/out/gen.rs"),
            None
        );
        assert_eq!(
            code("/w/target/debug/build/evil-fedcba9876543210/out/gen.rs"),
            None
        );
        assert_eq!(
            code("/w/target/debug/incremental/evil-0123456789abcdef/s/a"),
            None
        );
        assert_eq!(code("/w/target/debug/deps/rustcXyZ/lib.rmeta"), None);
        assert_eq!(code("/tmp/x"), None);
    }

    #[test]
    fn rustc_writes_the_entries_of_its_crate_name() {
        let t = write_tamper(
            "/w/target/release/deps/rg-0123456789abcdef",
            &places(),
            &CrateRef::new("ripgrep", Some("14.0.0")),
            Some("rg"),
        );
        assert_eq!(t, None);
        let t = write_tamper(
            "/w/target/release/deps/rg-0123456789abcdef",
            &places(),
            &CrateRef::new("app", Some("1.0.0")),
            Some("app"),
        );
        assert_eq!(t.map(|t| t.code), Some(Code::ArtifactTamper));
    }
}
