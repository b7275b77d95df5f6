//! Which findings are errors: the default `--fail-on` list and its parsing.
use std::collections::BTreeSet;

use super::Code;

/// The codes that fail a `ci` run unless `--fail-on` says otherwise: things an honest build
/// script essentially never does. The one list: README's findings table, `--fail-on`'s help and
/// SARIF's default levels follow it (a test checks the first two).
pub const DEFAULT_FAIL_ON: [Code; 17] = [
    Code::UnexpectedNetwork,
    Code::RawSocket,
    Code::AgentSocket,
    Code::SensitiveRead,
    Code::PersistenceWrite,
    Code::FilelessExec,
    Code::ProcessTamper,
    Code::CompatSyscall,
    Code::NamespaceUse,
    Code::DroppedExec,
    Code::SourceTamper,
    Code::ArtifactTamper,
    Code::LinkInjection,
    Code::ProjectRead,
    Code::PrivilegeEscalation,
    Code::MonitorTamper,
    Code::ToolchainChanged,
];

/// Which findings are errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Codes whose findings are errors (fail a `ci` run); the rest are warnings.
    pub fail_on: BTreeSet<Code>,
    /// buildwatch's own process id, when watching live: signals, ptrace and `/proc` reads aimed
    /// at it are `monitor-tamper` (a replay has no monitor to aim at).
    pub monitor_pid: Option<u32>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            fail_on: DEFAULT_FAIL_ON.into_iter().collect(),
            monitor_pid: None,
        }
    }
}

impl PolicyConfig {
    /// Parses `--fail-on`: `all`, or comma-separated codes.
    pub fn parse_fail_on(spec: &str) -> Result<BTreeSet<Code>, String> {
        if spec.trim() == "all" {
            return Ok(Code::ALL
                .into_iter()
                .filter(|c| *c != Code::UnusedAllow)
                .collect());
        }
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                Code::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
                    format!(
                        "unknown finding code `{name}`; known codes: {}, or `all`",
                        known.join(", ")
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's findings table says, per code, whether it fails `ci` by default.
    #[test]
    fn readme_findings_table_matches_the_default() {
        let readme = include_str!("../../../README.md");
        let mut said = BTreeSet::new();
        let mut documented = BTreeSet::new();
        for line in readme.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | `code` [/ `code`] | yes/no/exit 4 | triggered by |
            if cells.len() < 4 || !cells[1].starts_with('`') {
                continue;
            }
            let codes: Vec<Code> = cells[1]
                .split('/')
                .filter_map(|c| Code::from_name(c.trim().trim_matches('`')))
                .collect();
            if codes.is_empty() {
                continue;
            }
            documented.extend(codes.iter().copied());
            if cells[2] == "yes" {
                said.extend(codes);
            }
        }
        let undocumented: Vec<Code> = Code::ALL
            .into_iter()
            .filter(|c| !documented.contains(c))
            .collect();
        assert!(
            undocumented.is_empty(),
            "codes missing from README's findings table: {undocumented:?}"
        );
        let default: BTreeSet<Code> = DEFAULT_FAIL_ON
            .into_iter()
            .filter(|c| documented.contains(c))
            .collect();
        assert_eq!(said, default, "README's `fails ci by default` column");
    }

    /// `--fail-on`'s help names the default list.
    #[test]
    fn fail_on_help_names_the_default() {
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        let ci = cli.find_subcommand("ci").expect("ci subcommand");
        let arg = ci
            .get_arguments()
            .find(|a| a.get_id() == "fail_on")
            .expect("--fail-on");
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .expect("help")
            .to_string();
        let listed = help
            .split_once("Default:")
            .map(|(_, list)| list)
            .expect("the help says `Default:`");
        let listed: BTreeSet<Code> = listed
            .split(|c: char| c == ',' || c.is_whitespace() || c == '.')
            .filter(|s| !s.is_empty())
            .map(|s| Code::from_name(s).unwrap_or_else(|| panic!("unknown code `{s}` in help")))
            .collect();
        let default: BTreeSet<Code> = DEFAULT_FAIL_ON.into_iter().collect();
        assert_eq!(listed, default, "--fail-on help: {help}");
    }
}
