//! The actor of an event: who answers for it.
use serde::{Deserialize, Serialize};

/// The role of the process (or of the code inside it) that did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// cargo itself (registry and git network included).
    Cargo,
    /// rustc compiling a crate.
    Rustc,
    /// A crate's build script.
    BuildScript,
    /// A proc-macro running inside rustc.
    ProcMacro,
    /// A program spawned by a build script or proc-macro, acting for its crate.
    Tool,
    /// The watched command itself or another process outside cargo's roles.
    Command,
}

impl Role {
    /// The role's name as written in JSON and profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cargo => "cargo",
            Role::Rustc => "rustc",
            Role::BuildScript => "build-script",
            Role::ProcMacro => "proc-macro",
            Role::Tool => "tool",
            Role::Command => "command",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who answers for an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The role.
    pub role: Role,
    /// The crate responsible, when known.
    #[serde(rename = "crate", default, skip_serializing_if = "Option::is_none")]
    pub krate: Option<String>,
    /// Its version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
