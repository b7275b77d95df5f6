//! Path facts about the project being built: its version-control data, its editor and agent
//! configuration, and which crate an entry of cargo's target directory belongs to. Pure string
//! work on absolute, kernel-resolved paths; the policy's tamper and project-read checks use them.
use super::paths::{file_name, is_under};

/// The part of `path` below `dir` (`dir` written without a trailing slash): what
/// `format!("{dir}/{rel}")` would have to equal, without building that string for every
/// candidate (these checks run on every open of the build).
fn below<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// Version-control directories: what `git`, `hg` and `jj` keep the history (and remotes) in.
const VCS_DIRS: [&str; 3] = [".git", ".hg", ".jj"];

/// The directories whose special entries belong to the project: the workspace root and every
/// ancestor of it (a workspace in a subdirectory of a repository has its `.git` above it).
fn project_dirs(workspace: &str) -> impl Iterator<Item = &str> {
    let ws = workspace.trim_end_matches('/');
    std::iter::successors(Some(ws), |d| {
        d.rsplit_once('/')
            .map(|(parent, _)| parent)
            .filter(|p| !p.is_empty())
    })
}

/// When `path` is inside the version-control data of the project (`.git/`, `.hg/`, `.jj/` of
/// the workspace root or of a directory above it): that directory's name.
pub fn vcs_data(path: &str, workspace: &str) -> Option<&'static str> {
    project_dirs(workspace).find_map(|dir| {
        VCS_DIRS
            .into_iter()
            .find(|vcs| below(path, dir).is_some_and(|rel| is_under(rel, vcs)))
    })
}

/// Editor and agent configuration inside a project that makes code run later: VS Code tasks
/// run on folder open, agent settings with hooks and MCP servers, run configurations,
/// instruction files an agent follows. Relative to a project directory.
const PROJECT_EDITOR_FILES: [&str; 14] = [
    ".vscode/tasks.json",
    ".vscode/settings.json",
    ".vscode/launch.json",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".mcp.json",
    ".zed/settings.json",
    ".zed/tasks.json",
    ".idea/workspace.xml",
    ".cursor/mcp.json",
    "CLAUDE.md",
    "AGENTS.md",
    "GEMINI.md",
    ".github/copilot-instructions.md",
];

/// Directories of editor and agent configuration inside a project whose every file counts.
const PROJECT_EDITOR_DIRS: [&str; 5] = [
    ".claude/commands",
    ".claude/agents",
    ".claude/hooks",
    ".idea/runConfigurations",
    ".cursor/rules",
];

/// Whether `path` is editor or agent configuration of the project (the workspace root or a
/// directory above it).
pub fn project_editor_config(path: &str, workspace: &str) -> bool {
    project_dirs(workspace).any(|dir| {
        below(path, dir).is_some_and(|rel| {
            PROJECT_EDITOR_FILES.contains(&rel)
                || PROJECT_EDITOR_DIRS.iter().any(|d| is_under(rel, d))
        })
    })
}

/// Project-level directories that steer the tools working on it (CI workflows, cargo's
/// configuration, editor folders), for the workspace root and the directories above it.
const PROJECT_CONTROL_DIRS: [&str; 7] = [
    ".git", ".hg", ".jj", ".github", ".cargo", ".vscode", ".idea",
];

