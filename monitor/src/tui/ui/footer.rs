//! The footer: a status message when there is one, else the keys that apply now.
use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use crate::tui::app::{App, Pane, Popup};

/// (key, what it does) for the current state.
pub fn hints(app: &App) -> Vec<(&'static str, &'static str)> {
    match &app.popup {
        Some(Popup::Accept { .. }) => {
            vec![("y", "write it"), ("n/Esc", "cancel"), ("↑↓", "scroll")]
        }
        Some(Popup::ConfirmQuit) => {
            vec![("y", "stop the build and quit"), ("n/Esc", "keep watching")]
        }
        Some(Popup::Filter) => vec![
            ("e r w n p l m", "kinds"),
            ("b", "crates"),
            ("s", "selected"),
            ("/", "search"),
            ("x", "reset"),
            ("Esc", "close"),
        ],
        Some(Popup::Search { .. }) => vec![("Enter", "keep"), ("Esc", "cancel")],
        Some(Popup::Finding(_)) => vec![("a", "accept"), ("Esc", "close")],
        Some(Popup::Help | Popup::Message { .. }) => vec![("Esc", "close")],
        None => {
            let mut keys = vec![("↑↓", "move"), ("Tab", "pane")];
            match app.focus {
                Pane::Crates => keys.push(("Enter", "details")),
                Pane::Findings => keys.push(("Enter", "finding")),
                _ => {}
            }
            if !app.attached() {
                keys.push(("a", "accept"));
            }
            keys.extend([("f", "filter"), ("/", "search"), ("?", "help")]);
            // Attached: quitting leaves the build to the guard.
            keys.push(("q", if app.attached() { "detach" } else { "quit" }));
            keys
        }
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let line = if let Some(status) = &app.status {
        Line::styled(
            format!(" {status}"),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        )
    } else {
        let mut spans = vec![Span::raw(" ")];
        for (i, (key, what)) in hints(app).into_iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(
                key,
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {what}")));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
