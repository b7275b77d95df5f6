//! Checking: every attributed event against the built-in baseline and the crate's profile.
//!
//! Pure: events and profiles in, findings out. The same code serves watching, `ci`, `learn`
//! (which records what it would have flagged) and `replay`.
mod agent;
mod ci_env;
mod dropped;
mod finding;
mod project;
mod tamper;
mod toolchain;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use agent::{Agent, AgentEnv};
pub use ci_env::CiChannels;
pub use finding::{Code, Finding, ProcessRef, Severity};

use crate::{
    attribution::{Actor, Attributor, CrateRef, Role},
    baseline::Places,
    model::{
        ConnectSyscall, Event, EventKind, IoUringOp, NamespaceCall, OpenSyscall, ProcessCall,
        SocketFamily, TamperSyscall,
    },
    profile::{CompiledRules, Endpoint, Profile, ProfileSet, RuleList, UsageTracker, Vars},
};

/// The codes that fail a `ci` run unless `--fail-on` says otherwise: things an honest build
/// script essentially never does.
pub const DEFAULT_FAIL_ON: [Code; 13] = [
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
    Code::ProjectRead,
];

/// Which findings are errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Codes whose findings are errors (fail a `ci` run); the rest are warnings.
    pub fail_on: BTreeSet<Code>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            fail_on: DEFAULT_FAIL_ON.into_iter().collect(),
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

/// A crate instance in a role.
type Key = (CrateRef, Role);

/// The rules that apply to one crate instance in one role.
struct Applied {
    /// Index into `profiles` of the profile, if the crate has one.
    profile: Option<usize>,
    /// The profile covers this version (false: it was written for other versions).
    covers: bool,
    rules: Option<CompiledRules>,
    places: Places,
}

/// Appended to the detail of a finding on a crate that has no profile.
const NO_PROFILE: &str = " (no profile)";

/// The checker of one run.
pub struct Policy {
    profiles: Vec<Profile>,
    by_name: HashMap<String, usize>,
    config: PolicyConfig,
    applied: HashMap<Key, Applied>,
    usage: HashMap<usize, UsageTracker>,
    findings: BTreeMap<(Code, Option<CrateRef>, Option<Role>, String), Finding>,
    lost: u64,
    /// The agent sockets the environment names (SSH_AUTH_SOCK and co.).
    agents: AgentEnv,
    /// The CI job's channels to later steps (GITHUB_ENV and co.) the environment names.
    ci: CiChannels,
    /// Findings reported so far (merged or not): tells whether checking an event reported one.
    reported: u64,
}

