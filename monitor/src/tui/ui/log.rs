//! The scrolling panes: the event log (filtered) and the build's own output. Both follow the
//! newest line until scrolled back.
use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{Areas, pane_block};
use crate::tui::{
    Stream,
    app::{App, Pane},
    log::{LogEntry, LogKind},
};

/// (first index shown, how many) of `len` lines in `height` rows, `back` lines up from the end.
fn tail_window(len: usize, height: usize, back: usize) -> (usize, usize) {
    let back = back.min(len.saturating_sub(height));
    let end = len - back;
    let start = end.saturating_sub(height);
    (start, end - start)
}

fn entry_line(e: &LogEntry, first_ns: u64) -> Line<'static> {
    let t = e.time_ns.saturating_sub(first_ns) as f64 / 1e9;
    let style = match e.kind {
        LogKind::Lost => Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
        _ if e.failed => Style::new().fg(Color::DarkGray),
        LogKind::Network => Style::new().fg(Color::Red),
        LogKind::Exec => Style::new().fg(Color::Cyan),
        LogKind::Write => Style::new().fg(Color::Magenta),
        LogKind::Read => Style::new(),
        LogKind::Process | LogKind::MacroLib => Style::new().fg(Color::Gray),
    };
    let who_style = if e.krate.is_some() {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    Line::from(vec![
        Span::styled(format!("+{t:.3}s "), Style::new().fg(Color::DarkGray)),
        Span::styled(format!("[{}] ", e.pid), Style::new().fg(Color::DarkGray)),
        Span::styled(format!("{} ", e.who), who_style),
        Span::styled(e.what.clone(), style),
    ])
}

pub fn draw_events(frame: &mut Frame<'_>, area: Rect, app: &App, areas: &Areas) {
    let selected = app.selected_crate();
    let shown: Vec<&LogEntry> = app.log.filtered(&app.filter, selected.as_ref()).collect();
    let height = area.height.saturating_sub(2) as usize;
    let (start, n) = tail_window(shown.len(), height, app.log_back);
    let mut extra = if app.filter.is_default() {
        format!("{}", shown.len())
    } else {
        format!(
            "{}/{} · {}",
            shown.len(),
            app.log.len(),
            app.filter.describe()
        )
    };
    if app.log_back > 0 && start + n < shown.len() {
        extra.push_str(" · paused (End follows)");
    }
    let block = pane_block(app, Pane::Log, areas, extra);
    if shown.is_empty() {
        let text = if app.log.is_empty() {
            "No event yet."
        } else {
            "No event matches the filter (f to change it)."
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, Style::new().fg(Color::DarkGray))).block(block),
            area,
        );
        return;
    }
    let first_ns = app.model.first_ns.unwrap_or(0);
    let lines: Vec<Line<'static>> = shown[start..start + n]
        .iter()
        .map(|e| entry_line(e, first_ns))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

pub fn draw_output(frame: &mut Frame<'_>, area: Rect, app: &App, areas: &Areas) {
    let lines = &app.output.lines;
    let height = area.height.saturating_sub(2) as usize;
    let (start, n) = tail_window(lines.len(), height, app.output_back);
    let mut extra = format!("{} lines", lines.len());
    if app.output.dropped > 0 {
        extra.push_str(&format!(" ({} dropped)", app.output.dropped));
    }
    if app.output_back > 0 && start + n < lines.len() {
        extra.push_str(" · paused (End follows)");
    }
    let block = pane_block(app, Pane::Output, areas, extra);
    if lines.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "No output from the build yet.",
                Style::new().fg(Color::DarkGray),
            ))
            .block(block),
            area,
        );
        return;
    }
    let shown: Vec<Line<'static>> = lines
        .range(start..start + n)
        .map(|l| {
            let text = l.text.trim_start();
            let style = if text.starts_with("error") {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else if text.starts_with("warning") {
                Style::new().fg(Color::Yellow)
            } else if l.stream == Stream::Stdout {
                Style::new()
            } else {
                Style::new().fg(Color::Gray)
            };
            Line::styled(l.text.clone(), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}
