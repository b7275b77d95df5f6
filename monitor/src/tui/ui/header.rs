//! The header: command, elapsed time, state; build progress, event rate, losses.
use std::time::Duration;

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use crate::{command::Status, tui::app::App};

/// `mm:ss` (`h:mm:ss` past an hour).
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let state = match (app.ended, app.pid) {
        (Some((status, _)), _) => {
            let ok = status == Some(Status::Exited(0));
            let status = match status {
                Some(Status::Exited(code)) => format!("exit {code}"),
                Some(Status::Signaled(sig)) => format!("killed by signal {sig}"),
                None => "status unknown".to_owned(),
            };
            Span::styled(
                format!(
                    "{} {status} in {}",
                    if ok { "✔" } else { "✘" },
                    clock(app.elapsed())
                ),
                Style::new()
                    .fg(if ok { Color::Green } else { Color::Red })
                    .add_modifier(Modifier::BOLD),
            )
        }
        (None, Some(pid)) if app.attached() => Span::styled(
            format!("● running {} · attached to {pid}", clock(app.elapsed())),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        (None, Some(_)) => Span::styled(
            format!("● running {}", clock(app.elapsed())),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        (None, None) => Span::styled("○ starting", Style::new().fg(Color::DarkGray)),
    };
    let p = &app.model.progress;
    let lost = app.lost();
    let lost_style = if lost > 0 {
        Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let dim = Style::new().fg(Color::DarkGray);
    let rate = if app.running() {
        format!(" {}/s", app.events_per_sec())
    } else {
        String::new()
    };
    let first = Line::from(vec![
        Span::styled(" buildwatch ", bold.fg(Color::Black).bg(Color::Cyan)),
        Span::raw(" "),
        state,
        Span::raw(" · "),
        Span::styled(format!("lost {lost}"), lost_style),
        Span::raw(format!(" · {} events", app.model.events)),
        Span::styled(rate, dim),
        Span::raw("  "),
        Span::styled(app.command.join(" "), bold),
    ]);
    let running = |n: usize| {
        Span::styled(
            if n > 0 {
                format!(" ({n} running)")
            } else {
                String::new()
            },
            Style::new().fg(Color::Yellow),
        )
    };
    let second = Line::from(vec![
        Span::raw(" rustc "),
        Span::styled(p.rustc_done.to_string(), bold),
        Span::raw(" done"),
        running(p.rustc_running.len()),
        Span::raw(" · build scripts "),
        Span::styled(p.build_scripts_done.to_string(), bold),
        Span::raw(" run"),
        running(p.build_scripts_running.len()),
        Span::raw(" · proc-macros "),
        Span::styled(p.proc_macros.len().to_string(), bold),
        Span::raw(" seen"),
    ]);
    frame.render_widget(Paragraph::new(vec![first, second]), area);
}
