//! What an event is: one pure decision that checking ([`super::Policy`]), learning
//! ([`crate::learn::Learner`]) and enforcing all take from here, so that a profile rule cannot
//! silence a finding in one path and not in another.
//!
//! [`classify`] turns an attributed event into a [`Verdict`] (the finding code, the profile list
//! that may allow it, if any, its subject and a sentence saying what happened), or `None` for what
//! the built-in baseline allows. One file per event family; a new detection goes in its family's
//! file (or a new one) and in the match of [`classify`].
mod dropped;
mod exec;
mod link;
mod network;
mod open;
mod process;
mod project;
mod tamper;
mod toolchain;

#[cfg(test)]
mod tests;

use super::{AgentEnv, CiChannels, Code};
use crate::{
    attribution::Attributor,
    model::{Actor, Event, EventKind, KillClass, Killed, Places, Role},
    profile::{CompiledRules, Endpoint, RuleList},
};

pub use link::link_injection;
pub use network::endpoint;

/// Which profile list may allow a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allow {
    /// An entry of this list of the crate's role table allows it.
    List(RuleList),
    /// No profile can allow it (programs run from memory, another process's memory, hand-built
    /// packets, refusals by `--enforce`, ...): it is always a finding.
    Never,
}

/// What an event is, when it is more than the baseline allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The finding it is, unless a profile allows it.
    pub code: Code,
    /// Which list may allow it.
    pub allow: Allow,
    /// What the finding is about (findings with the same code and subject merge): a program, a
    /// path, an endpoint.
    pub subject: String,
    /// What happened, in a sentence.
    pub detail: String,
    /// Who answers for it when that is not the acting process's crate: the crate whose code
    /// wrote a dropped program answers for its run, whoever runs it.
    pub blame: Option<Actor>,
}

/// What the classifier may know of the run beyond the acting crate's own places.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    /// The agent sockets the environment names (SSH_AUTH_SOCK and co.).
    pub agents: &'a AgentEnv,
    /// The CI job's channels to later steps (GITHUB_ENV and co.).
    pub ci: &'a CiChannels,
    /// The run's attribution: who wrote which file, other crates' places, workspace
    /// membership, which crate a rustc compiles. Without it (unit tests of one event) the
    /// checks that need them are left out.
    pub attribution: Option<&'a Attributor>,
    /// buildwatch's own process id, when watching live (signals, ptrace and `/proc` opens aimed
    /// at it are `monitor-tamper`).
    pub monitor_pid: Option<u32>,
}

impl Verdict {
    fn new(
        code: Code,
        allow: Allow,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            code,
            allow,
            subject: subject.into(),
            detail: detail.into(),
            blame: None,
        }
    }

    /// The list that may allow it (`None`: no profile can).
    pub fn list(&self) -> Option<RuleList> {
        match self.allow {
            Allow::List(list) => Some(list),
            Allow::Never => None,
        }
    }

    fn never(self) -> Self {
        Self {
            allow: Allow::Never,
            ..self
        }
    }
}

/// The codes rustc (and the linker it runs) is never seen doing itself: when one happens in
/// rustc's process it is code rustc loaded (a proc-macro the sensor could not name, a planted
/// linker). rustc has no profile, so no list allows them there.
const RUSTC_NEVER_DOES: [Code; 7] = [
    Code::SensitiveRead,
    Code::PersistenceWrite,
    Code::UnexpectedNetwork,
    Code::AgentSocket,
    Code::RawSocket,
    // rustc and its linker write only the entries of the crate they compile.
    Code::SourceTamper,
    Code::ArtifactTamper,
];

