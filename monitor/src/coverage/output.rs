//! How `buildwatch profiles` prints its survey: a table for people, JSON for machines.
use serde::Serialize;

use super::{Coverage, Entry, Origin, Source, Totals};

/// The `--json` document.
#[derive(Serialize)]
struct Document<'a> {
    /// Every crate that runs code at build time.
    crates: &'a [Entry],
    /// Counts by coverage.
    totals: Totals,
}

/// The survey as JSON (one document, pretty-printed).
pub fn json(entries: &[Entry]) -> String {
    let doc = Document {
        crates: entries,
        totals: Totals::of(entries),
    };
    // Serializing plain data (strings, numbers, enums) cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn roles(e: &Entry) -> String {
    let mut s = e
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join("+");
    if e.source == Source::Workspace {
        s.push_str(" (workspace)");
    }
    if e.test_only {
        s.push_str(" (tests only)");
    }
    s
}

fn profile(c: &Coverage) -> String {
    let origin = |o: &Origin| match o {
        Origin::User => "user",
        Origin::Shipped => "shipped",
    };
    match c {
        Coverage::Covered { origin: o, profile } => format!("{} {profile}", origin(o)),
        Coverage::OtherVersions {
            origin: o,
            profile,
            versions,
        } => format!(
            "NONE for this version ({} {profile} covers {})",
            origin(o),
            versions.join(", ")
        ),
        Coverage::None => "NONE".to_owned(),
    }
}

/// The survey as a table with a summary line.
pub fn text(entries: &[Entry]) -> String {
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.version.clone(),
                roles(e),
                profile(&e.coverage),
            ]
        })
        .collect();
    let header = [
        "CRATE".to_owned(),
        "VERSION".to_owned(),
        "RUNS".to_owned(),
        "PROFILE".to_owned(),
    ];
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        ));
    }
    let t = Totals::of(entries);
    out.push_str(&format!(
        "\n{} crates run code at build time: {} covered by your profiles, {} by shipped profiles, \
         {} with a profile for other versions only (reported as new-behaviour), {} without a \
         profile (checked against the baseline alone).\n",
        t.crates, t.user, t.shipped, t.other_versions, t.none
    ));
    out
}
