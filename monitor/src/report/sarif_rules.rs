//! SARIF's rule table: one rule per finding code, with its description, help text, default
//! level and GitHub's security severity (docs/reports.md).
use serde_json::{Value, json};

use super::{Code, DEFAULT_FAIL_ON};

pub(super) fn rule(code: Code) -> Value {
    let mut properties = json!({
        "tags": if security_severity(code).is_some() { json!(["security", "supply-chain"]) } else { json!(["supply-chain"]) },
        "precision": "high",
        "problem.severity": match default_level(code) {
            "error" => "error",
            "note" => "recommendation",
            _ => "warning",
        },
    });
    if let Some(s) = security_severity(code) {
        properties["security-severity"] = json!(s);
    }
    let description = sentence(code.description());
    json!({
        "id": code.as_str(),
        "name": camel(code),
        "shortDescription": {"text": description},
        "fullDescription": {"text": format!("{description} Reported by buildwatch, which watches what build scripts and proc-macros do while cargo builds.")},
        "defaultConfiguration": {"level": default_level(code)},
        "help": {"text": help(code), "markdown": format!("**{}**: {description}\n\n{}", code.as_str(), help(code))},
        "properties": properties,
    })
}

/// The rule's default level: what the default `--fail-on` makes it (results carry the level of
/// this run's policy). Unused allow entries are housekeeping: notes.
pub(super) fn default_level(code: Code) -> &'static str {
    if DEFAULT_FAIL_ON.contains(&code) {
        "error"
    } else if code == Code::UnusedAllow {
        "note"
    } else {
        "warning"
    }
}

/// GitHub's `security-severity` (7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low): set on the codes
/// that are security findings; the rest (profile housekeeping, monitoring health) have none.
pub(super) fn security_severity(code: Code) -> Option<&'static str> {
    match code {
        Code::SensitiveRead
        | Code::PersistenceWrite
        | Code::FilelessExec
        | Code::ProcessTamper
        | Code::CompatSyscall
        | Code::NamespaceUse
        | Code::AgentSocket
        | Code::DroppedExec
        | Code::SourceTamper
        | Code::ArtifactTamper
        | Code::LinkInjection => Some("8.8"),
        Code::ProjectRead => Some("7.5"),
        Code::PrivilegeEscalation | Code::MonitorTamper | Code::ToolchainChanged => Some("9.0"),
        Code::UnexpectedNetwork | Code::RawSocket => Some("8.0"),
        Code::UnexpectedExec
        | Code::UnexpectedWrite
        | Code::NewBehaviour
        | Code::IoUringUse
        | Code::ProcessOutlivedBuild => Some("5.0"),
        Code::UnexpectedRead => Some("4.0"),
        Code::EventsLost | Code::UnusedAllow => None,
    }
}

pub(super) fn camel(code: Code) -> String {
    code.as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub(super) fn help(code: Code) -> &'static str {
    match code {
        Code::UnexpectedNetwork
        | Code::SensitiveRead
        | Code::PersistenceWrite
        | Code::FilelessExec
        | Code::ProcessTamper
        | Code::CompatSyscall
        | Code::AgentSocket
        | Code::NamespaceUse
        | Code::DroppedExec
        | Code::SourceTamper
        | Code::ArtifactTamper
        | Code::LinkInjection
        | Code::ProjectRead => {
            "Treat as a possible supply-chain attack: inspect the crate version named in the message before running its code again. If the behaviour is legitimate, allow it explicitly in the crate's profile."
        }
        Code::UnexpectedExec
        | Code::UnexpectedRead
        | Code::UnexpectedWrite
        | Code::NewBehaviour
        | Code::IoUringUse => {
            "Check whether the crate is expected to do this; if so, add the item to its profile (buildwatch learn, or accept it in the TUI)."
        }
        Code::EventsLost => "Monitoring was incomplete: rerun, or raise --ring-buffer-size.",
        Code::ProcessOutlivedBuild => {
            "A build should not leave processes behind; find out what the crate started."
        }
        Code::UnusedAllow => "Remove the allow entry if the crate no longer needs it.",
        Code::RawSocket => {
            "Treat as a possible supply-chain attack: a build has no use for hand-built packets, and no profile can allow them. Inspect the crate version named in the message."
        }
        Code::PrivilegeEscalation => {
            "Treat as a possible supply-chain attack: build code that becomes root can switch the monitor off, so nothing after this point is vouched for. Inspect the crate version named in the message; build without sudo rights for the build user, and use --enforce to stop such programs before they run."
        }
        Code::ToolchainChanged => {
            "Treat as a possible compromise of the build machine: the compiler, linker or cargo is not the program learn recorded for this toolchain version. Compare the file with a fresh install of the toolchain (rustup component, the distribution's package) before trusting anything it built; if the change is a legitimate reinstall, run buildwatch learn to record the new digests."
        }
        Code::MonitorTamper => {
            "Treat as a possible supply-chain attack: a build has no business with eBPF, tracing, cgroup control files or buildwatch's process, and no profile can allow it. Inspect the crate version named in the message."
        }
    }
}

/// `text` with a capital first letter and a final full stop.
pub(super) fn sentence(text: &str) -> String {
    let mut c = text.chars();
    let mut s = c
        .next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}