/// What part of the project `path` is, when it is a file of the project outside the target
/// directory: `Cargo.lock`, `manifest`, `cargo-config`, `vcs`, `ci-config`, `editor`,
/// `build-script` or `source`.
pub fn project_file(path: &str, workspace: &str, target_dir: Option<&str>) -> Option<&'static str> {
    if target_dir.is_some_and(|t| is_under(path, t)) {
        return None;
    }
    // Above the workspace root (a home directory, say), only what still steers this project:
    // the repository, its CI workflows and cargo's configuration files (cargo reads those of
    // every ancestor), not CARGO_HOME's registry or the user's editor folders.
    let ws = workspace.trim_end_matches('/');
    let control = project_dirs(workspace).find_map(|dir| {
        let rel = below(path, dir)?;
        PROJECT_CONTROL_DIRS.into_iter().find(|c| {
            if dir == ws || matches!(*c, ".git" | ".hg" | ".jj" | ".github") {
                is_under(rel, c)
            } else {
                *c == ".cargo" && matches!(rel, ".cargo/config" | ".cargo/config.toml")
            }
        })
    });
    if let Some(c) = control {
        return Some(match c {
            ".git" | ".hg" | ".jj" => "vcs",
            ".github" => "ci-config",
            ".cargo" => "cargo-config",
            _ => "editor",
        });
    }
    if !is_under(path, workspace) || path.trim_end_matches('/') == workspace.trim_end_matches('/') {
        return None;
    }
    Some(match file_name(path) {
        "Cargo.lock" => "Cargo.lock",
        "Cargo.toml" => "manifest",
        "build.rs" => "build-script",
        _ => "source",
    })
}

/// The cargo target-directory entries a crate owns: `deps`, `build`, `.fingerprint`,
/// `incremental` under a profile directory (`<target>/<profile>/` or
/// `<target>/<triple>/<profile>/`).
const TARGET_ENTRIES: [&str; 4] = ["deps", "build", ".fingerprint", "incremental"];

/// When `path` is in a crate's entry of the target directory: (the entry kind, the crate it
/// belongs to as named there, normalized to underscores). Entries are
/// `<name>-<16 hex>[.ext]`, `lib<name>-<16 hex>.<ext>`, or directories so named; anything else
/// (rustc's temporary `rustcXXXXXX` directories, cargo's own files) belongs to no crate.
pub fn target_entry_owner(path: &str, target_dir: &str) -> Option<(&'static str, Vec<String>)> {
    let rel = path
        .strip_prefix(target_dir.trim_end_matches('/'))?
        .strip_prefix('/')?;
    let parts: Vec<&str> = rel.split('/').collect();
    // <profile>/<entry>/<name> or <triple>/<profile>/<entry>/<name>.
    let at = parts
        .iter()
        .take(3)
        .position(|p| TARGET_ENTRIES.contains(p))
        .filter(|&i| i >= 1)?;
    let kind = TARGET_ENTRIES.into_iter().find(|e| *e == parts[at])?;
    let name = *parts.get(at + 1)?;
    let stem = name.split('.').next().unwrap_or(name);
    let (owner, hash) = stem.rsplit_once('-')?;
    if hash.len() != 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || owner.is_empty() {
        return None;
    }
    let mut owners = vec![normalize(owner)];
    if let Some(bare) = owner.strip_prefix("lib").filter(|b| !b.is_empty()) {
        owners.push(normalize(bare));
    }
    Some((kind, owners))
}

