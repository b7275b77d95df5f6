//! Checking: every attributed event against the built-in baseline and the crate's profile.
//!
//! Pure: events and profiles in, findings out. The same code serves watching, `ci`, `learn`
//! (which records what it would have flagged) and `replay`. What an event *is* is decided in
//! [`classify`]; this module decides whether the crate's profile allows it, and keeps the
//! findings (merged, with the run's severities).
mod agent;
mod ci_env;
pub mod classify;
mod config;
mod finding;
mod finish;
mod monitor_tamper;
mod privilege;
pub mod quiet;

use std::collections::{BTreeMap, HashMap};

pub use agent::{Agent, AgentEnv};
pub use ci_env::CiChannels;
pub use classify::{Allow, Run, Verdict, allowed_by, classify, dropped_exec};
pub use config::{DEFAULT_FAIL_ON, PolicyConfig};
pub use finding::{Code, Finding, ProcessRef, Severity};

use crate::{
    attribution::{Actor, Attributor, CrateRef, Role},
    baseline::Places,
    model::{Event, EventKind, Lost, LostReason},
    profile::{CompiledRules, ProfileSet, UsageTracker, Vars, crate_key},
};

/// A crate instance in a role: the crate, the role, and the instance's OUT_DIR and manifest
/// directory (a crate built twice in one run has two OUT_DIRs, and `${OUT_DIR}` in its profile
/// means each one for its own instance).
type Key = (CrateRef, Role, Option<String>, Option<String>);

/// The rules that apply to one crate instance in one role.
struct Applied {
    /// The crate's profile, by [`crate_key`], if it has one.
    profile: Option<String>,
    /// Where the profile came from, for findings.
    source: Option<String>,
    /// The profile covers this version (false: it was written for other versions).
    covers: bool,
    rules: Option<CompiledRules>,
    places: Places,
}

/// The checker of one run.
pub struct Policy {
    profiles: ProfileSet,
    config: PolicyConfig,
    applied: HashMap<Key, Applied>,
    /// Which allow entries matched, per profile ([`crate_key`]).
    usage: HashMap<String, UsageTracker>,
    findings: BTreeMap<FindingKey, Finding>,
    /// Records lost so far, by reason.
    lost: BTreeMap<LostReason, u64>,
    /// The agent sockets the environment names (SSH_AUTH_SOCK and co.).
    agents: AgentEnv,
    /// The CI job's channels to later steps (GITHUB_ENV and co.) the environment names.
    ci: CiChannels,
    /// The last finding each thread got, per code, and when: a `killed` event marks the
    /// finding of the act it was killed for (sent just before it, by the same thread).
    /// Entries older than [`KILL_WINDOW_NS`] are of no more use and are dropped in batches
    /// (see [`Policy::forget_old_acts`]): a long build runs millions of threads.
    last: HashMap<(u32, Code), (FindingKey, u64)>,
    /// Size of `last` at which the old entries are dropped next.
    last_limit: usize,
}

/// The smallest size of [`Policy::last`] at which old entries are dropped.
const LAST_MIN: usize = 1024;

/// What findings are merged by.
type FindingKey = (Code, Option<CrateRef>, Option<Role>, String);

/// Appended to the detail of a finding whose act was killed.
const KILLED_NOTE: &str = "; killed by --enforce before it returned to user space";

/// How long before its kill the act's own event may be (the same kernel program sends both,
/// microseconds apart).
const KILL_WINDOW_NS: u64 = 50_000_000;

/// Appended to the detail of a finding on a crate that has no profile.
const NO_PROFILE: &str = " (no profile)";

