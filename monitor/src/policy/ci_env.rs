//! CI channels: the files through which a step of a CI job changes every later step. On GitHub
//! Actions a line appended to the file behind `$GITHUB_ENV` sets a variable (`LD_PRELOAD`,
//! `RUSTFLAGS`) for the rest of the job, `$GITHUB_PATH` puts a directory first in `PATH`,
//! `$GITHUB_OUTPUT` and `$GITHUB_STATE` feed later steps and actions' post steps, and
//! `$GITHUB_STEP_SUMMARY` is rendered on the run page. The runner's tool cache is what
//! `setup-*` actions take tools from. A build has no use for any of them: writing there is
//! persistence (category `ci-channel`).
//!
//! Pure: the paths are read once from the watched command's environment (it inherits
//! buildwatch's), the decision is a lookup.
use crate::model::paths;

/// The variables naming GitHub Actions' file commands.
const FILE_COMMANDS: [&str; 5] = [
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_OUTPUT",
    "GITHUB_STATE",
    "GITHUB_STEP_SUMMARY",
];

/// The CI channels of this run's environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CiChannels {
    /// The files behind the file-command variables.
    files: Vec<String>,
    /// Directories whose every file is a channel: the file commands' own directory (the runner
    /// creates a fresh file there for every step) and the tool cache.
    dirs: Vec<String>,
}

impl CiChannels {
    /// From this process's environment (the build inherits it).
    pub fn from_process() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From variables looked up by `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut out = Self::default();
        for name in FILE_COMMANDS {
            let Some(file) = var(name).filter(|f| f.starts_with('/')) else {
                continue;
            };
            if let Some((dir, _)) = file.rsplit_once('/')
                && paths::file_name(dir) == "_runner_file_commands"
                && !out.dirs.iter().any(|d| d == dir)
            {
                out.dirs.push(dir.to_owned());
            }
            out.files.push(file);
        }
        if let Some(cache) = var("RUNNER_TOOL_CACHE").filter(|d| d.starts_with('/')) {
            out.dirs.push(cache);
        }
        out
    }

    /// The channel files and the directories whose every file is one.
    pub fn places(&self) -> impl Iterator<Item = &str> {
        self.files.iter().chain(&self.dirs).map(String::as_str)
    }

    /// `ci-channel` when writing `path` reaches a later step of the job.
    pub fn persistence_write(&self, path: &str) -> Option<&'static str> {
        (self.files.iter().any(|f| f == path) || self.dirs.iter().any(|d| paths::is_under(path, d)))
            .then_some("ci-channel")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_file_commands() {
        let ci = CiChannels::from_vars(|name| match name {
            "GITHUB_ENV" => Some("/home/runner/work/_temp/_runner_file_commands/set_env_1".into()),
            "GITHUB_PATH" => Some("/tmp/bw/github_path".into()),
            "RUNNER_TOOL_CACHE" => Some("/opt/hostedtoolcache".into()),
            _ => None,
        });
        assert_eq!(
            ci.persistence_write("/home/runner/work/_temp/_runner_file_commands/set_env_1"),
            Some("ci-channel")
        );
        assert_eq!(
            ci.persistence_write("/home/runner/work/_temp/_runner_file_commands/add_path_2"),
            Some("ci-channel")
        );
        assert_eq!(
            ci.persistence_write("/tmp/bw/github_path"),
            Some("ci-channel")
        );
        assert_eq!(
            ci.persistence_write("/opt/hostedtoolcache/node/x"),
            Some("ci-channel")
        );
        assert_eq!(ci.persistence_write("/tmp/bw/other"), None);
        assert_eq!(
            CiChannels::from_vars(|_| None).persistence_write("/tmp/x"),
            None
        );
    }
}
