//! Dialogs over the panes: help, the accept diff, quit confirmation, the log filter and search,
//! a finding in full, messages.
use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, BorderType, Clear, Paragraph, Wrap},
};

use crate::tui::app::{App, Popup};

/// Keys and what they do, for the help dialog (and README).
pub const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move the selection, or scroll the pane"),
    (
        "PgUp PgDn  g G",
        "a page up / down; the start / end (End follows)",
    ),
    ("Tab  Shift-Tab", "next / previous pane"),
    ("1 … 5", "crates, detail, findings, events, build output"),
    ("Enter", "crate: its details; finding: the finding in full"),
    ("a", "accept the selected finding into the crate's profile"),
    ("", "(shows the change first and asks y/n)"),
    ("f", "event filter: kinds, crates only, selected crate"),
    ("/", "search the events"),
    ("Esc", "close a dialog; leave the detail pane"),
    ("q  Ctrl-C", "quit (asks first if the build still runs)"),
    ("?", "this help"),
];

/// What each pane shows, for the help dialog.
const PANES: &[(&str, &str)] = &[
    ("Crates", "build scripts and proc-macros, findings first"),
    ("Detail", "findings, process tree, programs, files, network"),
    ("Findings", "what profiles and the baseline do not allow"),
    ("Events", "every event, newest last"),
    ("Build output", "cargo's output, printed again at exit"),
];

fn dialog<'a>(title: &'a str, color: Color) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Double)
        .border_style(Style::new().fg(color))
        .title(Span::styled(
            format!(" {title} "),
            Style::new().add_modifier(Modifier::BOLD),
        ))
}

/// A centered area of at most `width`×`height` within `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    area.centered(
        Constraint::Length(width.min(area.width)),
        Constraint::Length(height.min(area.height)),
    )
}

fn show(frame: &mut Frame<'_>, area: Rect, block: Block<'_>, lines: Vec<Line<'_>>, scroll: u16) {
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}

pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let Some(popup) = &app.popup else { return };
    let screen = frame.area();
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let dim = Style::new().fg(Color::DarkGray);
    match popup {
        Popup::Help => {
            let mut lines = vec![Line::styled("Keys", bold.fg(Color::Cyan))];
            for (k, what) in KEYS {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {k:<16}"), bold),
                    Span::raw(*what),
                ]));
            }
            lines.push(Line::styled("Panes", bold.fg(Color::Cyan)));
            for (p, what) in PANES {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {p:<16}"), bold),
                    Span::raw(*what),
                ]));
            }
            lines.push(Line::styled(
                "bs build script · pm proc-macro · ERROR fails `ci` · warn: reported",
                dim,
            ));
            let area = centered(screen, 80, lines.len() as u16 + 2);
            show(frame, area, dialog("Help", Color::Cyan), lines, 0);
        }
        Popup::ConfirmQuit => {
            let lines = vec![
                Line::raw("The build is still running."),
                Line::raw("buildwatch never leaves it running unwatched."),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", bold.fg(Color::Red)),
                    Span::raw("  stop it (SIGTERM to its process group) and quit"),
                ]),
                Line::from(vec![
                    Span::styled("n", bold.fg(Color::Green)),
                    Span::raw("  keep watching"),
                ]),
            ];
            let area = centered(screen, 56, 7);
            show(frame, area, dialog("Quit?", Color::Red), lines, 0);
        }
        Popup::Filter => {
            let f = &app.filter;
            let check = |on: bool| if on { "[x]" } else { "[ ]" };
            let mut lines = vec![Line::styled("Event kinds", bold.fg(Color::Cyan))];
            for (key, label, on) in f.kinds.toggles() {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {key} "), bold),
                    Span::raw(format!("{} {label}", check(on))),
                ]));
            }
            lines.push(Line::styled("Who", bold.fg(Color::Cyan)));
            lines.push(Line::from(vec![
                Span::styled("  b ", bold),
                Span::raw(format!(
                    "{} only build scripts, proc-macros and what they ran",
                    check(f.crates_only)
                )),
            ]));
            lines.push(Line::from(vec![
                Span::styled("  s ", bold),
                Span::raw(format!(
                    "{} only the selected crate",
                    check(f.selected_only)
                )),
            ]));
            lines.push(Line::from(vec![
                Span::styled("  / ", bold),
                Span::raw(if f.text.is_empty() {
                    "search: (none)".to_owned()
                } else {
                    format!("search: {}", f.text)
                }),
            ]));
            lines.push(Line::styled("  x reset · Esc close", dim));
            let area = centered(screen, 64, lines.len() as u16 + 2);
            show(frame, area, dialog("Event filter", Color::Cyan), lines, 0);
        }
        Popup::Search { .. } => {
            let lines = vec![Line::from(vec![
                Span::styled("/", bold),
                Span::raw(app.filter.text.clone()),
                Span::styled("█", Style::new().fg(Color::Cyan)),
            ])];
            let area = centered(screen, 60, 3);
            show(frame, area, dialog("Search events", Color::Cyan), lines, 0);
        }
        Popup::Accept {
            finding,
            change,
            diff,
            scroll,
        } => {
            let mut lines = Vec::new();
            if let Some(f) = app.finding(finding) {
                lines.push(Line::styled(f.headline(), bold));
            }
            let action = if change.before.is_some() {
                "change"
            } else {
                "create"
            };
            lines.push(Line::from(vec![
                Span::raw(format!("This will {action} ")),
                Span::styled(change.path.display().to_string(), bold),
                Span::raw(":"),
            ]));
            lines.push(Line::raw(""));
            for l in diff.lines().skip(*scroll) {
                let style = if l.starts_with('+') {
                    Style::new().fg(Color::Green)
                } else if l.starts_with('-') {
                    Style::new().fg(Color::Red)
                } else {
                    dim
                };
                lines.push(Line::styled(l.to_owned(), style));
            }
            let height = (lines.len() as u16 + 4).max(10);
            let area = centered(screen, 100, height);
            let block =
                dialog("Accept this finding?", Color::Yellow).title_bottom(Line::from(vec![
                    Span::styled(" y ", bold.fg(Color::Green)),
                    Span::raw("write it "),
                    Span::styled(" n ", bold.fg(Color::Red)),
                    Span::raw("cancel "),
                    Span::styled(" ↑↓ ", bold),
                    Span::raw("scroll "),
                ]));
            show(frame, area, block, lines, 0);
        }
        Popup::Finding(key) => {
            let Some(f) = app.finding(key) else { return };
            let field = |name: &str, value: String| {
                Line::from(vec![
                    Span::styled(format!("{name:<10}"), bold),
                    Span::raw(value),
                ])
            };
            let mut lines = vec![
                field(
                    "code",
                    format!("{} ({:?})", f.code, f.severity).to_lowercase(),
                ),
                Line::styled(format!("          {}", f.code.description()), dim),
                field(
                    "crate",
                    if f.exact() {
                        f.krate
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    } else {
                        "one of the candidates below".to_owned()
                    },
                ),
                field("role", f.role.map(|r| r.to_string()).unwrap_or_default()),
                field("detail", crate::model::shown(&f.detail).into_owned()),
                field("count", f.count.to_string()),
            ];
            if let Some(p) = &f.process {
                let mut chain = p.chain.join(" → ");
                if chain.is_empty() {
                    chain = p.exe.clone();
                }
                lines.push(field(
                    "process",
                    format!("{} [pid {}]", crate::model::Shown(&chain), p.pid),
                ));
            }
            lines.push(field(
                "profile",
                f.profile.clone().unwrap_or_else(|| "none".to_owned()),
            ));
            if let Some(list) = &f.list {
                lines.push(field("allow in", format!("[{}].{list}", role_table(f))));
            }
            if !f.exact() {
                let c: Vec<String> = f.candidates.iter().map(ToString::to_string).collect();
                lines.push(field(
                    "attribution",
                    format!("not exact: any of {}", c.join(", ")),
                ));
            }
            if let Some(path) = app.accepted(f) {
                lines.push(field("accepted", path.display().to_string()));
            }
            let area = centered(screen, 100, lines.len() as u16 + 4);
            show(frame, area, dialog("Finding", Color::Yellow), lines, 0);
        }
        Popup::Message { title, text } => {
            let lines: Vec<Line<'_>> = text.lines().map(Line::raw).collect();
            let area = centered(screen, 80, lines.len() as u16 + 4);
            show(frame, area, dialog(title, Color::Red), lines, 0);
        }
    }
}

fn role_table(f: &crate::policy::Finding) -> String {
    f.role.map(|r| r.to_string()).unwrap_or_default()
}
