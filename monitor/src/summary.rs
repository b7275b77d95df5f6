//! The one-screen summary printed to stderr after a run: counts per kind and per program.
use std::{collections::BTreeMap, fmt::Write as _};

use crate::{
    attribution::ProcessTable,
    model::{Event, EventKind},
};

/// Counts for one program image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageCounts {
    /// Processes that executed this image.
    pub execs: u64,
    /// Opens for reading.
    pub reads: u64,
    /// Opens for writing (or creating).
    pub writes: u64,
    /// Failed opens.
    pub failed_opens: u64,
    /// connect() calls.
    pub connects: u64,
}

/// Aggregated counts of a run. Bounded: it keeps counters, never events.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Events per kind name.
    pub per_kind: BTreeMap<&'static str, u64>,
    /// Counts per program image name.
    pub per_image: BTreeMap<String, ImageCounts>,
    /// Records lost, per reason.
    pub lost: BTreeMap<&'static str, u64>,
    /// Total events.
    pub total: u64,
}

impl Summary {
    /// Counts `event`; `table` (already updated with it) names the process's image.
    pub fn record(&mut self, event: &Event, table: &ProcessTable) {
        self.total += 1;
        *self.per_kind.entry(event.kind.name()).or_default() += 1;
        if let EventKind::Lost(lost) = &event.kind {
            *self.lost.entry(lost.reason.as_str()).or_default() += lost.count;
            return;
        }
        let image = table
            .get(event.pid)
            .map_or(event.comm.as_str(), |p| p.image_name());
        // No allocation for an image already counted (nearly every event).
        let counts = if self.per_image.contains_key(image) {
            self.per_image.get_mut(image).expect("just checked")
        } else {
            self.per_image.entry(image.to_owned()).or_default()
        };
        match &event.kind {
            EventKind::Exec(_) => counts.execs += 1,
            EventKind::Open(open) if open.result < 0 => counts.failed_opens += 1,
            EventKind::Open(open) if open.writes() => counts.writes += 1,
            EventKind::Open(_) => counts.reads += 1,
            EventKind::Connect(_) => counts.connects += 1,
            // Failed reads the kernel counted instead of sending (model::Exit).
            EventKind::Exit(exit) => counts.failed_opens += u64::from(exit.quiet_failed_reads),
            EventKind::Fork(_)
            | EventKind::Lost(_)
            | EventKind::MacroLib(_)
            | EventKind::Dns(_)
            | EventKind::Tamper(_)
            | EventKind::IoUring(_)
            | EventKind::CompatSyscall(_)
            | EventKind::Socket(_)
            | EventKind::Killed(_) => {}
        }
    }

    /// Total records lost.
    pub fn lost_total(&self) -> u64 {
        self.lost.values().sum()
    }

    /// The summary as text (at most `max_images` program rows, busiest first).
    pub fn render(&self, max_images: usize) -> String {
        let mut out = String::new();
        let kinds: Vec<String> = self
            .per_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "events: {} ({})",
            self.total,
            if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(", ")
            }
        );
        let lost = self.lost_total();
        if lost > 0 {
            let reasons: Vec<String> = self.lost.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            let _ = writeln!(
                out,
                "LOST EVENTS: {lost} ({}); monitoring was incomplete",
                reasons.join(", ")
            );
        }
        let mut images: Vec<(&String, &ImageCounts)> = self.per_image.iter().collect();
        images.sort_by_key(|(name, c)| {
            (
                std::cmp::Reverse(c.execs + c.reads + c.writes + c.failed_opens + c.connects),
                (*name).clone(),
            )
        });
        if !images.is_empty() {
            let _ = writeln!(
                out,
                "{:<28} {:>6} {:>8} {:>8} {:>8} {:>8}",
                "program", "execs", "reads", "writes", "failed", "connect"
            );
            for (name, c) in images.iter().take(max_images) {
                let _ = writeln!(
                    out,
                    "{:<28} {:>6} {:>8} {:>8} {:>8} {:>8}",
                    truncate(&crate::model::shown(name), 28),
                    c.execs,
                    c.reads,
                    c.writes,
                    c.failed_opens,
                    c.connects
                );
            }
            if images.len() > max_images {
                let _ = writeln!(out, "... and {} more programs", images.len() - max_images);
            }
        }
        out
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, EventKind, Exit};

    #[test]
    fn failed_reads_the_kernel_counted_are_failed_opens_of_the_process() {
        let table = ProcessTable::default();
        let mut summary = Summary::default();
        let exit = Event {
            time_ns: 0,
            pid: 7,
            tid: 7,
            ppid: 1,
            comm: "cc1".into(),
            actor: None,
            callers: Vec::new(),
            kind: EventKind::Exit(Exit {
                code: Some(0),
                signal: None,
                quiet_failed_reads: 41,
            }),
        };
        summary.record(&exit, &table);
        assert_eq!(summary.per_image["cc1"].failed_opens, 41);
        assert_eq!(summary.per_kind["exit"], 1);
    }
}
