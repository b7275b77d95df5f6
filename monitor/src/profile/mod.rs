//! Per-crate allow profiles: what a crate's build script and proc-macro may do.
//!
//! One TOML file per crate, `<crate>.toml`, schema 1 (docs/profiles.md describes the format).
//! Profiles fail closed: unknown keys, wrong types and malformed entries are errors pointing at
//! `file:line:col`, never defaults. The pipeline is
//!
//! ```text
//! text ─▶ toml's spanned document ─▶ raw (keys, types) ─▶ validate ─▶ Profile
//!                                                          Profile ─▶ RoleRules::compile(Vars) ─▶ CompiledRules (per event)
//! ```
//!
//! Pure: the only I/O is reading profile files ([`load_dir`]).
// The profile schema is an interface: every public item says what it means.
#![warn(missing_docs)]
mod compile;
mod error;
mod link;
mod load;
mod network;
mod parse;
mod pattern;
mod raw;
mod render;
mod rules;
pub mod sensitive;
mod usage;
mod validate;
mod vars;

#[cfg(test)]
mod tests;

pub use compile::{CompileProblem, CompiledRules};
pub use error::{ErrorKind, Location, PathProblem, ProfileError};
pub use link::LinkPattern;
pub use load::{ProfileMatch, ProfileSet, crate_key, file_for, load_dir};
pub use network::{Endpoint, HostPattern, NetPattern, PortPattern, UnixPattern};
pub use parse::{parse, parse_builtin};
pub use pattern::{ExecPattern, PathPattern};
pub use render::{DocEntry, NotAllowed, ProfileDoc, RoleDoc, render};
pub use rules::{Profile, ProfileSource, RoleRules, Rule, RuleList};
pub use sensitive::{persistence_write, sensitive_read};
pub use usage::{UnusedRule, UsageTracker};
pub use vars::{Var, Vars};