/// What `event` is for an actor in `role` (the role whose rules apply: see
/// [`crate::model::Actor::policy_role`]), judged against the `places` of its crate instance and
/// what is known of the `run`. `None`: the baseline allows it, or the role is not checked for
/// it. (A program the run itself wrote is judged first, for whoever runs it: [`dropped_exec`].)
///
/// - build scripts and proc-macros (and what they run): every verdict;
/// - rustc: only what rustc never does itself ([`RUSTC_NEVER_DOES`]), never allowed;
/// - cargo, the command, and processes attribution knows nothing of: only refusals by
///   `--enforce` (a refusal is always reported, whoever was refused).
pub fn classify(event: &Event, role: Role, places: &Places, run: &Run<'_>) -> Option<Verdict> {
    // Privilege gains and reaches for the monitor itself: whoever in the build does it, and no
    // profile allows either.
    if let Some(verdict) = guard(event, run) {
        return Some(verdict);
    }
    // A kill by --enforce is reported whoever was killed (the kernel judged it already).
    if let EventKind::Killed(k) = &event.kind {
        return Some(killed_verdict(k));
    }
    let verdict = match &event.kind {
        EventKind::Exec(x) => exec::exec(x, places).filter(|v| {
            // Compile-and-run probes the toolchain wrote in the crate's own OUT_DIR (cc-rs,
            // autocfg, autoconf's conftest) are baseline for every crate.
            !(v.code == Code::UnexpectedExec
                && run
                    .attribution
                    .is_some_and(|a| dropped::is_toolchain_probe(x, a.writes(), out_dir_of(a))))
        }),
        EventKind::Open(o) => open::open(o, event, places, run),
        EventKind::Connect(c) => network::connect(c, run.agents),
        EventKind::Socket(s) => Some(network::socket(s)),
        EventKind::Dns(d) => Some(network::dns(d)),
        EventKind::Tamper(t) => process::tamper(t),
        EventKind::IoUring(u) => Some(process::io_uring(u)),
        EventKind::CompatSyscall(c) => Some(process::compat(c)),
        EventKind::Fork(_)
        | EventKind::Exit(_)
        | EventKind::Lost(_)
        | EventKind::MacroLib(_)
        | EventKind::Killed(_) => None,
    }?;
    match role {
        Role::BuildScript | Role::ProcMacro => Some(verdict),
        Role::Rustc => RUSTC_NEVER_DOES
            .contains(&verdict.code)
            .then(|| verdict.never())
            .or_else(|| foreign_link_program(event, places, run)),
        Role::Cargo | Role::Command | Role::Tool => {
            network::is_refusal(&event.kind).then(|| verdict.never())
        }
    }
}

/// The link is judged, not trusted: a program run in rustc's linker step that is neither the
/// toolchain (by its executable's real path) nor the configured `-C linker` is an
/// `unexpected-exec` on the crate being linked (see [`toolchain`]); rustc has no profile to
/// allow it.
fn foreign_link_program(event: &Event, places: &Places, run: &Run<'_>) -> Option<Verdict> {
    let EventKind::Exec(exec) = &event.kind else {
        return None;
    };
    let linker = run
        .attribution
        .and_then(|a| a.rustc_info(event.pid))
        .and_then(|r| r.linker.as_deref());
    toolchain::foreign_link_program(exec, places.sysroot.as_deref(), linker).then(|| {
        Verdict::new(
            Code::UnexpectedExec,
            Allow::Never,
            exec.image(),
            format!(
                "rustc's linker step ran {}, which is not part of the toolchain",
                exec::command_line(exec)
            ),
        )
    })
}

/// `privilege-escalation` and `monitor-tamper` (see [`super::privilege`] and
/// [`super::monitor_tamper`]).
fn guard(event: &Event, run: &Run<'_>) -> Option<Verdict> {
    let (code, (subject, detail)) = match &event.kind {
        EventKind::Tamper(t) => {
            let program = event
                .actor
                .as_ref()
                .and_then(|a| a.chain.last())
                .map_or(event.comm.as_str(), String::as_str);
            if let Some(found) = super::privilege::verdict(t, program) {
                (Code::PrivilegeEscalation, found)
            } else {
                (
                    Code::MonitorTamper,
                    super::monitor_tamper::tamper_verdict(t, run.monitor_pid)?,
                )
            }
        }
        EventKind::Open(open) => (
            Code::MonitorTamper,
            super::monitor_tamper::open_verdict(open, run.monitor_pid, &attempt(open.result))?,
        ),
        _ => return None,
    };
    Some(Verdict::new(code, Allow::Never, subject, detail))
}

