//! The places of one crate instance: the directories profile variables expand to and the
//! baseline (`crate::baseline`, which judges paths against them) refers to. Attribution fills
//! them in from what it learned about the run.

/// The locations the baseline (and profile variables) refer to, for one crate instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Places {
    /// CARGO_MANIFEST_DIR.
    pub manifest_dir: Option<String>,
    /// OUT_DIR of the crate's build script.
    pub out_dir: Option<String>,
    /// The target directory.
    pub target_dir: Option<String>,
    /// rustc's sysroot.
    pub sysroot: Option<String>,
    /// CARGO_HOME.
    pub cargo_home: Option<String>,
    /// HOME of the user the build runs as.
    pub home: Option<String>,
    /// TMPDIR (default /tmp).
    pub tmpdir: Option<String>,
    /// The workspace root.
    pub workspace: Option<String>,
    /// The crate's build script binary (it may run itself again).
    pub build_script: Option<String>,
}