impl Policy {
    /// A checker with these profiles (user profiles win over shipped ones; see [`ProfileSet`]).
    pub fn new(profiles: &ProfileSet, config: PolicyConfig) -> Self {
        let profiles: Vec<Profile> = profiles.iter().cloned().collect();
        let by_name = profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (crate::profile::crate_key(&p.krate), i))
            .collect();
        Self {
            profiles,
            by_name,
            config,
            applied: HashMap::new(),
            usage: HashMap::new(),
            findings: BTreeMap::new(),
            lost: 0,
            agents: AgentEnv::from_process(),
            ci: CiChannels::from_process(),
            reported: 0,
        }
    }

    /// The policy configuration.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Findings so far (merged), errors first.
    pub fn findings(&self) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = self.findings.values().collect();
        v.sort_by_key(|f| (f.severity, f.code, f.time_ns));
        v
    }

    /// Checks one attributed event.
    pub fn check(&mut self, event: &Event, attributor: &Attributor) {
        if let EventKind::Lost(lost) = &event.kind {
            self.lost += lost.count;
            let detail = format!("{} events lost ({})", self.lost, lost.reason);
            self.report(
                Code::EventsLost,
                None,
                None,
                None,
                None,
                detail,
                "lost".to_owned(),
                event,
                &[],
            );
            if let Some(f) =
                self.findings
                    .get_mut(&(Code::EventsLost, None, None, "lost".to_owned()))
            {
                f.count = self.lost;
            }
            return;
        }
        let Some(actor) = event.actor.as_ref() else {
            // A process attribution never heard of: a refusal is still a finding.
            if let EventKind::Connect(c) = &event.kind
                && c.refused
            {
                let ep = c.endpoint();
                let detail = format!("{} {ep} (refused by --enforce)", connect_verb(c));
                self.report(
                    Code::UnexpectedNetwork,
                    None,
                    None,
                    None,
                    None,
                    detail,
                    ep,
                    event,
                    &[],
                );
            }
            return;
        };
        if let EventKind::Exec(exec) = &event.kind
            && self.check_dropped(event, exec, actor, attributor)
        {
            return;
        }
        let role = actor.policy_role();
        let before = self.reported;
        match role {
            // Proc-macros the sensor could not tell apart: the strictest of their profiles
            // applies (the first candidate, most likely first, whose profile does not allow it
            // gets the finding, which lists every candidate and says it is not exact).
            Role::ProcMacro if actor.candidates.len() > 1 => {
                for c in &actor.candidates {
                    let mut one = actor.clone();
                    one.krate = Some(c.name.clone());
                    one.version = c.version.clone();
                    self.check_crate(event, &one, role, attributor);
                    if self.reported != before {
                        break;
                    }
                }
            }
            Role::BuildScript | Role::ProcMacro => self.check_crate(event, actor, role, attributor),
            // rustc itself never reads secrets or plants persistence: if that happens there, an
            // unidentified proc-macro did it.
            Role::Rustc => self.check_universal(event, actor, role, attributor),
            Role::Cargo | Role::Command | Role::Tool => {}
        }
        // Refusals, and network in rustc's processes, whatever else was decided.
        if self.reported == before
            && let Some((code, list, subject, detail)) = always_reported(event, role)
        {
            self.report(
                code,
                Some(list),
                actor.crate_ref().as_ref(),
                Some(role),
                None,
                detail,
                subject,
                event,
                &actor.candidates,
            );
        }
    }

    /// Sensitive reads and persistence writes, for roles without profiles.
    fn check_universal(
        &mut self,
        event: &Event,
        actor: &Actor,
        role: Role,
        attributor: &Attributor,
    ) {
        let Some(krate) = actor.crate_ref() else {
            return;
        };
        let places = attributor.places_for(Some(&krate));
        if let EventKind::Exec(exec) = &event.kind
            && toolchain::foreign_link_program(
                exec,
                places.sysroot.as_deref(),
                attributor
                    .rustc_info(event.pid)
                    .and_then(|r| r.linker.as_deref()),
            )
        {
            self.report(
                Code::UnexpectedExec,
                Some(RuleList::Exec),
                Some(&krate),
                Some(role),
                None,
                format!(
                    "rustc's linker step ran {}, which is not part of the toolchain",
                    command_line(exec)
                ),
                exec.image().to_owned(),
                event,
                &actor.candidates,
            );
        }
        if let EventKind::Open(open) = &event.kind {
            if !open.writes()
                && let Some(kind) = places.sensitive_read(&open.path)
            {
                let detail = format!("read {} ({kind}){}", open.path, attempt(open.result));
                self.report(
                    Code::SensitiveRead,
                    Some(RuleList::SensitiveRead),
                    Some(&krate),
                    Some(role),
                    None,
                    detail,
                    open.path.clone(),
                    event,
                    &actor.candidates,
                );
            }
            if open.writes()
                && let Some(kind) = places
                    .persistence_write(&open.path)
                    .or_else(|| self.ci.persistence_write(&open.path))
            {
                let detail = format!("wrote {} ({kind}){}", open.path, attempt(open.result));
                self.report(
                    Code::PersistenceWrite,
                    Some(RuleList::Write),
                    Some(&krate),
                    Some(role),
                    None,
                    detail,
                    open.path.clone(),
                    event,
                    &actor.candidates,
                );
            } else if open.writes()
                && open.result >= 0
                && let Some(t) = tamper::write_tamper(
                    &open.path,
                    &places,
                    &krate,
                    attributor.rustc_crate_name(event.pid),
                )
            {
                // rustc and its linker write only the entries of the crate they compile.
                self.report(
                    t.code,
                    Some(RuleList::Write),
                    Some(&krate),
                    Some(role),
                    None,
                    t.detail(write_verb(open), &open.path),
                    open.path.clone(),
                    event,
                    &actor.candidates,
                );
            }
        }
    }

    /// `dropped-exec`: reports `exec` when it ran a program the crates' code wrote during the
    /// run (see [`dropped`]), against the crate that wrote it. True when it did (allowed by that
    /// crate's profile or reported): the exec needs no other verdict.
    fn check_dropped(
        &mut self,
        event: &Event,
        exec: &crate::model::Exec,
        actor: &Actor,
        attributor: &Attributor,
    ) -> bool {
        let Some(found) = dropped::dropped_exec(exec, attributor.writes(), |k| {
            attributor.places_for(Some(k)).out_dir
        }) else {
            return false;
        };
        let writer = found.writer.actor.clone();
        let path = found.path.clone();
        let runner = (actor.crate_ref() != writer.crate_ref()
            || actor.policy_role() != writer.policy_role())
        .then(|| actor.describe());
        let mut detail = found.detail(runner.as_deref());
        let Some(krate) = writer.crate_ref() else {
            return false;
        };
        let role = writer.policy_role();
        let applied = self.applied(&krate, role, attributor);
        let (profile, index) = (
            applied.profile,
            applied.rules.as_ref().and_then(|r| r.exec(&path)),
        );
        if let (Some(profile), Some(index)) = (profile, index) {
            self.usage
                .entry(profile)
                .or_default()
                .record(role, RuleList::Exec, index);
            return true;
        }
        if profile.is_none() {
            detail.push_str(NO_PROFILE);
        }
        let source = profile.map(|i| self.profiles[i].source.to_string());
        self.report(
            Code::DroppedExec,
            Some(RuleList::Exec),
            Some(&krate),
            Some(role),
            source,
            detail,
            path,
            event,
            &writer.candidates,
        );
        true
    }

    fn applied(&mut self, krate: &CrateRef, role: Role, attributor: &Attributor) -> &Applied {
        let key = (krate.clone(), role);
        if !self.applied.contains_key(&key) {
            let places = attributor.places_for(Some(krate));
            let profile = self
                .by_name
                .get(&crate::profile::crate_key(&krate.name))
                .copied();
            let covers = profile.is_some_and(|i| {
                let p = &self.profiles[i];
                match krate.version.as_deref().map(semver::Version::parse) {
                    Some(Ok(v)) => p.covers(&v),
                    // No version known: only a profile for every version covers it.
                    _ => p.versions.is_empty(),
                }
            });
            let rules = profile
                .and_then(|i| self.profiles[i].rules(role))
                .map(|r| r.compile(&vars(&places)));
            self.applied.insert(
                key.clone(),
                Applied {
                    profile,
                    covers,
                    rules,
                    places,
                },
            );
        }
        &self.applied[&key]
    }

    fn check_crate(&mut self, event: &Event, actor: &Actor, role: Role, attributor: &Attributor) {
        let Some(krate) = actor.crate_ref() else {
            return;
        };
        let applied = self.applied(&krate, role, attributor);
        let (profile, covers, places) = (applied.profile, applied.covers, applied.places.clone());
        let source = profile.map(|i| self.profiles[i].source.to_string());
        // Which of the crate's rules allows this, if any (index into the list).
        let allow = |list: RuleList, subject: &str, applied: &Applied| -> Option<usize> {
            let rules = applied.rules.as_ref()?;
            match (list, &event.kind) {
                // A system program may be named either way (`sh` or `dash`, `cc` or `gcc-12`);
                // anything else only as requested.
                (RuleList::Exec, EventKind::Exec(exec)) => rules.exec(subject).or_else(|| {
                    crate::baseline::is_system_program(subject)
                        .then(|| rules.exec(exec.image()))
                        .flatten()
                }),
                (RuleList::Exec, _) => rules.exec(subject),
                (RuleList::Read, _) => rules.read(subject),
                (RuleList::Write, _) => rules.write(subject),
                (RuleList::SensitiveRead, _) => rules.sensitive_read(subject),
                // No profile allows hand-built packets.
                (_, EventKind::Connect(c)) if c.is_raw() => None,
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
                // Tampering and io_uring are never allowed by a profile.
                (
                    _,
                    EventKind::Tamper(_)
                    | EventKind::IoUring(_)
                    | EventKind::CompatSyscall(_)
                    | EventKind::Socket(_),
                ) => None,
                (RuleList::Network, _) => None,
            }
        };
        // (code, list the allowance would be in, subject, detail)
        let verdict: Option<(Code, RuleList, String, String)> = match &event.kind {
            EventKind::Exec(exec) => {
                let image = exec.image().to_owned();
                let requested = exec.requested();
                if image.starts_with("/memfd:") || exec.deleted {
                    Some((
                        Code::FilelessExec,
                        RuleList::Exec,
                        image.clone(),
                        if image.starts_with("/memfd:") {
                            format!(
                                "executed {image} (a memfd: a program that exists only in memory)"
                            )
                        } else {
                            format!("executed {image}, which had been deleted")
                        },
                    ))
                } else if (places.expected_exec(&image) && places.expected_exec(&requested))
                    || dropped::is_toolchain_probe(exec, attributor.writes(), |k| {
                        attributor.places_for(Some(k)).out_dir
                    })
                {
                    None
                } else {
                    // The subject is the program as requested: for a script, the script.
                    Some((
                        Code::UnexpectedExec,
                        RuleList::Exec,
                        requested,
                        format!("ran {}", command_line(exec)),
                    ))
                }
            }
            EventKind::Open(open) => {
                if let Some(target) = other_process_memory(&open.path, event.pid) {
                    let how = if open.writes() {
                        "for writing"
                    } else {
                        "for reading"
                    };
                    Some((
                        Code::ProcessTamper,
                        RuleList::Exec,
                        format!("{} {target}", open.path),
                        format!(
                            "opened {} {how}: the memory of process {target}{}",
                            open.path,
                            attempt(open.result)
                        ),
                    ))
                } else if !open.writes() {
                    if let Some(kind) = places.sensitive_read(&open.path) {
                        Some((
                            Code::SensitiveRead,
                            RuleList::SensitiveRead,
                            open.path.clone(),
                            format!(
                                "{} {} ({kind}){}",
                                read_verb(open),
                                open.path,
                                attempt(open.result)
                            ),
                        ))
                    } else if open.result < 0 {
                        None
                    } else if let Some(what) = project::project_read(
                        &open.path,
                        &places,
                        actor
                            .compiling
                            .as_ref()
                            .map(|c| attributor.places_for(Some(c)))
                            .as_ref(),
                        || attributor.is_member(&krate),
                    ) {
                        Some((
                            Code::ProjectRead,
                            RuleList::Read,
                            open.path.clone(),
                            format!("{} {} ({what})", read_verb(open), open.path),
                        ))
                    } else if places.expected_read(&open.path) {
                        None
                    } else {
                        Some((
                            Code::UnexpectedRead,
                            RuleList::Read,
                            open.path.clone(),
                            format!("{} {}", read_verb(open), open.path),
                        ))
                    }
                } else if let Some(kind) = places
                    .persistence_write(&open.path)
                    .or_else(|| self.ci.persistence_write(&open.path))
                {
                    Some((
                        Code::PersistenceWrite,
                        RuleList::Write,
                        open.path.clone(),
                        format!("wrote {} ({kind}){}", open.path, attempt(open.result)),
                    ))
                } else if let Some(t) = tamper::write_tamper(&open.path, &places, &krate, None) {
                    Some((
                        t.code,
                        RuleList::Write,
                        open.path.clone(),
                        format!(
                            "{}{}",
                            t.detail(write_verb(open), &open.path),
                            attempt(open.result)
                        ),
                    ))
                } else if open.result < 0 || places.expected_write(&open.path) {
                    None
                } else {
                    Some((
                        Code::UnexpectedWrite,
                        RuleList::Write,
                        open.path.clone(),
                        format!("wrote {}", open.path),
                    ))
                }
            }
            EventKind::Connect(c) if c.is_raw() => Some(raw_packet(c)),
            EventKind::Socket(s) => Some(raw_socket(s)),
            EventKind::Connect(c) => {
                let refused = if c.refused {
                    " (refused by --enforce)"
                } else {
                    ""
                };
                let agent = (c.family == SocketFamily::Unix)
                    .then(|| self.agents.agent(&c.addr))
                    .flatten();
                if let Some(agent) = agent {
                    Some((
                        Code::AgentSocket,
                        RuleList::Network,
                        c.addr.clone(),
                        format!(
                            "connected to the {agent} socket {} (it gives {}){}",
                            c.addr,
                            agent.grants(),
                            attempt_connect(c.result, c.error.as_deref())
                        ),
                    ))
                } else if c.family == SocketFamily::Unix && is_baseline_socket(&c.addr) {
                    None
                } else {
                    let ep = c.endpoint();
                    Some((
                        Code::UnexpectedNetwork,
                        RuleList::Network,
                        ep.clone(),
                        format!(
                            "{} {ep}{}{refused}",
                            connect_verb(c),
                            attempt_connect(c.result, c.error.as_deref())
                        ),
                    ))
                }
            }
            EventKind::Dns(d) => Some((
                Code::UnexpectedNetwork,
                RuleList::Network,
                format!("dns:{}", d.name),
                format!(
                    "looked up {} ({}) at {}:{}",
                    d.name, d.qtype, d.server, d.port
                ),
            )),
            EventKind::Tamper(t) if t.is_namespace() => {
                let flags = t.request.as_deref().unwrap_or("0");
                Some((
                    Code::NamespaceUse,
                    RuleList::Exec,
                    format!("{} {flags}", t.syscall),
                    if t.syscall == TamperSyscall::Namespace(NamespaceCall::Setns) {
                        format!(
                            "joined another namespace (setns type {flags}, descriptor {}): paths seen there may not be the real ones",
                            t.target
                        )
                    } else {
                        format!(
                            "created new namespaces ({} {flags}): in a new mount namespace bind mounts can show any file under any path",
                            t.syscall
                        )
                    },
                ))
            }
            EventKind::Tamper(t)
                if t.syscall == TamperSyscall::Process(ProcessCall::PidfdGetfd) =>
            {
                Some((
                    Code::ProcessTamper,
                    RuleList::Exec,
                    format!("pidfd_getfd {}", t.request.as_deref().unwrap_or("")),
                    format!(
                        "pidfd_getfd: took a copy of {} of the process behind pidfd {}",
                        t.request.as_deref().unwrap_or("a descriptor"),
                        t.target
                    ),
                ))
            }
            EventKind::Tamper(t) => Some((
                Code::ProcessTamper,
                RuleList::Exec,
                format!("{} {}", t.syscall, t.target),
                match t.request.as_deref() {
                    Some(request) => format!("{} {request} on process {}", t.syscall, t.target),
                    None => format!("{} on process {}", t.syscall, t.target),
                },
            )),
            EventKind::IoUring(u) => Some((
                Code::IoUringUse,
                RuleList::Exec,
                format!("io_uring {}", u.op),
                if u.op == IoUringOp::Setup {
                    "set up an io_uring (operations through it bypass syscall tracing)".to_owned()
                } else {
                    format!(
                        "submitted io_uring {} (its target is invisible to syscall tracing)",
                        u.op
                    )
                },
            )),
            EventKind::CompatSyscall(c) => Some((
                Code::CompatSyscall,
                RuleList::Exec,
                format!("int 0x80 {}", c.syscall),
                format!(
                    "made the 32-bit system call {} (int 0x80), which syscall tracing does not see{}",
                    c.syscall,
                    attempt(c.result)
                ),
            )),
            EventKind::Fork(_)
            | EventKind::Exit(_)
            | EventKind::Lost(_)
            | EventKind::MacroLib(_) => None,
        };
        let Some((mut code, list, subject, detail)) = verdict else {
            return;
        };
        let applied = &self.applied[&(krate.clone(), role)];
        if let Some(index) = allow(list, &subject, applied) {
            if let Some(profile) = profile {
                self.usage
                    .entry(profile)
                    .or_default()
                    .record(role, list, index);
            }
            return;
        }
        let mut detail = detail;
        if profile.is_none() {
            // Checked against the baseline like any other crate: the specific finding, saying
            // that no profile applied.
            detail.push_str(NO_PROFILE);
        } else if !covers
            && matches!(
                code,
                Code::UnexpectedExec | Code::UnexpectedRead | Code::UnexpectedWrite
            )
        {
            code = Code::NewBehaviour;
        }
        self.report(
            code,
            Some(list),
            Some(&krate),
            Some(role),
            source,
            detail,
            subject,
            event,
            &actor.candidates,
        );
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call per finding site; a struct would only rename them"
    )]
    fn report(
        &mut self,
        code: Code,
        list: Option<RuleList>,
        krate: Option<&CrateRef>,
        role: Option<Role>,
        profile: Option<String>,
        detail: String,
        subject: String,
        event: &Event,
        candidates: &[CrateRef],
    ) {
        let severity = if self.config.fail_on.contains(&code) {
            Severity::Error
        } else {
            Severity::Warning
        };
        self.reported += 1;
        let key = (code, krate.cloned(), role, subject.clone());
        let process = event.actor.as_ref().map(|a| process_ref(event, a));
        self.findings
            .entry(key)
            .and_modify(|f| f.count += 1)
            .or_insert_with(|| Finding {
                code,
                severity,
                krate: krate.cloned(),
                role,
                process,
                detail,
                subject,
                profile,
                list: list.map(|l| l.as_str().to_owned()),
                candidates: candidates.to_vec(),
                count: 1,
                time_ns: event.time_ns,
            });
    }

    /// Reports a process that was still running when the build ended.
    pub fn outlived(&mut self, pid: u32, exe: &str, actor: Option<&Actor>, fate: &str) {
        let krate = actor.and_then(Actor::crate_ref);
        let role = actor.map(Actor::policy_role);
        let detail = format!("process {pid} ({exe}) was still running when the build ended{fate}");
        let severity = if self.config.fail_on.contains(&Code::ProcessOutlivedBuild) {
            Severity::Error
        } else {
            Severity::Warning
        };
        let subject = format!("{exe} ({pid})");
        self.findings.insert(
            (
                Code::ProcessOutlivedBuild,
                krate.clone(),
                role,
                subject.clone(),
            ),
            Finding {
                code: Code::ProcessOutlivedBuild,
                severity,
                krate,
                role,
                process: Some(ProcessRef {
                    pid,
                    exe: exe.to_owned(),
                    chain: actor.map(|a| a.chain.clone()).unwrap_or_default(),
                }),
                detail,
                subject,
                profile: None,
                list: None,
                candidates: Vec::new(),
                count: 1,
                time_ns: 0,
            },
        );
    }

    /// The crates among `seen` (every build script that ran and proc-macro that was loaded)
    /// that ran without a profile, with their role.
    pub fn unprofiled(&self, seen: &BTreeSet<(CrateRef, Role)>) -> Vec<(CrateRef, Role)> {
        seen.iter()
            .filter(|(krate, _)| {
                !self
                    .by_name
                    .contains_key(&crate::profile::crate_key(&krate.name))
            })
            .cloned()
            .collect()
    }

    /// Ends the run: adds the unused-allow findings; returns every finding, errors first. A
    /// crate without a profile gets no finding of its own: what it did beyond the baseline was
    /// reported as it happened, with "(no profile)" in the detail; see [`Self::unprofiled`].
    pub fn finish(&mut self) -> Vec<Finding> {
        let severity = |c: Code, cfg: &PolicyConfig| {
            if cfg.fail_on.contains(&c) {
                Severity::Error
            } else {
                Severity::Warning
            }
        };
        let used: BTreeSet<usize> = self.applied.values().filter_map(|a| a.profile).collect();
        for index in used {
            let profile = &self.profiles[index];
            let tracker = self.usage.get(&index).cloned().unwrap_or_default();
            for unused in tracker.unused(profile) {
                let subject = format!(
                    "{} {}.{} {}",
                    profile.source, unused.role, unused.list, unused.text
                );
                let detail = format!(
                    "allow entry `{}` in [{}].{} ({}:{}:{}) matched nothing in this run",
                    unused.text,
                    unused.role,
                    unused.list,
                    profile.source,
                    unused.location.line,
                    unused.location.col
                );
                let krate = CrateRef {
                    name: profile.krate.clone(),
                    version: None,
                };
                self.findings.insert(
                    (
                        Code::UnusedAllow,
                        Some(krate.clone()),
                        Some(unused.role),
                        subject.clone(),
                    ),
                    Finding {
                        code: Code::UnusedAllow,
                        severity: severity(Code::UnusedAllow, &self.config),
                        krate: Some(krate),
                        role: Some(unused.role),
                        process: None,
                        detail,
                        subject,
                        profile: Some(profile.source.to_string()),
                        list: Some(unused.list.as_str().to_owned()),
                        candidates: Vec::new(),
                        count: 1,
                        time_ns: 0,
                    },
                );
            }
        }
        self.findings().into_iter().cloned().collect()
    }
}

