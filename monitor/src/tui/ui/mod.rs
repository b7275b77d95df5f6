//! Rendering: a pure function of [`App`] (no I/O, no state changes, nothing that can panic on
//! empty data). One file per widget.
pub mod crates;
pub mod detail;
mod findings;
mod footer;
mod header;
mod log;
mod popup;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, BorderType},
};

use super::app::{App, Pane, Viewport};

/// Below this size the panes are stacked: the crate table above, one other pane below.
const WIDE_MIN: (u16, u16) = (120, 36);

/// Where each part of the screen goes; a pane that is not shown has no area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    /// Header (two lines).
    pub header: Rect,
    /// The crate table.
    pub crates: Rect,
    /// The selected crate's details.
    pub detail: Option<Rect>,
    /// The findings.
    pub findings: Option<Rect>,
    /// The event log.
    pub log: Option<Rect>,
    /// The build's output.
    pub output: Option<Rect>,
    /// Key hints or a status message (one line).
    pub footer: Rect,
    /// The panes are stacked (one shown below the crate table).
    pub compact: bool,
}

impl Areas {
    /// The area of `pane`, if shown.
    pub fn of(&self, pane: Pane) -> Option<Rect> {
        match pane {
            Pane::Crates => Some(self.crates),
            Pane::Detail => self.detail,
            Pane::Findings => self.findings,
            Pane::Log => self.log,
            Pane::Output => self.output,
        }
    }
}

/// The layout for a screen of `area` showing `app`.
pub fn areas(area: Rect, app: &App) -> Areas {
    let [header, main, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    if area.width >= WIDE_MIN.0 && area.height >= WIDE_MIN.1 {
        let [top, middle, bottom] = Layout::vertical([
            Constraint::Percentage(45),
            Constraint::Percentage(22),
            Constraint::Fill(1),
        ])
        .areas(main);
        let [crates, detail] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(top);
        let [log, output] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(bottom);
        Areas {
            header,
            crates,
            detail: Some(detail),
            findings: Some(middle),
            log: Some(log),
            output: Some(output),
            footer,
            compact: false,
        }
    } else {
        let [crates, below] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Fill(1)]).areas(main);
        let mut areas = Areas {
            header,
            crates,
            footer,
            compact: true,
            ..Areas::default()
        };
        match app.bottom {
            Pane::Crates | Pane::Detail => areas.detail = Some(below),
            Pane::Findings => areas.findings = Some(below),
            Pane::Log => areas.log = Some(below),
            Pane::Output => areas.output = Some(below),
        }
        areas
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let areas = areas(frame.area(), app);
    let mut viewport = Viewport::default();
    for pane in Pane::ALL {
        viewport.rows[pane.index()] = areas.of(pane).map_or(0, |r| r.height.saturating_sub(2));
    }
    viewport.detail_lines = detail::lines(app).len();
    app.viewport.set(viewport);
    header::draw(frame, areas.header, app);
    crates::draw(frame, areas.crates, app, &areas);
    if let Some(area) = areas.detail {
        detail::draw(frame, area, app, &areas);
    }
    if let Some(area) = areas.findings {
        findings::draw(frame, area, app, &areas);
    }
    if let Some(area) = areas.log {
        log::draw_events(frame, area, app, &areas);
    }
    if let Some(area) = areas.output {
        log::draw_output(frame, area, app, &areas);
    }
    footer::draw(frame, areas.footer, app);
    popup::draw(frame, app);
}

/// A pane's frame: highlighted when focused. In the stacked layout the pane below the crate
/// table shows the other panes' names as tabs.
fn pane_block<'a>(app: &App, pane: Pane, areas: &Areas, extra: String) -> Block<'a> {
    let focused = app.focus == pane;
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let title_style = |on: bool| {
        if on {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new().fg(Color::Gray)
        }
    };
    let mut spans = Vec::new();
    if areas.compact && pane != Pane::Crates {
        for (i, p) in Pane::ALL.iter().enumerate().skip(1) {
            if i > 1 {
                spans.push(Span::raw("│"));
            }
            spans.push(Span::styled(
                format!(" {} {} ", i + 1, p.title()),
                title_style(*p == pane),
            ));
        }
    } else {
        let n = Pane::ALL.iter().position(|p| *p == pane).unwrap_or(0) + 1;
        spans.push(Span::styled(
            format!(" {n} {} ", pane.title()),
            title_style(focused),
        ));
    }
    if !extra.is_empty() {
        spans.push(Span::raw(format!(" {extra} ")));
    }
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(Line::from(spans))
}
