//! One pipeline for every command: decoded events → attribution → policy → sinks.
use std::{
    fs::File,
    io::{self, BufWriter, Write as _},
    path::Path,
};

use crate::{
    activity::ActivityLog,
    attribution::{Attributor, BuildContext},
    learn::Learner,
    model::Event,
    policy::{Finding, Policy, PolicyConfig},
    profile::ProfileSet,
    summary::Summary,
};

/// What a pipeline does besides attributing.
#[derive(Default)]
pub struct PipelineOptions<'a> {
    /// Write every attributed event as JSON Lines here.
    pub events: Option<&'a Path>,
    /// Check events against these profiles (and the baseline).
    pub profiles: ProfileSet,
    /// Which findings are errors.
    pub policy: PolicyConfig,
    /// Record behaviour for `learn`.
    pub learn: bool,
    /// Hash the program images the run executes (live runs; `replay` keeps the stream's).
    pub digests: bool,
}

/// Everything downstream of the sensor (or of a recorded stream in `replay`).
pub struct Pipeline {
    attributor: Attributor,
    summary: Summary,
    activity: ActivityLog,
    policy: Policy,
    learner: Option<Learner>,
    events_out: Option<BufWriter<File>>,
    images: crate::images::Images,
}

/// What a run leaves behind once its pipeline is finished.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Counts per kind and per program.
    pub summary: Summary,
    /// Per crate and role activity.
    pub activity: ActivityLog,
    /// Findings, errors first.
    pub findings: Vec<Finding>,
    /// Records the sensor lost.
    pub lost_events: u64,
    /// What this kernel could not watch (a missing optional hook), one sentence each.
    pub coverage_gaps: Vec<String>,
    /// Every build script that ran and proc-macro that was loaded.
    pub seen: std::collections::BTreeSet<(crate::attribution::CrateRef, crate::attribution::Role)>,
    /// The build scripts and proc-macros that ran without a profile (checked against the
    /// baseline alone).
    pub unprofiled: Vec<(crate::attribution::CrateRef, crate::attribution::Role)>,
    /// Every program image executed or loaded, with its digest.
    pub images: Vec<crate::images::ProgramImage>,
    /// Output directories, network endpoints and the run's span (the attestation's).
    pub evidence: crate::images::RunEvidence,
}

impl RunReport {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == crate::policy::Severity::Error)
    }
}