/// How a write reached a name: `wrote`, or `renamed a file onto` for a rename's new name.
fn write_verb(open: &crate::model::Open) -> &'static str {
    match open.syscall {
        OpenSyscall::Rename => "renamed a file onto",
        OpenSyscall::Link => "hard-linked a file as",
        OpenSyscall::Symlink => "made a symlink at",
        _ => "wrote",
    }
}

/// How an open counted as a read got at the file.
fn read_verb(open: &crate::model::Open) -> &'static str {
    match open.syscall {
        OpenSyscall::LinkSource => "hard-linked (its contents readable under the new name)",
        OpenSyscall::RenameSource => "moved",
        _ => "read",
    }
}

fn attempt(result: i64) -> String {
    match crate::decode::errno_name(result) {
        Some(e) => format!(" (attempt failed: {e})"),
        None => String::new(),
    }
}

fn attempt_connect(result: i64, error: Option<&str>) -> String {
    match (result, error) {
        (r, Some("EINPROGRESS")) if r < 0 => String::new(),
        (r, Some(e)) if r < 0 => format!(" (attempt failed: {e})"),
        _ => String::new(),
    }
}

fn command_line(exec: &crate::model::Exec) -> String {
    let mut s = exec.image().to_owned();
    for a in exec.argv.iter().skip(1).take(6) {
        s.push(' ');
        s.push_str(a);
    }
    if exec.argv.len() > 7 {
        s.push_str(" ...");
    }
    s
}

