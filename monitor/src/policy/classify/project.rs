//! `project-read`: a dependency from outside the workspace reading the project itself.
//!
//! onering 1.4.1 (June 2026) walked up from its OUT_DIR to the project's `.git` and sent the
//! latest diff away. A dependency that is not a member of the workspace (from the registry, a
//! git source, or a path outside the workspace) has no business in the project's version
//! control data (`.git/`, `.hg/`, `.jj/` of the workspace root or a directory above it) nor in
//! the workspace's files outside its own package. A workspace member reading its own repository
//! (vergen, built or shadow-rs running git for the crate being built) stays quiet, and so does a
//! proc-macro reading the package of the crate it expands in (askama templates, rust-embed
//! folders, pest grammars). Manifests and the lock file are public facts of the project (the
//! proc-macro-crate helper reads them to find renamed dependencies): not counted.
//!
//! Pure: a read path, the reader's places, the places of the crate a proc-macro expands in, and
//! whether the reader is a member in; the verdict out.
use crate::model::{Places, paths, project};

/// What of the project a read reached, when it is a `project-read`.
pub fn project_read(
    path: &str,
    reader: &Places,
    compiling: Option<&Places>,
    member: impl FnOnce() -> bool,
) -> Option<String> {
    let ws = reader.workspace.as_deref()?;
    if let Some(vcs) = project::vcs_data(path, ws) {
        return (!member()).then(|| format!("the project's version control data, {vcs}"));
    }
    let under = |dir: Option<&str>| dir.is_some_and(|d| paths::is_under(path, d));
    let public = matches!(
        paths::file_name(path),
        "Cargo.toml" | "Cargo.lock" | "rust-toolchain" | "rust-toolchain.toml"
    );
    if !paths::is_under(path, ws)
        || public
        || under(reader.target_dir.as_deref())
        || under(reader.manifest_dir.as_deref())
        || under(reader.out_dir.as_deref())
        || under(reader.cargo_home.as_deref())
        || paths::is_registry_source(path, reader.cargo_home.as_deref())
        || under(compiling.and_then(|c| c.manifest_dir.as_deref()))
    {
        return None;
    }
    (!member()).then(|| "a file of the workspace outside the dependency's own package".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep() -> Places {
        Places {
            manifest_dir: Some("/h/.cargo/registry/src/idx/peek-1.0.0".into()),
            out_dir: Some("/w/target/debug/build/peek-0123456789abcdef/out".into()),
            target_dir: Some("/w/target".into()),
            cargo_home: Some("/h/.cargo".into()),
            workspace: Some("/w".into()),
            ..Places::default()
        }
    }

    #[test]
    fn a_dependency_reading_the_project() {
        let p = dep();
        assert!(project_read("/w/.git/config", &p, None, || false).is_some());
        assert!(project_read("/w/.git/index", &p, None, || false).is_some());
        assert!(project_read("/w/app/src/secret.rs", &p, None, || false).is_some());
        // A member reading its own repository.
        assert!(project_read("/w/.git/HEAD", &p, None, || true).is_none());
        // Its own places, the target directory, public manifests.
        assert!(
            project_read(
                "/w/target/debug/build/peek-0123456789abcdef/out/x",
                &p,
                None,
                || false
            )
            .is_none()
        );
        assert!(project_read("/w/Cargo.toml", &p, None, || false).is_none());
        assert!(project_read("/w/Cargo.lock", &p, None, || false).is_none());
        assert!(project_read("/etc/os-release", &p, None, || false).is_none());
        // A proc-macro reading the package it expands in.
        let app = Places {
            manifest_dir: Some("/w/app".into()),
            ..Places::default()
        };
        assert!(project_read("/w/app/templates/index.html", &p, Some(&app), || false).is_none());
        assert!(project_read("/w/other/src/lib.rs", &p, Some(&app), || false).is_some());
    }
}
