//! The Markdown summary (`--summary`, `$GITHUB_STEP_SUMMARY`): docs/reports.md.
use std::fmt::Write as _;

use super::*;

/// A Markdown summary (for `$GITHUB_STEP_SUMMARY`): the findings table first, errors first,
/// then the build scripts and proc-macros in a collapsed table. Everything the build controls
/// (paths, command lines, crate names) is written as code spans, so that none of it renders as
/// links, images or HTML.
pub fn markdown(run: &RunReport, meta: &RunMeta) -> String {
    let mut shown: Vec<&Finding> = run
        .findings
        .iter()
        .filter(|f| f.code != Code::UnusedAllow)
        .collect();
    shown.sort_by_key(|f| f.severity);
    let unused = run.findings.len() - shown.len();
    let errors = shown
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = shown.len() - errors;
    let mut out = String::from("## buildwatch: ");
    out.push_str(&match (errors, warnings) {
        (0, 0) => "✅ no findings".to_owned(),
        (0, w) => format!("⚠️ {}", plural(w, "warning")),
        (e, 0) => format!("❌ {}", plural(e, "error")),
        (e, w) => format!("❌ {}, {}", plural(e, "error"), plural(w, "warning")),
    });
    out.push_str("\n\n");
    if !meta.command.is_empty() {
        let _ = write!(out, "Watched {}", code(&meta.command.join(" ")));
        if let Some(user) = &meta.user {
            let _ = write!(out, " as {}", code(user));
        }
        if let Some(status) = meta.exit_status {
            let _ = write!(out, ": exit status {status}");
        }
        out.push_str(".\n\n");
    }
    if run.lost_events > 0 {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> Monitoring was incomplete: the sensor lost {} events.\n",
            run.lost_events
        );
    }
    for gap in &run.coverage_gaps {
        let _ = writeln!(out, "> [!WARNING]\n> Not watched: {gap}.\n");
    }
    if !shown.is_empty() {
        out.push_str("| | finding | crate | role | what | times |\n|---|---|---|---|---|---|\n");
        for f in shown.iter().take(MAX_MARKDOWN_FINDINGS) {
            let icon = match f.severity {
                Severity::Error => "❌ error",
                Severity::Warning => "⚠️ warning",
            };
            let krate = if f.exact() {
                f.krate
                    .as_ref()
                    .map(|k| code(&k.to_string()))
                    .unwrap_or_default()
            } else {
                // No one proc-macro named as if it were certain.
                let all: Vec<String> = f.candidates.iter().map(|c| code(&c.to_string())).collect();
                format!("one of {} (attribution not exact)", all.join(", "))
            };
            let role = f.role.map(|r| r.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {icon} | {} | {} | {role} | {} | {} |",
                cell(&code(f.code.as_str())),
                cell(&krate),
                cell(&code(&truncate(&f.detail, 300))),
                f.count
            );
        }
        out.push('\n');
        if shown.len() > MAX_MARKDOWN_FINDINGS {
            let _ = writeln!(
                out,
                "… and {} more findings: see the JSON report (`--report`).\n",
                shown.len() - MAX_MARKDOWN_FINDINGS
            );
        }
    }
    if unused > 0 {
        let _ = writeln!(
            out,
            "{} in profiles matched nothing in this run (`unused-allow`; see the JSON report).\n",
            plural(unused, "allow entry")
        );
    }
    if !run.unprofiled.is_empty() {
        let names: Vec<String> = run
            .unprofiled
            .iter()
            .map(|(k, r)| format!("{} ({r})", code(&k.to_string())))
            .collect();
        let _ = writeln!(
            out,
            "Ran without a profile (checked against the built-in baseline only): {}.\n",
            names.join(", ")
        );
    }
    let crates = crates(run);
    let interesting: Vec<_> = crates
        .iter()
        .filter(|(_, e)| {
            e.roles
                .iter()
                .any(|r| matches!(r, Role::BuildScript | Role::ProcMacro))
        })
        .collect();
    if !interesting.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Build scripts and proc-macros ({})</summary>\n",
            plural(interesting.len(), "crate")
        );
        out.push_str(
            "| crate | roles | execs | reads | writes | connects | reached |\n|---|---|---|---|---|---|---|\n",
        );
        for (k, e) in interesting {
            let counts = e.scrutinised();
            // `proc-macro?`: attributed as one of several candidates, as in the text summary.
            let roles: Vec<String> = e
                .roles
                .iter()
                .filter(|r| matches!(r, Role::BuildScript | Role::ProcMacro))
                .map(|r| {
                    let ambiguous = e.counts.get(r).is_some_and(|c| c.ambiguous);
                    format!("{r}{}", if ambiguous { "?" } else { "" })
                })
                .collect();
            let mut reached: Vec<String> = e.network.iter().take(5).map(|h| code(h)).collect();
            if e.network.len() > 5 {
                reached.push(format!("… {} more", e.network.len() - 5));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(&code(&k.to_string())),
                roles.join(", "),
                counts.exec,
                counts.read,
                counts.write,
                counts.network,
                cell(&reached.join(", "))
            );
        }
        out.push_str("\n</details>\n");
    }
    out.push('\n');
    out
}

pub(super) fn plural(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (n, w) if w.ends_with('y') => format!("{n} {}ies", &w[..w.len() - 1]),
        (n, w) => format!("{n} {w}s"),
    }
}

/// A code span of `s`: nothing inside is Markdown or HTML. The fence is longer than any run of
/// backticks inside; line breaks, other control characters and bidirectional overrides are
/// shown as escapes (`\n`, `\e`, `\u{202e}`), so the reader sees that they were there.
pub(super) fn code(s: &str) -> String {
    let s = crate::model::shown(s);
    if s.trim().is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A space on each side keeps a backtick at either end from joining the fence (one space
    // each side is stripped when rendering).
    let pad = if longest > 0 { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Text for a table cell: `|` escaped (GitHub unescapes it inside code spans too).
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