/// What is a finding whoever the process acts for and whatever its profile says: every refusal
/// in the kernel (rustc, its linker, a process attributed late), and network and raw sockets in
/// rustc and its linker, which never connect anywhere (only to libc's name service cache): there
/// it is hostile code in the compiler's process (a proc-macro the sensor could not name, a
/// linker planted by the build).
fn always_reported(event: &Event, role: Role) -> Option<(Code, RuleList, String, String)> {
    let rustc = role == Role::Rustc;
    match &event.kind {
        EventKind::Socket(s) if s.refused || s.killed || rustc => Some(raw_socket(s)),
        EventKind::Connect(c) if c.is_raw() && (c.refused || rustc) => Some(raw_packet(c)),
        EventKind::Connect(c)
            if c.refused
                || rustc && !(c.family == SocketFamily::Unix && is_baseline_socket(&c.addr)) =>
        {
            let ep = c.endpoint();
            let refused = if c.refused {
                " (refused by --enforce)"
            } else {
                ""
            };
            let detail = format!(
                "{} {ep}{}{refused}",
                connect_verb(c),
                attempt_connect(c.result, c.error.as_deref())
            );
            Some((Code::UnexpectedNetwork, RuleList::Network, ep, detail))
        }
        _ => None,
    }
}

/// The verdict on a raw or packet socket's creation.
fn raw_socket(s: &crate::model::event::Socket) -> (Code, RuleList, String, String) {
    let what = match s.family.as_str() {
        "packet" => "a packet socket (link-layer frames built by hand)",
        _ => "a raw socket (IP packets built by hand)",
    };
    let outcome = if s.refused {
        " (refused by --enforce)".to_owned()
    } else if s.killed {
        " (the process was killed by --enforce before it could use it)".to_owned()
    } else {
        attempt(s.result)
    };
    (
        Code::RawSocket,
        RuleList::Network,
        s.subject(),
        format!(
            "created {what}: {} {} protocol {}{outcome}",
            s.family, s.sock_type, s.protocol
        ),
    )
}

