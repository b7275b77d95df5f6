//! The event log: the most recent events as one-line entries, and the filter the view applies
//! to them (kinds, a search text, only build scripts and proc-macros, only the selected crate).
use std::collections::VecDeque;

use super::model::{CrateKey, file_name, shorten};
use crate::{
    attribution::{Actor, Role},
    model::{ConnectSyscall, Event, EventKind, shown},
};

/// Entries kept; older ones are dropped.
pub const LOG_CAPACITY: usize = 20_000;

/// What an entry is about, for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A program executed.
    Exec,
    /// A file opened for reading.
    Read,
    /// A file opened for writing.
    Write,
    /// A connect().
    Network,
    /// A fork or an exit.
    Process,
    /// Lost records.
    Lost,
    /// A proc-macro library loaded by rustc.
    MacroLib,
}

/// One event, ready to show.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// When (ns since the epoch).
    pub time_ns: u64,
    /// Process id.
    pub pid: u32,
    /// What kind of thing happened.
    pub kind: LogKind,
    /// Who answers for it, short (`netprobe bs`, `cc ← lingerer bs`, `rustc app`, `cargo`).
    pub who: String,
    /// What happened (`connect 127.0.0.1:4444`).
    pub what: String,
    /// The crate and role it counts for, if a build script or proc-macro.
    pub krate: Option<CrateKey>,
    /// The operation failed.
    pub failed: bool,
}

impl LogEntry {
    /// The entry for an attributed event.
    pub fn from_event(event: &Event) -> Self {
        let (kind, what, failed) = match &event.kind {
            EventKind::Exec(x) => {
                let mut s = format!("exec {}", x.image());
                for a in x.argv.iter().skip(1).take(8) {
                    s.push(' ');
                    s.push_str(a);
                }
                (LogKind::Exec, shorten(&s, 200), false)
            }
            EventKind::Open(o) => {
                let (kind, verb) = if o.writes() {
                    (LogKind::Write, "write")
                } else {
                    (LogKind::Read, "read")
                };
                let mut s = format!("{verb} {}", o.path);
                if o.compat {
                    s.push_str(" (int 0x80)");
                }
                if let Some(e) = &o.error {
                    s.push_str(&format!(" ({e})"));
                }
                (kind, s, o.result < 0)
            }
            EventKind::Dns(d) => (
                LogKind::Network,
                format!("dns {} {} via {}:{}", d.qtype, d.name, d.server, d.port),
                false,
            ),
            EventKind::Tamper(t) => (
                LogKind::Process,
                format!(
                    "{} {} on process {}",
                    t.syscall,
                    t.request.as_deref().unwrap_or(""),
                    t.target
                ),
                false,
            ),
            EventKind::IoUring(u) => (LogKind::Process, format!("io_uring {}", u.op), false),
            EventKind::Killed(k) => (LogKind::Process, k.describe(), true),
            EventKind::CompatSyscall(c) => (
                LogKind::Process,
                format!("int 0x80 {}", c.syscall),
                c.result < 0,
            ),
            EventKind::Socket(s) => (
                LogKind::Network,
                format!(
                    "{}{}",
                    s.subject(),
                    if s.refused {
                        " (refused)"
                    } else if s.killed {
                        " (killed)"
                    } else {
                        ""
                    }
                ),
                s.result < 0,
            ),
            EventKind::Connect(c) => {
                let verb = if c.syscall == ConnectSyscall::Connect {
                    "connect".to_owned()
                } else {
                    format!("connect ({})", c.syscall)
                };
                let mut s = format!("{verb} {}", c.endpoint());
                let failed = c.result < 0 && c.error.as_deref() != Some("EINPROGRESS");
                if let Some(e) = &c.error {
                    s.push_str(&format!(" ({e})"));
                }
                (LogKind::Network, s, failed)
            }
            EventKind::Fork(f) => (LogKind::Process, format!("fork → {}", f.child_pid), false),
            EventKind::Exit(x) => {
                let s = match (x.code, x.signal) {
                    (_, Some(sig)) => format!("exit: signal {sig}"),
                    (Some(code), None) => format!("exit {code}"),
                    (None, None) => "exit".to_owned(),
                };
                (LogKind::Process, s, false)
            }
            EventKind::Lost(l) => (
                LogKind::Lost,
                format!("LOST {} records ({})", l.count, l.reason),
                true,
            ),
            EventKind::MacroLib(m) => (
                LogKind::MacroLib,
                format!("proc-macro library {}", file_name(&m.path)),
                false,
            ),
        };
        let krate = event.actor.as_ref().and_then(|a| {
            let role = a.policy_role();
            matches!(role, Role::BuildScript | Role::ProcMacro)
                .then(|| a.crate_ref().map(|k| (k, role)))
                .flatten()
        });
        Self {
            time_ns: event.time_ns,
            pid: event.pid,
            kind,
            // Paths, argv and names come from the build: shown, never obeyed, on the screen.
            who: shown(&who(event.actor.as_ref(), &event.comm)).into_owned(),
            what: shown(&what).into_owned(),
            krate,
            failed,
        }
    }
}