/// A crate or package name as cargo spells it in the target directory (`-` → `_`).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcs_of_the_project_and_above() {
        assert_eq!(vcs_data("/w/.git/config", "/w"), Some(".git"));
        assert_eq!(vcs_data("/repo/.git/HEAD", "/repo/rust"), Some(".git"));
        assert_eq!(vcs_data("/w/.jj/repo/store", "/w"), Some(".jj"));
        assert_eq!(vcs_data("/w/src/.git", "/w/src/x"), Some(".git"));
        assert_eq!(vcs_data("/w/src/lib.rs", "/w"), None);
        assert_eq!(vcs_data("/other/.git/config", "/w"), None);
        assert_eq!(vcs_data("/w/.github/workflows/ci.yml", "/w"), None);
        // Whole components only; a trailing slash and the root as workspace.
        assert_eq!(vcs_data("/w/.gitx/config", "/w"), None);
        assert_eq!(vcs_data("/wx/.git/config", "/w"), None);
        assert_eq!(vcs_data("/w/.git", "/w/"), Some(".git"));
        assert_eq!(vcs_data("/.git/config", "/"), Some(".git"));
    }

    #[test]
    fn project_files() {
        let t = Some("/w/target");
        assert_eq!(project_file("/w/app/src/main.rs", "/w", t), Some("source"));
        assert_eq!(project_file("/w/Cargo.lock", "/w", t), Some("Cargo.lock"));
        assert_eq!(project_file("/w/app/Cargo.toml", "/w", t), Some("manifest"));
        assert_eq!(
            project_file("/w/app/build.rs", "/w", t),
            Some("build-script")
        );
        assert_eq!(
            project_file("/w/.cargo/config.toml", "/w", t),
            Some("cargo-config")
        );
        assert_eq!(
            project_file("/w/.github/workflows/ci.yml", "/w", t),
            Some("ci-config")
        );
        assert_eq!(project_file("/r/.git/hooks/x", "/r/w", t), Some("vcs"));
        assert_eq!(project_file("/w/.idea/misc.xml", "/w", t), Some("editor"));
        assert_eq!(project_file("/w/target/debug/build/x/out/a", "/w", t), None);
        assert_eq!(project_file("/elsewhere/x", "/w", t), None);
        // A directory above the workspace holds no project files but its control directories.
        assert_eq!(project_file("/r/README.md", "/r/w", t), None);
        assert_eq!(
            project_file("/h/.cargo/registry/src/i/a-1/x", "/h/w", t),
            None
        );
        assert_eq!(
            project_file("/h/.cargo/config.toml", "/h/w", t),
            Some("cargo-config")
        );
        assert_eq!(project_file("/h/.vscode/x", "/h/w", t), None);
        assert_eq!(
            project_file("/h/.cargo/config", "/h/w", t),
            Some("cargo-config")
        );
        assert_eq!(project_file("/h/.cargo/config.toml.bak", "/h/w", t), None);
        assert_eq!(project_file("/w/.cargo/x", "/w", t), Some("cargo-config"));
    }

    #[test]
    fn editor_config() {
        assert!(project_editor_config("/w/.vscode/tasks.json", "/w"));
        assert!(project_editor_config("/r/.claude/settings.json", "/r/w"));
        assert!(project_editor_config("/w/.claude/commands/x.md", "/w"));
        assert!(project_editor_config("/w/CLAUDE.md", "/w"));
        assert!(!project_editor_config("/w/.vscode/extensions.json", "/w"));
        assert!(!project_editor_config("/w/src/CLAUDE.md", "/w"));
        assert!(!project_editor_config("/w/.vscode/tasks.json.bak", "/w"));
        assert!(!project_editor_config("/w2/CLAUDE.md", "/w"));
    }

    #[test]
    fn target_entries() {
        let t = "/w/target";
        assert_eq!(
            target_entry_owner(
                "/w/target/debug/build/libz-sys-0123456789abcdef/out/libz.a",
                t
            ),
            Some(("build", vec!["libz_sys".to_owned(), "z_sys".to_owned()]))
        );
        assert_eq!(
            target_entry_owner("/w/target/release/deps/libserde-0123456789abcdef.rlib", t),
            Some(("deps", vec!["libserde".to_owned(), "serde".to_owned()]))
        );
        assert_eq!(
            target_entry_owner(
                "/w/target/x86_64-unknown-linux-gnu/debug/incremental/app-0123456789abcdef/s-x/a.o",
                t
            ),
            Some(("incremental", vec!["app".to_owned()]))
        );
        assert_eq!(
            target_entry_owner("/w/target/debug/.fingerprint/a-b-0123456789abcdef/lib-a", t),
            Some((".fingerprint", vec!["a_b".to_owned()]))
        );
        assert_eq!(
            target_entry_owner("/w/target/debug/deps/rustcAbCdEf/symbols.o", t),
            None
        );
        assert_eq!(target_entry_owner("/w/target/debug/app", t), None);
        assert_eq!(target_entry_owner("/w/target/debug/build", t), None);
    }
}
