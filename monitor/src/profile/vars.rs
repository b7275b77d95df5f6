//! Path variables (`${OUT_DIR}`, …): what a profile may write instead of machine-specific
//! prefixes, and their values for one crate instance.

/// A variable a path pattern may start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    /// `${OUT_DIR}`: the build script's output directory.
    OutDir,
    /// `${CARGO_MANIFEST_DIR}`: the crate's source directory.
    ManifestDir,
    /// `${TARGET_DIR}`: the build's target directory.
    TargetDir,
    /// `${CARGO_HOME}`: cargo's home (registry sources, git checkouts).
    CargoHome,
    /// `${RUSTC_SYSROOT}`: the toolchain's sysroot.
    RustcSysroot,
    /// `${HOME}`: the home directory of the user the build runs as.
    Home,
    /// `${TMPDIR}`: the temporary directory.
    Tmpdir,
    /// `${WORKSPACE}`: the root of the workspace being built.
    Workspace,
}

impl Var {
    /// Every variable, in documentation order.
    pub const ALL: [Var; 8] = [
        Var::OutDir,
        Var::ManifestDir,
        Var::TargetDir,
        Var::CargoHome,
        Var::RustcSysroot,
        Var::Home,
        Var::Tmpdir,
        Var::Workspace,
    ];

    /// The name written between `${` and `}`.
    pub fn name(self) -> &'static str {
        match self {
            Var::OutDir => "OUT_DIR",
            Var::ManifestDir => "CARGO_MANIFEST_DIR",
            Var::TargetDir => "TARGET_DIR",
            Var::CargoHome => "CARGO_HOME",
            Var::RustcSysroot => "RUSTC_SYSROOT",
            Var::Home => "HOME",
            Var::Tmpdir => "TMPDIR",
            Var::Workspace => "WORKSPACE",
        }
    }

    /// The variable called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|var| var.name() == name)
    }
}

/// The variables' values for one crate instance (one build script or proc-macro of one crate
/// version in one build). A pattern that starts with an unset variable matches nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    /// `${OUT_DIR}`
    pub out_dir: Option<String>,
    /// `${CARGO_MANIFEST_DIR}`
    pub manifest_dir: Option<String>,
    /// `${TARGET_DIR}`
    pub target_dir: Option<String>,
    /// `${CARGO_HOME}`
    pub cargo_home: Option<String>,
    /// `${RUSTC_SYSROOT}`
    pub rustc_sysroot: Option<String>,
    /// `${HOME}`
    pub home: Option<String>,
    /// `${TMPDIR}`
    pub tmpdir: Option<String>,
    /// `${WORKSPACE}`
    pub workspace: Option<String>,
}

impl Vars {
    /// The value of `var` as a pattern uses it: absolute, without trailing `/` (the root stays
    /// `/`). `None` when unset, empty or relative: such a value cannot anchor an absolute path,
    /// so patterns using it match nothing rather than something unintended.
    pub fn get(&self, var: Var) -> Option<&str> {
        let value = match var {
            Var::OutDir => &self.out_dir,
            Var::ManifestDir => &self.manifest_dir,
            Var::TargetDir => &self.target_dir,
            Var::CargoHome => &self.cargo_home,
            Var::RustcSysroot => &self.rustc_sysroot,
            Var::Home => &self.home,
            Var::Tmpdir => &self.tmpdir,
            Var::Workspace => &self.workspace,
        }
        .as_deref()?;
        if !value.starts_with('/') {
            return None;
        }
        let trimmed = value.trim_end_matches('/');
        Some(if trimmed.is_empty() { "/" } else { trimmed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for var in Var::ALL {
            assert_eq!(Var::from_name(var.name()), Some(var));
        }
        assert_eq!(Var::from_name("PATH"), None);
        assert_eq!(Var::from_name("home"), None);
    }

    #[test]
    fn values_are_absolute_and_trimmed() {
        let vars = Vars {
            out_dir: Some("/t/out/".into()),
            home: Some("relative/home".into()),
            tmpdir: Some("/".into()),
            workspace: Some(String::new()),
            ..Vars::default()
        };
        assert_eq!(vars.get(Var::OutDir), Some("/t/out"));
        assert_eq!(vars.get(Var::Home), None);
        assert_eq!(vars.get(Var::Tmpdir), Some("/"));
        assert_eq!(vars.get(Var::Workspace), None);
        assert_eq!(vars.get(Var::CargoHome), None);
    }
}