/// The verdict on a packet sent on a raw or packet socket: where it goes, read from its headers.
fn raw_packet(c: &crate::model::event::Connect) -> (Code, RuleList, String, String) {
    let ep = c.endpoint();
    let passed = match &c.passed {
        Some(p) => format!(", whatever the address passed with it says ({p})"),
        None => String::new(),
    };
    let how = match c.syscall {
        ConnectSyscall::RawSendmsg => "sendmsg",
        ConnectSyscall::RawSendmmsg => "sendmmsg",
        _ => "sendto",
    };
    (
        Code::RawSocket,
        RuleList::Network,
        format!("packet to {ep}"),
        format!(
            "sent a hand-built packet on a raw socket ({how}) to {ep}, read from the packet's own headers{passed}{}",
            attempt_connect(c.result, c.error.as_deref())
        ),
    )
}

/// How a connection or datagram went out: `connected to`, `sent a datagram (sendmmsg) to`.
fn connect_verb(c: &crate::model::event::Connect) -> String {
    match (c.family, c.syscall) {
        (SocketFamily::Unix, _) => "connected to unix socket".to_owned(),
        (_, ConnectSyscall::Connect) => "connected to".to_owned(),
        (_, ConnectSyscall::Fastopen) => "opened a TCP Fast Open connection to".to_owned(),
        (_, ConnectSyscall::IoUring) => {
            "connected (through io_uring, no connect syscall) to".to_owned()
        }
        (_, ConnectSyscall::Int80Connect) => {
            "connected (through a 32-bit int 0x80 system call) to".to_owned()
        }
        (_, how) => format!("sent a datagram ({how}) to"),
    }
}

