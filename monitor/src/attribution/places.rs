//! The places of a crate instance: where its sources, OUT_DIR, build script and target
//! directory are, as the run's events show them, and the locations profile variables and the
//! baseline refer to.
use super::{Attributor, CrateRef, ProcKind};
use crate::model::{Exec, Places, paths};

/// The directories of one crate instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrateDirs {
    /// CARGO_MANIFEST_DIR.
    pub manifest_dir: Option<String>,
    /// OUT_DIR of its build script.
    pub out_dir: Option<String>,
    /// The build script's own binary.
    pub build_script: Option<String>,
    /// The target directory it was built in.
    pub target_dir: Option<String>,
}

impl Attributor {
    /// The locations profile variables and the baseline refer to, for `krate` (or for the build
    /// as a whole).
    pub fn places_for(&self, krate: Option<&CrateRef>) -> Places {
        let dirs = krate
            .and_then(|k| self.crate_dirs.get(k))
            .cloned()
            .unwrap_or_default();
        Places {
            manifest_dir: dirs.manifest_dir,
            out_dir: dirs.out_dir,
            build_script: dirs.build_script,
            // What the events say first: `cargo metadata` names the target directory of the
            // workspace it ran in, which is not always the one the build uses.
            target_dir: dirs
                .target_dir
                .or_else(|| self.target_dir.clone())
                .or_else(|| self.context.target_dir.clone()),
            sysroot: self.sysroot.clone(),
            cargo_home: self
                .cargo_home()
                .map(str::to_owned)
                .or_else(|| self.home.as_ref().map(|h| format!("{h}/.cargo"))),
            home: self.home.clone(),
            tmpdir: self.tmpdir.clone().or_else(|| Some("/tmp".to_owned())),
            workspace: self.workspace_root().map(str::to_owned),
        }
    }

    /// The places of the crate instance `pid` acts for. A crate can be built twice in one run
    /// (for the host and for the target, or with other features: `cargo install bat` builds
    /// serde twice, at once), each instance with its own OUT_DIR; the process's own build script
    /// or rustc (itself or its nearest such ancestor, when it is `krate`'s) says which, and the
    /// crate-wide [`Self::places_for`] (the instance seen last) is only the fallback.
    pub fn places_for_process(&self, pid: u32, krate: Option<&CrateRef>) -> Places {
        let mut places = self.places_for(krate);
        let Some(krate) = krate else { return places };
        let mut next = Some(pid);
        // Bounded: the table's parent links come from fork records and cannot loop, but a
        // corrupt stream must not make this spin.
        for _ in 0..256 {
            let Some(p) = next.and_then(|pid| self.table.get(pid)) else {
                break;
            };
            let own = match &p.kind {
                ProcKind::BuildScript(k) => k == krate,
                ProcKind::Rustc(info) => info.krate.as_ref() == Some(krate),
                _ => false,
            };
            if own {
                if let Some(d) = &p.dirs.out_dir {
                    places.out_dir = Some(d.clone());
                }
                if let Some(d) = &p.dirs.manifest_dir {
                    places.manifest_dir = Some(d.clone());
                }
                break;
            }
            next = (p.ppid != 0 && p.ppid != p.pid).then_some(p.ppid);
        }
        places
    }

    /// The directories of `krate`'s instance, from the environment cargo gave its build script
    /// or its rustc (and, for the target directory, rustc's `--out-dir`): what the run really
    /// uses, whatever `cargo metadata` said (`cargo install` builds in a target directory of its
    /// own, which metadata run from elsewhere cannot know). Of OUT_DIRs, only a build script's
    /// tells where the target directory is (`from_build_script`): rustc may carry an OUT_DIR the
    /// watched command inherited.
    pub(super) fn note_dirs(
        &mut self,
        krate: &CrateRef,
        exec: &Exec,
        from_build_script: bool,
        out_dir: Option<&str>,
    ) {
        let dirs = self.crate_dirs.entry(krate.clone()).or_default();
        if let Some(d) = exec.dir_var("CARGO_MANIFEST_DIR") {
            dirs.manifest_dir = Some(d);
        }
        if let Some(d) = exec.dir_var("OUT_DIR") {
            dirs.out_dir = Some(d);
        }
        let target = dirs
            .out_dir
            .as_deref()
            .filter(|_| from_build_script)
            .into_iter()
            .chain(out_dir)
            .find_map(paths::target_root);
        if let Some(target) = target {
            self.target_dir.get_or_insert_with(|| target.clone());
            dirs.target_dir = Some(target);
        }
    }
}