impl Policy {
    /// A checker with these profiles (user profiles win over shipped ones; see [`ProfileSet`]).
    pub fn new(profiles: &ProfileSet, config: PolicyConfig) -> Self {
        Self {
            profiles: profiles.clone(),
            config,
            applied: HashMap::new(),
            usage: HashMap::new(),
            findings: BTreeMap::new(),
            lost: BTreeMap::new(),
            agents: AgentEnv::from_process(),
            ci: CiChannels::from_process(),
            last: HashMap::new(),
            last_limit: LAST_MIN,
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
            self.lost(event, lost);
            return;
        }
        // Link directives, on the build script that emitted them (judged at rustc's start).
        let link = classify::link_injection(event, &self.run(Some(attributor)));
        for verdict in link {
            self.judge_blamed(verdict, event, attributor);
        }
        // A kill marks the finding of the act it was for; reported on its own when that act
        // made none (its record lost, or judged otherwise by path).
        if let EventKind::Killed(k) = &event.kind
            && self.mark_killed(event, classify::kill_code(k.class))
        {
            return;
        }
        // A program the run wrote is judged first, against the crate that wrote it, whoever
        // runs it (the build script, a shell, the linker through flags it printed, cargo).
        if let Some(verdict) = dropped_exec(event, &self.run(Some(attributor))) {
            self.judge_blamed(verdict, event, attributor);
            return;
        }
        let Some(actor) = event.actor.as_ref() else {
            // A process attribution never heard of: a refusal is still a finding.
            if let Some(v) = classify(event, Role::Command, &Places::default(), &self.run(None)) {
                self.report(v, None, None, None, event, &[]);
            }
            return;
        };
        let role = actor.policy_role();
        match role {
            // Proc-macros the sensor could not tell apart: the strictest of their profiles
            // applies (the first candidate, most likely first, whose profile does not allow it
            // gets the finding, which lists every candidate and says it is not exact).
            Role::ProcMacro if actor.candidates.len() > 1 => {
                for c in &actor.candidates {
                    let mut one = actor.clone();
                    one.krate = Some(c.name.clone());
                    one.version = c.version.clone();
                    if self.check_crate(event, &one, role, attributor) {
                        break;
                    }
                }
            }
            Role::BuildScript | Role::ProcMacro => {
                self.check_crate(event, actor, role, attributor);
            }
            // No profiles for these roles: what the classifier reports for them (in rustc, what
            // rustc never does itself; refusals for anyone) is a finding as it is.
            Role::Rustc | Role::Cargo | Role::Command | Role::Tool => {
                let krate = actor.crate_ref();
                let places = attributor.places_for_process(event.pid, krate.as_ref());
                if let Some(v) = classify(event, role, &places, &self.run(Some(attributor))) {
                    self.report(
                        v,
                        krate.as_ref(),
                        Some(role),
                        None,
                        event,
                        &actor.candidates,
                    );
                }
            }
        }
    }

    /// What the classifier may know of this run.
    fn run<'a>(&'a self, attribution: Option<&'a Attributor>) -> Run<'a> {
        Run {
            agents: &self.agents,
            ci: &self.ci,
            attribution,
            monitor_pid: self.config.monitor_pid,
        }
    }

    /// A verdict on someone other than the acting process (a dropped program's writer): judged
    /// against that crate's profile.
    fn judge_blamed(&mut self, verdict: Verdict, event: &Event, attributor: &Attributor) {
        let Some(blamed) = verdict.blame.clone() else {
            return;
        };
        let Some(krate) = blamed.crate_ref() else {
            return;
        };
        // The writer may be long gone: its crate's places (the instance seen last).
        let places = attributor.places_for(Some(&krate));
        self.judge(
            verdict,
            &krate,
            blamed.policy_role(),
            &blamed.candidates,
            event,
            places,
        );
    }

