//! The crate table: one row per crate and role, findings first.
use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Cell, Paragraph, Row, Table, TableState},
};

use super::{Areas, pane_block};
use crate::attribution::Role;
use crate::tui::app::{App, CrateStatus, Pane};

/// The colour of a status.
pub fn status_style(status: CrateStatus) -> Style {
    match status {
        CrateStatus::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        CrateStatus::Warning => Style::new().fg(Color::Yellow),
        CrateStatus::NoProfile => Style::new().fg(Color::Magenta),
        CrateStatus::Accepted => Style::new().fg(Color::Blue),
        CrateStatus::Ok => Style::new().fg(Color::Green),
    }
}

/// The selected row: reversed in the focused pane, shaded otherwise.
pub fn selection_style(focused: bool) -> Style {
    if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().bg(Color::DarkGray)
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, areas: &Areas) {
    let rows = app.crate_rows();
    let flagged = rows
        .iter()
        .filter(|r| matches!(r.status, CrateStatus::Error | CrateStatus::Warning))
        .count();
    let extra = if rows.is_empty() {
        String::new()
    } else {
        format!("{} · {flagged} with findings", rows.len())
    };
    let block = pane_block(app, Pane::Crates, areas, extra);
    if rows.is_empty() {
        let text = if app.running() {
            "No build script or proc-macro has run yet."
        } else {
            "No build script or proc-macro ran."
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, Style::new().fg(Color::DarkGray))).block(block),
            area,
        );
        return;
    }
    let selected = app.selected_crate_index(&rows);
    // Narrow tables name roles `bs`/`pm`, so that the crate's name keeps room.
    let short = area.width < 90;
    let body: Vec<Row<'_>> = rows
        .iter()
        .map(|r| {
            let (execs, reads, writes, net) = r
                .view
                .map(|v| (v.execs, v.reads, v.writes, v.network))
                .unwrap_or_default();
            let status = if r.pending > 0 {
                format!("{} ({})", r.status.label(), r.pending)
            } else {
                r.status.label().to_owned()
            };
            let ambiguous = r.view.is_some_and(|v| v.ambiguous);
            let role = match (short, r.key.1) {
                (true, Role::BuildScript) => "bs",
                (true, Role::ProcMacro) => "pm",
                (_, role) => role.as_str(),
            };
            let role = format!("{role}{}", if ambiguous { "?" } else { "" });
            let net_style = if net > 0 {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(r.key.0.name.clone()),
                Cell::from(r.key.0.version.clone().unwrap_or_default()),
                Cell::from(role),
                Cell::from(execs.to_string()),
                Cell::from(reads.to_string()),
                Cell::from(writes.to_string()),
                Cell::from(net.to_string()).style(net_style),
                Cell::from(status).style(status_style(r.status)),
            ])
        })
        .collect();
    let header = Row::new(vec![
        "crate", "version", "role", "exec", "read", "write", "net", "status",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let table = Table::new(
        body,
        [
            Constraint::Min(10),
            Constraint::Length(8),
            Constraint::Length(if short { 4 } else { 13 }),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(12),
        ],
    )
    .header(header)
    .block(block)
    .row_highlight_style(selection_style(app.focus == Pane::Crates))
    .highlight_symbol("▶ ");
    let mut state = TableState::new().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}