/// `dropped-exec`: `event` ran a program the crates' code wrote during this run (see
/// [`dropped`]), whoever runs it: the verdict blames the crate that wrote it. Needs the run's
/// attribution (its table of writes).
pub fn dropped_exec(event: &Event, run: &Run<'_>) -> Option<Verdict> {
    let (EventKind::Exec(exec), Some(attribution)) = (&event.kind, run.attribution) else {
        return None;
    };
    let found = dropped::dropped_exec(exec, attribution.writes(), out_dir_of(attribution))?;
    let writer = found.writer.actor.clone();
    writer.crate_ref()?;
    // Named when someone else runs it (a shell, the linker, cargo).
    let runner = event.actor.as_ref().and_then(|actor| {
        (actor.crate_ref() != writer.crate_ref() || actor.policy_role() != writer.policy_role())
            .then(|| actor.describe())
    });
    Some(Verdict {
        detail: found.detail(runner.as_deref()),
        blame: Some(writer),
        ..Verdict::new(
            Code::DroppedExec,
            Allow::List(RuleList::Exec),
            found.path.clone(),
            String::new(),
        )
    })
}

/// A crate's OUT_DIR, as attribution knows it.
fn out_dir_of(attribution: &Attributor) -> impl Fn(&crate::model::CrateRef) -> Option<String> {
    |k| attribution.places_for(Some(k)).out_dir
}

/// Which entry of `rules` (an index into the verdict's list) allows `verdict` on `event`, if
/// any. A [`Allow::Never`] verdict is allowed by nothing, whatever the profile says.
pub fn allowed_by(verdict: &Verdict, event: &Event, rules: &CompiledRules) -> Option<usize> {
    let Allow::List(list) = verdict.allow else {
        return None;
    };
    let subject = verdict.subject.as_str();
    match (list, &event.kind) {
        // A system program may be named either way (`sh` or `dash`, `cc` or `gcc-12`); anything
        // else only as requested.
        (RuleList::Exec, EventKind::Exec(exec)) => rules.exec(subject).or_else(|| {
            crate::baseline::is_system_program(subject)
                .then(|| rules.exec(exec.image()))
                .flatten()
        }),
        (RuleList::Exec, _) => rules.exec(subject),
        (RuleList::Read, _) => rules.read(subject),
        (RuleList::Write, _) => rules.write(subject),
        (RuleList::SensitiveRead, _) => rules.sensitive_read(subject),
        (RuleList::Network, EventKind::Connect(c)) => rules.network(&endpoint(c)),
        // A lookup is allowed by an entry for the name, or for the resolver itself.
        (RuleList::Network, EventKind::Dns(d)) => rules
            .network(&Endpoint::Lookup { name: &d.name })
            .or_else(|| {
                let addr = d.server.parse().ok()?;
                rules.network(&Endpoint::Inet {
                    addr,
                    port: d.port,
                    name: None,
                })
            }),
        (RuleList::Network, _) => None,
        (RuleList::Link, _) => rules.link(subject),
    }
}

/// The finding code a kill is for: the code `ci` fails on that made it a kill.
pub fn kill_code(class: KillClass) -> Option<Code> {
    Some(match class {
        KillClass::Secret => Code::SensitiveRead,
        KillClass::Persistence => Code::PersistenceWrite,
        KillClass::FilelessExec => Code::FilelessExec,
        KillClass::Tamper => Code::ProcessTamper,
        KillClass::Namespace => Code::NamespaceUse,
        KillClass::Compat => Code::CompatSyscall,
        KillClass::Unknown => return None,
    })
}

/// A kill whose act made no finding of its own: the finding is the kill's, under the code
/// of its class, never allowed (the kernel found no allowance).
fn killed_verdict(k: &Killed) -> Verdict {
    let code = kill_code(k.class).unwrap_or(Code::ProcessTamper);
    let subject = match (&k.object, &k.syscall) {
        (Some(o), _) => o.split(" (").next().unwrap_or(o).to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => k.class.to_string(),
    };
    Verdict::new(code, Allow::Never, subject, k.describe())
}

/// ` (attempt failed: ENOENT)` for a failed call, else nothing.
fn attempt(result: i64) -> String {
    match crate::decode::errno_name(result) {
        Some(e) => format!(" (attempt failed: {e})"),
        None => String::new(),
    }
}