    /// Lost records: one finding for the run, its detail and count the totals so far.
    fn lost(&mut self, event: &Event, lost: &Lost) {
        *self.lost.entry(lost.reason).or_default() += lost.count;
        let total: u64 = self.lost.values().sum();
        let reasons: Vec<String> = if self.lost.len() == 1 {
            self.lost.keys().map(ToString::to_string).collect()
        } else {
            self.lost.iter().map(|(r, n)| format!("{r}: {n}")).collect()
        };
        let detail = format!("{total} events lost ({})", reasons.join(", "));
        let key = (Code::EventsLost, None, None, "lost".to_owned());
        let verdict = Verdict {
            code: Code::EventsLost,
            allow: Allow::Never,
            subject: "lost".to_owned(),
            detail: detail.clone(),
            blame: None,
        };
        self.report(verdict, None, None, None, event, &[]);
        if let Some(f) = self.findings.get_mut(&key) {
            f.count = total;
            f.detail = detail;
        }
    }

    /// The rules for a crate instance in a role, looked up once.
    fn ensure_applied(&mut self, krate: &CrateRef, role: Role, places: Places) -> Key {
        let key = (
            krate.clone(),
            role,
            places.out_dir.clone(),
            places.manifest_dir.clone(),
        );
        if !self.applied.contains_key(&key) {
            let found = self.profiles.rules_for(krate, role);
            let applied = Applied {
                profile: found.map(|m| crate_key(&m.profile.krate)),
                source: found.map(|m| m.profile.source.to_string()),
                covers: found.is_some_and(|m| m.covers),
                rules: found
                    .and_then(|m| m.rules)
                    .map(|r| r.compile(&vars(&places))),
                places,
            };
            self.applied.insert(key.clone(), applied);
        }
        key
    }

    /// Checks an event of a build script or proc-macro against its crate's profile; returns
    /// whether it was reported.
    fn check_crate(
        &mut self,
        event: &Event,
        actor: &Actor,
        role: Role,
        attributor: &Attributor,
    ) -> bool {
        let Some(krate) = actor.crate_ref() else {
            return false;
        };
        let places = attributor.places_for_process(event.pid, Some(&krate));
        let key = self.ensure_applied(&krate, role, places);
        let applied = &self.applied[&key];
        let run = self.run(Some(attributor));
        let Some(verdict) = classify(event, role, &applied.places, &run) else {
            return false;
        };
        let places = applied.places.clone();
        self.judge(verdict, &krate, role, &actor.candidates, event, places)
    }

    /// Whether `krate`'s profile for `role` allows `verdict` (then the allow entry is marked
    /// used); otherwise reports it. Returns whether it was reported.
    fn judge(
        &mut self,
        mut verdict: Verdict,
        krate: &CrateRef,
        role: Role,
        candidates: &[CrateRef],
        event: &Event,
        places: Places,
    ) -> bool {
        let key = self.ensure_applied(krate, role, places);
        let applied = &self.applied[&key];
        let allowed = applied
            .rules
            .as_ref()
            .and_then(|rules| allowed_by(&verdict, event, rules));
        let (profile, source, covers) = (
            applied.profile.clone(),
            applied.source.clone(),
            applied.covers,
        );
        if let (Some(index), Some(profile), Some(list)) = (allowed, &profile, verdict.list()) {
            self.usage
                .entry(profile.clone())
                .or_default()
                .record(role, list, index);
            return false;
        }
        if profile.is_none() {
            // Checked against the baseline like any other crate: the specific finding, saying
            // that no profile applied.
            verdict.detail.push_str(NO_PROFILE);
        } else if !covers
            && matches!(
                verdict.code,
                Code::UnexpectedExec | Code::UnexpectedRead | Code::UnexpectedWrite
            )
        {
            verdict.code = Code::NewBehaviour;
        }
        self.report(verdict, Some(krate), Some(role), source, event, candidates);
        true
    }

