//! What keys do to the view's state: moving, scrolling, popups, accepting findings.
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::*;

impl App {
    pub(super) fn key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c'));
        if let Some(popup) = self.popup.take() {
            self.popup_key(popup, key, ctrl_c);
            return;
        }
        self.status = None;
        if ctrl_c {
            self.ask_quit();
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.ask_quit(),
            KeyCode::Char('?') => self.popup = Some(Popup::Help),
            KeyCode::Tab => self.cycle_focus(1),
            KeyCode::BackTab => self.cycle_focus(Pane::ALL.len() - 1),
            KeyCode::Char(c @ '1'..='5') => {
                let index = c as usize - '1' as usize;
                self.focus_pane(Pane::ALL[index]);
            }
            KeyCode::Char('f') => self.popup = Some(Popup::Filter),
            KeyCode::Char('/') => {
                self.focus_pane(Pane::Log);
                self.popup = Some(Popup::Search {
                    previous: self.filter.text.clone(),
                });
            }
            KeyCode::Char('a') => self.start_accept(),
            KeyCode::Enter => self.enter(),
            KeyCode::Esc if self.focus == Pane::Detail => self.focus = Pane::Crates,
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(self.pane_height(self.focus) as isize)),
            KeyCode::PageDown => self.move_by(self.pane_height(self.focus) as isize),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
            _ => {}
        }
    }

    fn ask_quit(&mut self) {
        // An attached view only watches: the build goes on under the guard.
        if self.running() && !self.attached {
            self.popup = Some(Popup::ConfirmQuit);
        } else {
            self.quit = Some(QuitReason::User);
        }
    }

    fn cycle_focus(&mut self, step: usize) {
        let next = Pane::ALL[(self.focus.index() + step) % Pane::ALL.len()];
        self.focus_pane(next);
    }

    fn focus_pane(&mut self, pane: Pane) {
        self.focus = pane;
        if pane != Pane::Crates {
            self.bottom = pane;
        }
    }

    fn enter(&mut self) {
        match self.focus {
            Pane::Crates => self.focus_pane(Pane::Detail),
            Pane::Findings => {
                if let Some(i) = self.selected_finding_index() {
                    let f = &self.findings[i];
                    if let (Some(k), Some(r)) = (&f.krate, f.role) {
                        self.selected_crate = Some((k.clone(), r));
                        self.detail_scroll = 0;
                    }
                    self.popup = Some(Popup::Finding(finding_key(f)));
                }
            }
            Pane::Detail | Pane::Log | Pane::Output => {}
        }
    }

    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Pane::Crates => {
                let rows = self.crate_rows();
                let current = self.selected_crate_index(&rows);
                if let Some(i) = step(current, delta, rows.len()) {
                    let key = rows[i].key.clone();
                    self.select_crate(key);
                }
            }
            Pane::Findings => {
                let current = self.selected_finding_index();
                if let Some(i) = step(current, delta, self.findings.len()) {
                    self.selected_finding = Some(finding_key(&self.findings[i]));
                }
            }
            Pane::Detail => {
                let max = self
                    .viewport
                    .get()
                    .detail_lines
                    .saturating_sub(self.pane_height(Pane::Detail));
                self.detail_scroll = offset(self.detail_scroll, delta).min(max);
            }
            Pane::Log => {
                let selected = self.selected_crate();
                let len = self.log.filtered(&self.filter, selected.as_ref()).count();
                let max = len.saturating_sub(self.pane_height(Pane::Log));
                self.log_back = offset(self.log_back, -delta).min(max);
            }
            Pane::Output => {
                let max = self
                    .output
                    .lines
                    .len()
                    .saturating_sub(self.pane_height(Pane::Output));
                self.output_back = offset(self.output_back, -delta).min(max);
            }
        }
    }

    fn popup_key(&mut self, popup: Popup, key: KeyEvent, ctrl_c: bool) {
        match popup {
            Popup::Help | Popup::Finding(_) | Popup::Message { .. } => {
                // Any of these closes it; everything else leaves it open.
                if !matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | '?')
                ) && !ctrl_c
                {
                    if let (Popup::Finding(_), KeyCode::Char('a')) = (&popup, key.code) {
                        self.focus_pane(Pane::Findings);
                        self.start_accept();
                        return;
                    }
                    self.popup = Some(popup);
                }
            }
            Popup::ConfirmQuit => match key.code {
                KeyCode::Char('y' | 'Y') => self.confirm_stop(),
                _ if ctrl_c => self.confirm_stop(),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                    self.status = Some("still watching".to_owned());
                }
                _ => self.popup = Some(popup),
            },
            Popup::Filter => {
                let close = match key.code {
                    KeyCode::Esc | KeyCode::Enter | KeyCode::Char('f' | 'q') => true,
                    KeyCode::Char('b') => {
                        self.filter.crates_only = !self.filter.crates_only;
                        false
                    }
                    KeyCode::Char('s') => {
                        self.filter.selected_only = !self.filter.selected_only;
                        false
                    }
                    KeyCode::Char('x') => {
                        self.filter = LogFilter::default();
                        false
                    }
                    KeyCode::Char('/') => {
                        self.focus_pane(Pane::Log);
                        self.popup = Some(Popup::Search {
                            previous: self.filter.text.clone(),
                        });
                        return;
                    }
                    KeyCode::Char(c) => {
                        self.filter.kinds.toggle(c);
                        false
                    }
                    _ => false,
                };
                self.log_back = 0;
                if !close {
                    self.popup = Some(popup);
                }
            }
            Popup::Search { previous } => {
                match key.code {
                    KeyCode::Enter => {}
                    KeyCode::Esc => self.filter.text = previous,
                    KeyCode::Backspace => {
                        self.filter.text.pop();
                        self.popup = Some(Popup::Search { previous });
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        self.filter.text.push(c);
                        self.popup = Some(Popup::Search { previous });
                    }
                    _ if ctrl_c => self.filter.text = previous,
                    _ => self.popup = Some(Popup::Search { previous }),
                }
                self.log_back = 0;
            }
            Popup::Accept {
                finding,
                change,
                diff,
                scroll,
            } => match key.code {
                KeyCode::Char('y' | 'Y') => self.apply(&finding, &change),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                    self.status = Some("not accepted; nothing written".to_owned());
                }
                _ if ctrl_c => self.status = Some("not accepted; nothing written".to_owned()),
                KeyCode::Up | KeyCode::Char('k') => {
                    self.popup = Some(Popup::Accept {
                        finding,
                        change,
                        diff,
                        scroll: scroll.saturating_sub(1),
                    });
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.popup = Some(Popup::Accept {
                        finding,
                        change,
                        diff,
                        scroll: scroll + 1,
                    });
                }
                _ => {
                    self.popup = Some(Popup::Accept {
                        finding,
                        change,
                        diff,
                        scroll,
                    })
                }
            },
        }
    }

    fn confirm_stop(&mut self) {
        if self.running() {
            self.stop_pending = true;
            self.quit = Some(QuitReason::StopBuild);
        } else {
            self.quit = Some(QuitReason::User);
        }
    }

    /// `a`: computes the change accepting the current finding makes, and shows it.
    fn start_accept(&mut self) {
        if self.attached {
            self.status = Some(
                "attached: accept findings into the workspace's .buildwatch/profiles with \
                 `buildwatch learn` or by editing them"
                    .to_owned(),
            );
            return;
        }
        let Some(f) = self.current_finding() else {
            self.status = Some("no finding selected".to_owned());
            return;
        };
        if let Some(path) = self.accepted(f) {
            self.status = Some(format!("already accepted into {}", path.display()));
            return;
        }
        let key = finding_key(f);
        let vars = f
            .krate
            .as_ref()
            .and_then(|k| self.vars.get(k))
            .cloned()
            .unwrap_or_default();
        match learn::accept(f, &self.profiles_dir, &vars) {
            Ok(change) if change.before.as_deref() == Some(change.after.as_str()) => {
                self.status = Some(format!(
                    "{} already allows this; nothing to change",
                    change.path.display()
                ));
            }
            Ok(change) => {
                let diff = learn::diff(&change);
                self.popup = Some(Popup::Accept {
                    finding: key,
                    change,
                    diff,
                    scroll: 0,
                });
            }
            Err(e) => {
                self.popup = Some(Popup::Message {
                    title: "Cannot accept this finding".to_owned(),
                    text: e.to_string(),
                });
            }
        }
    }

    fn apply(&mut self, finding: &FindingKey, change: &ProfileChange) {
        match change.apply() {
            Ok(()) => {
                self.accepted.insert(finding.clone(), change.path.clone());
                if !self.written.contains(&change.path) {
                    self.written.push(change.path.clone());
                }
                if let Some(k) = &finding.1 {
                    self.profiled.insert(crate_key(&k.name));
                }
                self.status = Some(format!(
                    "wrote {} (applies from the next run)",
                    change.path.display()
                ));
            }
            Err(e) => {
                self.popup = Some(Popup::Message {
                    title: "Writing the profile failed".to_owned(),
                    text: e.to_string(),
                });
            }
        }
    }
}

/// A selection moved by `delta` within `len` items.
fn step(current: Option<usize>, delta: isize, len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let current = current.unwrap_or(0) as isize;
    Some(current.saturating_add(delta).clamp(0, len as isize - 1) as usize)
}

/// A scroll offset moved by `delta`, not below 0.
fn offset(current: usize, delta: isize) -> usize {
    (current as isize).saturating_add(delta).max(0) as usize
}