/// `a 0.1.0 build-script, b proc-macro`.
pub fn unprofiled_list(
    crates: &[(crate::attribution::CrateRef, crate::attribution::Role)],
) -> String {
    crates
        .iter()
        .map(|(k, r)| format!("{k} {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Pipeline {
    /// A pipeline with `options`.
    pub fn new(options: PipelineOptions<'_>) -> io::Result<Self> {
        let events_out = options
            .events
            .map(File::create)
            .transpose()?
            .map(BufWriter::new);
        let digester = if options.digests {
            Some(crate::digest::Digester::start()?)
        } else {
            None
        };
        Ok(Self {
            attributor: Attributor::new(),
            summary: Summary::default(),
            activity: ActivityLog::default(),
            policy: Policy::new(&options.profiles, options.policy),
            learner: options.learn.then(Learner::new),
            images: crate::images::Images::new(digester).writing_events(events_out.is_some()),
            events_out,
        })
    }

    /// Supplies workspace facts (they may arrive while events are flowing).
    pub fn set_context(&mut self, context: BuildContext) {
        self.attributor.set_context(context);
    }

    /// Processes one event; returns it attributed, or the error writing it to the events file.
    pub fn process(&mut self, event: Event) -> io::Result<Event> {
        match self.process_through(event) {
            (event, None) => Ok(event),
            (_, Some(e)) => Err(e),
        }
    }

    /// Processes one event and returns it attributed, with the error writing it to the events
    /// file if that failed. The event is attributed and checked whatever happens to the file:
    /// a full disk must not blind the run (findings, enforcement, the report). After the first
    /// write error the file is given up (it ends at the last complete event).
    pub fn process_through(&mut self, mut event: Event) -> (Event, Option<io::Error>) {
        self.attributor.process(&mut event);
        self.summary.record(&event, self.attributor.table());
        self.activity.record(&event, &self.attributor);
        self.policy.check(&event, &self.attributor);
        if let Some(learner) = &mut self.learner {
            learner.observe(&event, &self.attributor);
        }
        let mut error = None;
        let out = &mut self.events_out;
        self.images.push(&event, &self.attributor, &mut |e| {
            write_event(out, e, &mut error)
        });
        (event, error)
    }

    /// The image digests that became known after the first `n` (image path, digest).
    pub fn digests_since(&self, n: usize) -> &[(String, crate::model::ImageDigest)] {
        self.images.digests_since(n)
    }

    /// The digest of the image `path` of process `pid`, once computed.
    pub fn digest_of(&self, pid: u32, path: &str) -> Option<&crate::model::ImageDigest> {
        self.images.digest_of(pid, path)
    }

    /// Flushes and closes the events file; the error if the last writes failed. The report is
    /// not affected: [`Self::finish`] still returns it whole.
    pub fn close_events(&mut self) -> io::Result<()> {
        let mut error = None;
        let out = &mut self.events_out;
        self.images.finish(&mut |e| write_event(out, e, &mut error));
        if let Some(e) = error {
            return Err(e);
        }
        match self.events_out.take() {
            Some(mut out) => out.flush(),
            None => Ok(()),
        }
    }

    /// Reports processes that outlived the command (`killed` after `grace`, if any).
    pub fn outlived(&mut self, pids: &[u32], killed: &[u32], grace: Option<std::time::Duration>) {
        for &pid in pids {
            let Some(process) = self.attributor.table().get(pid) else {
                continue;
            };
            let actor = self.attributor.actor_of_pid(pid);
            let exe = process.image.clone();
            let exited = process.exited;
            let fate = match (killed.contains(&pid), grace) {
                (true, Some(g)) => format!("; killed after the {}s grace period", g.as_secs()),
                _ if exited => "; it exited later".to_owned(),
                _ => "; left running".to_owned(),
            };
            self.policy.outlived(pid, &exe, actor.as_ref(), &fate);
        }
    }

    /// Findings so far.
    pub fn findings(&self) -> Vec<&Finding> {
        self.policy.findings()
    }

    /// Flushes the sinks and returns what the run amounted to (and the learner, in learn mode).
    pub fn finish(mut self) -> io::Result<(RunReport, Option<Learner>)> {
        let mut error = None;
        let out = &mut self.events_out;
        self.images.finish(&mut |e| write_event(out, e, &mut error));
        if let Some(e) = error {
            return Err(e);
        }
        if let Some(out) = &mut self.events_out {
            out.flush()?;
        }
        let findings = self.policy.finish();
        let unprofiled = self.policy.unprofiled(self.attributor.seen());
        if let Some(learner) = &mut self.learner {
            for (krate, role) in self.attributor.seen() {
                learner.saw(krate, *role);
            }
        }
        let lost_events = self.summary.lost_total();
        let seen = self.attributor.seen().clone();
        Ok((
            RunReport {
                summary: self.summary,
                activity: self.activity,
                findings,
                lost_events,
                coverage_gaps: Vec::new(),
                seen,
                unprofiled,
                images: self.images.programs(),
                evidence: self.images.evidence(),
            },
            self.learner,
        ))
    }

    /// The attribution state.
    pub fn attributor(&self) -> &Attributor {
        &self.attributor
    }
}

/// Writes one event line; after the first error the file is given up (it ends at the last
/// complete event) and the error kept for the caller.
fn write_event(out: &mut Option<BufWriter<File>>, event: &Event, error: &mut Option<io::Error>) {
    let Some(file) = out else { return };
    let written = serde_json::to_writer(&mut *file, event)
        .map_err(io::Error::from)
        .and_then(|()| file.write_all(b"\n"));
    if let Err(e) = written {
        *out = None;
        error.get_or_insert(e);
    }
}
