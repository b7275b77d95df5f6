//! The findings list, errors first; accepted ones marked.
use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Cell, Paragraph, Row, Table, TableState},
};

use super::{Areas, crates::selection_style, pane_block};
use crate::{
    attribution::Role,
    policy::Severity,
    tui::app::{App, Pane},
};

/// `bs`, `pm`: the findings pane is tight at 80 columns.
fn short_role(role: Role) -> &'static str {
    match role {
        Role::BuildScript => "bs",
        Role::ProcMacro => "pm",
        other => other.as_str(),
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, areas: &Areas) {
    let findings = app.findings();
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error && app.accepted(f).is_none())
        .count();
    let extra = if findings.is_empty() {
        String::new()
    } else {
        format!("{} · {errors} errors", findings.len())
    };
    let block = pane_block(app, Pane::Findings, areas, extra);
    if findings.is_empty() {
        let text = if app.running() {
            "No finding so far."
        } else {
            "No finding."
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, Style::new().fg(Color::DarkGray))).block(block),
            area,
        );
        return;
    }
    let who_width = findings
        .iter()
        .map(|f| {
            f.krate
                .as_ref()
                .map_or(9, |k| k.to_string().chars().count() + 3)
        })
        .max()
        .unwrap_or(9)
        .min(34) as u16;
    let rows: Vec<Row<'_>> = findings
        .iter()
        .map(|f| {
            let (tag, style) = match (app.accepted(f), f.severity) {
                (Some(_), _) => ("✓ ok", Style::new().fg(Color::Blue)),
                (None, Severity::Error) => (
                    "ERROR",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                (None, Severity::Warning) => ("warn", Style::new().fg(Color::Yellow)),
            };
            let who = match (&f.krate, f.role) {
                // Not one proc-macro named as if it were certain.
                (Some(_), Some(r)) if !f.exact() => {
                    let names: Vec<&str> = f.candidates.iter().map(|c| c.name.as_str()).collect();
                    format!("{}? {}", names.join("|"), short_role(r))
                }
                (Some(k), Some(r)) => format!("{k} {}", short_role(r)),
                (Some(k), None) => k.to_string(),
                (None, Some(r)) => r.to_string(),
                (None, None) => "the build".to_owned(),
            };
            let mut detail = crate::model::shown(&f.detail).into_owned();
            if f.count > 1 {
                detail.push_str(&format!(" ×{}", f.count));
            }
            Row::new(vec![
                Cell::from(tag).style(style),
                Cell::from(f.code.as_str()).style(style),
                Cell::from(who),
                Cell::from(detail),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(18),
            Constraint::Length(who_width),
            Constraint::Fill(1),
        ],
    )
    .block(block)
    .row_highlight_style(selection_style(app.focus == Pane::Findings))
    .highlight_symbol("▶ ");
    let mut state = TableState::new().with_selected(app.selected_finding_index());
    frame.render_stateful_widget(table, area, &mut state);
}