/// Unix sockets a program reaches through libc on its own (the name service cache).
fn is_baseline_socket(path: &str) -> bool {
    matches!(path, "/var/run/nscd/socket" | "/run/nscd/socket")
}

fn endpoint(c: &crate::model::Connect) -> Endpoint<'_> {
    match (c.family, c.addr.parse()) {
        (SocketFamily::Inet | SocketFamily::Inet6, Ok(addr)) => Endpoint::Inet {
            addr,
            port: c.port,
            name: None,
        },
        _ => Endpoint::Unix { path: &c.addr },
    }
}

fn process_ref(event: &Event, actor: &Actor) -> ProcessRef {
    let exe = match &event.kind {
        EventKind::Exec(x) => x.image().to_owned(),
        _ => event.comm.clone(),
    };
    ProcessRef {
        pid: event.pid,
        exe,
        chain: actor.chain.clone(),
    }
}

/// Profile variables from the places attribution knows.
pub fn vars(p: &Places) -> Vars {
    Vars {
        out_dir: p.out_dir.clone(),
        manifest_dir: p.manifest_dir.clone(),
        target_dir: p.target_dir.clone(),
        cargo_home: p.cargo_home.clone(),
        rustc_sysroot: p.sysroot.clone(),
        home: p.home.clone(),
        tmpdir: p.tmpdir.clone(),
        workspace: p.workspace.clone(),
    }
}

#[cfg(test)]
mod tests;

/// The process whose memory `path` is (`/proc/PID/mem`, or a thread's `/proc/PID/task/TID/mem`),
/// unless it is the opener's own.
fn other_process_memory(path: &str, opener: u32) -> Option<u32> {
    let rest = path.strip_prefix("/proc/")?.strip_suffix("/mem")?;
    let mut parts = rest.split('/');
    let pid: u32 = parts.next()?.parse().ok()?;
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) | (Some("task"), Some(_), None) => (pid != opener).then_some(pid),
        _ => None,
    }
}
