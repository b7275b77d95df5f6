//! The actor of an event: who answers for it.
use serde::{Deserialize, Serialize};

/// The role of the process (or of the code inside it) that did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// cargo itself (registry and git network included).
    Cargo,
    /// rustc compiling a crate (and the linker it runs).
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

/// A crate (package) and, when known, its version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CrateRef {
    /// Package name as cargo knows it (`proc-macro2`, `serde_derive`).
    pub name: String,
    /// Package version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl CrateRef {
    /// A crate with a known version.
    pub fn new(name: impl Into<String>, version: Option<impl Into<String>>) -> Self {
        Self {
            name: name.into(),
            version: version.map(Into::into),
        }
    }
}

impl std::fmt::Display for CrateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{} {v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Who answers for an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The role.
    pub role: Role,
    /// The crate responsible, when known (for a proc-macro with several candidates: the most
    /// likely one).
    #[serde(rename = "crate", default, skip_serializing_if = "Option::is_none")]
    pub krate: Option<String>,
    /// Its version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// For a `tool`: the role it acts for (`build-script` or `proc-macro`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Role>,
    /// The processes from the responsible one down to the one that acted, by image name
    /// (`build-script-build`, `sh`, `cc`, `as`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// For a proc-macro that cannot be told apart from others loaded by the same rustc: every
    /// candidate, most likely first (`crate`/`version` are the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<CrateRef>,
    /// False when the crate is a guess among `candidates`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub exact: bool,
    /// For a proc-macro (or its tools): the crate rustc was compiling when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiling: Option<CrateRef>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Actor {
    /// An actor with just a role.
    pub fn of(role: Role) -> Self {
        Self {
            role,
            krate: None,
            version: None,
            via: None,
            chain: Vec::new(),
            candidates: Vec::new(),
            exact: true,
            compiling: None,
        }
    }

    /// An actor for a role and a crate.
    pub fn for_crate(role: Role, krate: &CrateRef) -> Self {
        Self {
            krate: Some(krate.name.clone()),
            version: krate.version.clone(),
            ..Self::of(role)
        }
    }

    /// The role whose rules apply: a tool is checked as the build script or proc-macro it acts
    /// for.
    pub fn policy_role(&self) -> Role {
        match (self.role, self.via) {
            (Role::Tool, Some(via)) => via,
            (role, _) => role,
        }
    }

    /// The crate, as a [`CrateRef`].
    pub fn crate_ref(&self) -> Option<CrateRef> {
        self.krate.as_ref().map(|name| CrateRef {
            name: name.clone(),
            version: self.version.clone(),
        })
    }

    /// A short human description: `serde_derive 1.0.219 proc-macro`,
    /// `cc (tool of libz-sys 1.1.20 build-script)`.
    pub fn describe(&self) -> String {
        let krate = self.crate_ref().map(|c| c.to_string());
        let mut s = match (self.role, &krate, self.via) {
            (Role::Tool, Some(k), Some(via)) => {
                let tool = self.chain.last().map(String::as_str).unwrap_or("tool");
                format!("{tool} (run by the {via} of {k})")
            }
            (role, Some(k), _) => format!("{k} {role}"),
            (role, None, _) => role.to_string(),
        };
        if !self.exact && self.candidates.len() > 1 {
            let others: Vec<String> = self
                .candidates
                .iter()
                .skip(1)
                .map(ToString::to_string)
                .collect();
            s.push_str(&format!(" (or {})", others.join(", ")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions() {
        let c = CrateRef::new("serde_derive", Some("1.0.219"));
        assert_eq!(
            Actor::for_crate(Role::ProcMacro, &c).describe(),
            "serde_derive 1.0.219 proc-macro"
        );
        let mut tool = Actor::for_crate(Role::Tool, &CrateRef::new("libz-sys", Some("1.1.20")));
        tool.via = Some(Role::BuildScript);
        tool.chain = vec!["build-script-build".into(), "cc".into()];
        assert_eq!(
            tool.describe(),
            "cc (run by the build-script of libz-sys 1.1.20)"
        );
        assert_eq!(tool.policy_role(), Role::BuildScript);
        let mut pm = Actor::for_crate(Role::ProcMacro, &c);
        pm.exact = false;
        pm.candidates = vec![c.clone(), CrateRef::new("thiserror-impl", Some("2.0.0"))];
        assert_eq!(
            pm.describe(),
            "serde_derive 1.0.219 proc-macro (or thiserror-impl 2.0.0)"
        );
    }

    #[test]
    fn json_shape() {
        let a = Actor::for_crate(Role::BuildScript, &CrateRef::new("foo", Some("0.1.0")));
        assert_eq!(
            serde_json::to_string(&a).expect("json"),
            r#"{"role":"build-script","crate":"foo","version":"0.1.0"}"#
        );
        let back: Actor = serde_json::from_str(r#"{"role":"cargo"}"#).expect("parse");
        assert_eq!(back, Actor::of(Role::Cargo));
    }
}