    fn report(
        &mut self,
        verdict: Verdict,
        krate: Option<&CrateRef>,
        role: Option<Role>,
        profile: Option<String>,
        event: &Event,
        candidates: &[CrateRef],
    ) {
        let code = verdict.code;
        let severity = self.severity(code);
        let list = verdict.list().map(|l| l.as_str().to_owned());
        let key = (code, krate.cloned(), role, verdict.subject.clone());
        let process = event.actor.as_ref().map(|a| process_ref(event, a));
        let killed = matches!(event.kind, EventKind::Killed(_));
        self.last
            .insert((event.tid, code), (key.clone(), event.time_ns));
        if self.last.len() >= self.last_limit {
            self.forget_old_acts(event.time_ns);
        }
        self.findings
            .entry(key)
            .and_modify(|f| {
                f.count += 1;
                if killed && !f.killed {
                    f.killed = true;
                    f.detail.push_str(KILLED_NOTE);
                }
            })
            .or_insert_with(|| Finding {
                code,
                severity,
                krate: krate.cloned(),
                role,
                process,
                detail: verdict.detail,
                subject: verdict.subject,
                profile,
                list,
                candidates: candidates.to_vec(),
                count: 1,
                time_ns: event.time_ns,
                killed,
            });
    }

    /// Drops the acts a kill can no longer follow (older than [`KILL_WINDOW_NS`] at `now`). The
    /// next drop waits until the map has doubled: amortized constant time per finding, however
    /// many acts are recent.
    fn forget_old_acts(&mut self, now: u64) {
        self.last
            .retain(|_, (_, at)| now.saturating_sub(*at) <= KILL_WINDOW_NS);
        self.last_limit = (2 * self.last.len()).max(LAST_MIN);
    }

    /// The number of recent acts remembered for kills (bounded on long runs).
    #[cfg(test)]
    fn acts_remembered(&self) -> usize {
        self.last.len()
    }

    /// Marks the finding the killed thread's act just got (see [`Policy::last`]); false when
    /// there is none.
    fn mark_killed(&mut self, event: &Event, code: Option<Code>) -> bool {
        let Some(code) = code else {
            return false;
        };
        let Some((key, at)) = self.last.get(&(event.tid, code)) else {
            return false;
        };
        if event.time_ns.saturating_sub(*at) > KILL_WINDOW_NS {
            return false;
        }
        let Some(f) = self.findings.get_mut(key) else {
            return false;
        };
        if !f.killed {
            f.killed = true;
            f.detail.push_str(KILLED_NOTE);
        }
        true
    }

    fn severity(&self, code: Code) -> Severity {
        if self.config.fail_on.contains(&code) {
            Severity::Error
        } else {
            Severity::Warning
        }
    }

    /// Reports a process that was still running when the build ended.
    pub fn outlived(&mut self, pid: u32, exe: &str, actor: Option<&Actor>, fate: &str) {
        let krate = actor.and_then(Actor::crate_ref);
        let role = actor.map(Actor::policy_role);
        let detail = format!("process {pid} ({exe}) was still running when the build ended{fate}");
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
                severity: self.severity(Code::ProcessOutlivedBuild),
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
                killed: false,
            },
        );
    }
}

/// Which of `events` `krate`'s profile for `role` allows (true also when the baseline does):
/// the profile lookup, classifier and allow check that [`Policy::check`] makes, for
/// `--enforce` to tell the kernel what it must not kill for.
pub fn profile_allows(
    profiles: &ProfileSet,
    krate: &CrateRef,
    role: Role,
    events: &[Event],
    attributor: &Attributor,
) -> Vec<bool> {
    let places = attributor.places_for(Some(krate));
    let (agents, ci) = (AgentEnv::from_process(), CiChannels::from_process());
    let run = Run {
        agents: &agents,
        ci: &ci,
        attribution: Some(attributor),
        monitor_pid: None,
    };
    let rules = profiles
        .rules_for(krate, role)
        .and_then(|m| m.rules)
        .map(|r| r.compile(&vars(&places)));
    events
        .iter()
        .map(|event| match classify(event, role, &places, &run) {
            None => true,
            Some(verdict) => rules
                .as_ref()
                .is_some_and(|rules| allowed_by(&verdict, event, rules).is_some()),
        })
        .collect()
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
