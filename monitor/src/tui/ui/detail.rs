//! The selected crate in detail: its findings, its process tree (the tools under each build
//! script), programs run, files by directory, network endpoints.
use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{Areas, pane_block};
use crate::{
    learn::generalize::substitute,
    policy::Severity,
    tui::{app::App, app::Pane, model::shorten},
};

fn heading(text: &str) -> Line<'static> {
    Line::styled(
        text.to_owned(),
        Style::new()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    )
}

/// The pane's lines for the selected crate (pure; also used to bound scrolling).
pub fn lines(app: &App) -> Vec<Line<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    let Some(key) = app.selected_crate() else {
        return vec![Line::styled("No crate selected.", dim)];
    };
    let key = &key;
    let rows = app.crate_rows();
    let row = rows.iter().find(|r| &r.key == key);
    let mut out = Vec::new();
    let mut title = vec![
        Span::styled(key.0.to_string(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" · {}", key.1)),
    ];
    if let Some(r) = row {
        title.push(Span::raw(" · "));
        title.push(Span::styled(
            r.status.label(),
            super::crates::status_style(r.status),
        ));
    }
    out.push(Line::from(title));

    let findings: Vec<_> = app.crate_findings(key).collect();
    if !findings.is_empty() {
        out.push(heading("Findings"));
        let current = app.current_finding();
        for f in findings {
            let (tag, style) = match (app.accepted(f), f.severity) {
                (Some(_), _) => ("✓ ok ", Style::new().fg(Color::Blue)),
                (None, Severity::Error) => (
                    "ERROR",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                (None, Severity::Warning) => ("warn ", Style::new().fg(Color::Yellow)),
            };
            let marker =
                if current.is_some_and(|c| std::ptr::eq(c, f)) && app.focus != Pane::Findings {
                    "▶ "
                } else {
                    "  "
                };
            let mut spans = vec![
                Span::raw(marker),
                Span::styled(tag, style),
                Span::raw(" "),
                Span::styled(f.code.as_str(), style),
                Span::raw(format!(" {}", crate::model::Shown(&f.detail))),
            ];
            if f.count > 1 {
                spans.push(Span::styled(format!(" ×{}", f.count), dim));
            }
            out.push(Line::from(spans));
        }
    }

    let Some(view) = app.model.crates.get(key) else {
        out.push(Line::styled(
            "No event of this crate was seen (known from findings only).",
            dim,
        ));
        return out;
    };
    let vars = app.vars_of(&key.0);
    let show = |path: &str| match vars {
        Some(v) => substitute(path, v),
        None => path.to_owned(),
    };

    out.push(heading(&format!(
        "Processes ({}; {} exec, {} read, {} write, {} net, {} failed opens)",
        view.procs.len(),
        view.execs,
        view.reads,
        view.writes,
        view.network,
        view.failed_opens
    )));
    for (depth, n) in view.tree() {
        let indent = if depth == 0 {
            "  ".to_owned()
        } else {
            format!("  {}└─ ", "   ".repeat(depth - 1))
        };
        let mut spans = vec![
            Span::raw(indent),
            Span::styled(n.name.clone(), Style::new().add_modifier(Modifier::BOLD)),
        ];
        if !n.args.is_empty() {
            spans.push(Span::raw(format!(" {}", shorten(&n.args, 48))));
        }
        spans.push(Span::styled(format!(" [pid {}]", n.pid), dim));
        if let Some(c) = &n.compiling {
            spans.push(Span::styled(format!(" compiling {c}"), dim));
        }
        match &n.exit {
            Some(e) if e == "exit 0" => spans.push(Span::styled(format!(" {e}"), dim)),
            Some(e) => spans.push(Span::styled(format!(" {e}"), Style::new().fg(Color::Red))),
            None => spans.push(Span::styled(" running", Style::new().fg(Color::Yellow))),
        }
        out.push(Line::from(spans));
    }

    if !view.programs.is_empty() {
        out.push(heading("Programs run"));
        for (image, count) in &view.programs {
            let mut spans = vec![Span::raw(format!("  {}", show(image)))];
            if *count > 1 {
                spans.push(Span::styled(format!(" ×{count}"), dim));
            }
            // What ran, by content: the start of its SHA-256 (the reports have it whole), or
            // why there is none.
            if let Some(d) = app.digests.get(image) {
                match d.sha256() {
                    Some(sha) => spans.push(Span::styled(
                        format!(" sha256:{}", sha.get(..16).unwrap_or(sha)),
                        dim,
                    )),
                    None => spans.push(Span::styled(
                        format!(" {}", d.describe()),
                        Style::new().fg(Color::Red),
                    )),
                }
            }
            out.push(Line::from(spans));
        }
    }

    if !view.files.is_empty() {
        out.push(heading("Files (R read, W written)"));
        for (dir, files) in &view.files {
            out.push(Line::styled(
                format!("  {}/", show(dir).trim_end_matches('/')),
                Style::new().fg(Color::Gray).add_modifier(Modifier::BOLD),
            ));
            for (name, usage) in files {
                let flags = format!(
                    "{}{}",
                    if usage.read { "R" } else { " " },
                    if usage.write { "W" } else { " " }
                );
                let style = if usage.write {
                    Style::new().fg(Color::Magenta)
                } else {
                    Style::new()
                };
                out.push(Line::from(vec![
                    Span::styled(format!("    {flags} "), style),
                    Span::raw(name.clone()),
                ]));
            }
        }
    }

    if !view.endpoints.is_empty() {
        out.push(heading("Network"));
        for (ep, usage) in &view.endpoints {
            let mut spans = vec![Span::styled(
                format!("  {ep}"),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )];
            if usage.count > 1 {
                spans.push(Span::styled(format!(" ×{}", usage.count), dim));
            }
            match &usage.error {
                Some(e) => spans.push(Span::styled(format!(" ({e})"), dim)),
                None => spans.push(Span::raw(" connected")),
            }
            out.push(Line::from(spans));
        }
    }
    if view.omitted > 0 {
        out.push(Line::styled(
            format!("({} more items not kept)", view.omitted),
            dim,
        ));
    }
    out
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, areas: &Areas) {
    let lines = lines(app);
    let height = area.height.saturating_sub(2) as usize;
    let max = lines.len().saturating_sub(height);
    let scroll = app.detail_scroll.min(max);
    let extra = if max > 0 {
        format!("{}/{}", scroll + height.min(lines.len()), lines.len())
    } else {
        String::new()
    };
    let block = pane_block(app, Pane::Detail, areas, extra);
    let visible: Vec<Line<'static>> = lines.into_iter().skip(scroll).take(height).collect();
    frame.render_widget(Paragraph::new(visible).block(block), area);
}