/// A short name for an actor.
pub fn who(actor: Option<&Actor>, comm: &str) -> String {
    let Some(a) = actor else {
        return comm.to_owned();
    };
    let short = |r: Role| match r {
        Role::BuildScript => "bs",
        Role::ProcMacro => "pm",
        Role::Rustc => "rustc",
        Role::Cargo => "cargo",
        Role::Tool => "tool",
        Role::Command => "cmd",
    };
    match (a.role, &a.krate) {
        (Role::Tool, Some(k)) => {
            let tool = a.chain.last().map(String::as_str).unwrap_or(comm);
            format!("{tool} ← {k} {}", short(a.policy_role()))
        }
        (Role::Rustc, Some(k)) => format!("rustc {k}"),
        (role, Some(k)) => format!("{k} {}", short(role)),
        (role, None) => short(role).to_owned(),
    }
}

/// Which kinds the log shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindFilter {
    /// Programs executed.
    pub exec: bool,
    /// Reads.
    pub read: bool,
    /// Writes.
    pub write: bool,
    /// Network.
    pub network: bool,
    /// Forks and exits.
    pub process: bool,
    /// Lost records (shown unless turned off explicitly).
    pub lost: bool,
    /// Proc-macro libraries loaded.
    pub macro_lib: bool,
}

impl Default for KindFilter {
    fn default() -> Self {
        Self {
            exec: true,
            read: true,
            write: true,
            network: true,
            process: true,
            lost: true,
            macro_lib: true,
        }
    }
}

impl KindFilter {
    fn shows(&self, kind: LogKind) -> bool {
        match kind {
            LogKind::Exec => self.exec,
            LogKind::Read => self.read,
            LogKind::Write => self.write,
            LogKind::Network => self.network,
            LogKind::Process => self.process,
            LogKind::Lost => self.lost,
            LogKind::MacroLib => self.macro_lib,
        }
    }

    /// The toggles as (key, label, on), in the order the filter dialog lists them.
    pub fn toggles(&self) -> [(char, &'static str, bool); 7] {
        [
            ('e', "exec", self.exec),
            ('r', "read", self.read),
            ('w', "write", self.write),
            ('n', "network", self.network),
            ('p', "fork/exit", self.process),
            ('l', "lost", self.lost),
            ('m', "proc-macro libraries", self.macro_lib),
        ]
    }

    /// Flips the toggle for `key`; false if `key` is not one.
    pub fn toggle(&mut self, key: char) -> bool {
        let flag = match key {
            'e' => &mut self.exec,
            'r' => &mut self.read,
            'w' => &mut self.write,
            'n' => &mut self.network,
            'p' => &mut self.process,
            'l' => &mut self.lost,
            'm' => &mut self.macro_lib,
            _ => return false,
        };
        *flag = !*flag;
        true
    }
}

/// The log's filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Kinds shown.
    pub kinds: KindFilter,
    /// Only entries containing this (case-insensitive), when not empty.
    pub text: String,
    /// Only build scripts, proc-macros and what they ran.
    pub crates_only: bool,
    /// Only the crate selected in the crate table.
    pub selected_only: bool,
}

impl LogFilter {
    /// Whether `entry` passes, given the selected crate.
    pub fn matches(&self, entry: &LogEntry, selected: Option<&CrateKey>) -> bool {
        if !self.kinds.shows(entry.kind) {
            return false;
        }
        if self.crates_only && entry.krate.is_none() && entry.kind != LogKind::Lost {
            return false;
        }
        if self.selected_only && (selected.is_none() || entry.krate.as_ref() != selected) {
            return false;
        }
        if !self.text.is_empty() {
            let needle = self.text.to_lowercase();
            return entry.who.to_lowercase().contains(&needle)
                || entry.what.to_lowercase().contains(&needle);
        }
        true
    }

    /// Nothing is filtered out.
    pub fn is_default(&self) -> bool {
        *self == LogFilter::default()
    }

    /// A short description of what is filtered (for the pane's title).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let off: Vec<&str> = self
            .kinds
            .toggles()
            .iter()
            .filter(|(_, _, on)| !on)
            .map(|(_, label, _)| *label)
            .collect();
        if !off.is_empty() {
            parts.push(format!("hiding {}", off.join(",")));
        }
        if self.crates_only {
            parts.push("build scripts & proc-macros".to_owned());
        }
        if self.selected_only {
            parts.push("selected crate".to_owned());
        }
        if !self.text.is_empty() {
            parts.push(format!("/{}", self.text));
        }
        parts.join(" · ")
    }
}

/// The most recent entries.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    entries: VecDeque<LogEntry>,
    /// Entries dropped to stay within [`LOG_CAPACITY`].
    pub dropped: u64,
}

impl EventLog {
    /// Adds an entry.
    pub fn push(&mut self, entry: LogEntry) {
        if self.entries.len() == LOG_CAPACITY {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
    }

    /// Entries passing `filter`, oldest first.
    pub fn filtered<'a>(
        &'a self,
        filter: &'a LogFilter,
        selected: Option<&'a CrateKey>,
    ) -> impl Iterator<Item = &'a LogEntry> + 'a {
        self.entries
            .iter()
            .filter(move |e| filter.matches(e, selected))
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
