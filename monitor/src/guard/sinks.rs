//! Where a guard's findings go: the system journal (structured fields, over journald's native
//! protocol: no libsystemd), a JSON Lines log, and a desktop notification to the build's user.
use std::{
    fs::File,
    io::{self, Write as _},
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use serde_json::{Value, json};

use super::builds::Ended;
use crate::policy::{Finding, Severity};

/// journald's socket for the native protocol.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Values longer than this are cut (one datagram per entry; journald's limit is far above).
const MAX_VALUE: usize = 8192;

/// syslog priorities.
pub const ERR: u8 = 3;
/// Warning.
pub const WARNING: u8 = 4;
/// Informational.
pub const INFO: u8 = 6;

/// The system journal, or stderr when there is none.
pub struct Journal {
    socket: Option<(UnixDatagram, PathBuf)>,
}

impl Journal {
    /// The journal at `path` ([`JOURNAL_SOCKET`]); without one, entries go to stderr (and a
    /// warning says so).
    pub fn open(path: &Path) -> Self {
        let socket = UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect(path).is_ok())
            .map(|s| (s, path.to_path_buf()));
        if socket.is_none() {
            eprintln!(
                "buildwatch guard: warning: no system journal at {} (journald not running?): \
                 findings go to stderr",
                path.display()
            );
        }
        Self { socket }
    }

    /// Whether entries reach a journal.
    pub fn connected(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one entry: `message` at `priority`, with `fields` (upper-case names).
    pub fn send(&self, priority: u8, message: &str, fields: &[(&str, String)]) {
        if let Some((socket, _)) = &self.socket {
            let entry = entry(priority, message, fields);
            if socket.send(&entry).is_ok() {
                return;
            }
        }
        let extra: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let prefix = if message.starts_with("buildwatch") {
            ""
        } else {
            "buildwatch guard: "
        };
        if extra.is_empty() {
            eprintln!("{prefix}{message}");
        } else {
            eprintln!("{prefix}{message} [{}]", extra.join(" "));
        }
    }
}

/// One entry in journald's native format: `KEY=value\n`, or for a value with a newline
/// `KEY\n<length, u64 little-endian><value>\n`.
pub fn entry(priority: u8, message: &str, fields: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |key: &str, value: &str| {
        let value = cut(value);
        if value.contains('\n') {
            out.extend_from_slice(key.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        } else {
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'\n');
    };
    put("MESSAGE", message);
    put("PRIORITY", &priority.to_string());
    put("SYSLOG_IDENTIFIER", "buildwatch");
    for (key, value) in fields {
        put(key, value);
    }
    out
}

fn cut(value: &str) -> &str {
    if value.len() <= MAX_VALUE {
        return value;
    }
    let mut end = MAX_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// The journal fields of a finding of a build.
pub fn finding_fields(build: &Ended, f: &Finding) -> Vec<(&'static str, String)> {
    let mut fields = vec![("CODE", f.code.as_str().to_owned())];
    if let Some(k) = &f.krate {
        fields.push(("CRATE", k.name.clone()));
        if let Some(v) = &k.version {
            fields.push(("VERSION", v.clone()));
        }
    }
    if let Some(r) = f.role {
        fields.push(("ROLE", r.as_str().to_owned()));
    }
    fields.push(("SEVERITY", severity(f.severity).to_owned()));
    fields.push(("SUBJECT", f.subject.clone()));
    if let Some(w) = &build.workspace {
        fields.push(("WORKSPACE", w.display().to_string()));
    } else if let Some(cwd) = &build.cwd {
        fields.push(("WORKSPACE", cwd.clone()));
    }
    fields.push(("BUILD_COMMAND", build.command.join(" ")));
    fields.push(("BUILD_PID", build.root.to_string()));
    if let Some(uid) = build.uid {
        fields.push(("BUILD_UID", uid.to_string()));
    }
    fields
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The JSON Lines log: one finding per line.
pub struct JsonLog {
    file: File,
    path: PathBuf,
}

impl JsonLog {
    /// Opens `path` for appending (created 0600).
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends the findings of `build`; an error names the file.
    pub fn write(&mut self, build: &Ended) -> Result<(), String> {
        let mut text = String::new();
        for f in &build.report.findings {
            text.push_str(&finding_line(build, f).to_string());
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| format!("cannot write the guard log {}: {e}", self.path.display()))
    }
}

/// A finding as the log writes it: the report's finding fields, then the build's.
pub fn finding_line(build: &Ended, f: &Finding) -> Value {
    let mut value = crate::report::finding_json(f);
    if let Value::Object(map) = &mut value {
        map.insert(
            "workspace".into(),
            json!(build.workspace.as_ref().map(|w| w.display().to_string())),
        );
        map.insert("command".into(), json!(build.command));
        map.insert("cwd".into(), json!(build.cwd));
        map.insert("build_pid".into(), json!(build.root));
        map.insert("uid".into(), json!(build.uid));
        map.insert(
            "build_started_ns".into(),
            json!(
                build
                    .started
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            ),
        );
        map.insert("unfinished".into(), json!(build.unfinished));
        map.insert("lost_events".into(), json!(build.report.lost_events));
    }
    value
}

/// Tells the build's user, on their desktop, that a build had errors: `notify-send` run as that
/// user on their session bus (`/run/user/UID/bus`). Best effort: nothing happens without a bus
/// or without notify-send.
pub fn notify(build: &Ended) {
    let Some(uid) = build.uid else { return };
    let errors: Vec<&Finding> = build
        .report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        return;
    }
    let bus = PathBuf::from(format!("/run/user/{uid}/bus"));
    let Some(program) = ["/usr/bin/notify-send", "/bin/notify-send"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return;
    };
    if !bus.exists() {
        return;
    }
    let Some(user) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
    else {
        return;
    };
    let title = format!("buildwatch: {} finding(s) in a build", errors.len());
    let body: Vec<String> = errors.iter().take(5).map(|f| f.headline()).collect();
    let mut cmd = std::process::Command::new(program);
    use std::os::unix::process::CommandExt as _;
    cmd.args(["--urgency=critical", "--app-name=buildwatch", &title])
        .arg(body.join("\n"))
        .env_clear()
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", bus.display()),
        )
        .env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"))
        .env("HOME", &user.dir)
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .uid(uid)
        .gid(user.gid.as_raw());
    // Reaped by a thread of its own: a notification never holds the guard up.
    if let Ok(mut child) = cmd.spawn() {
        std::thread::spawn(move || child.wait());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_protocol_entries() {
        let e = entry(3, "two\nlines", &[("CRATE", "keyscan".into())]);
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(
            b"two\nlines\nPRIORITY=3\nSYSLOG_IDENTIFIER=buildwatch\nCRATE=keyscan\n",
        );
        assert_eq!(e, want);
        let long = "é".repeat(MAX_VALUE);
        assert!(cut(&long).len() <= MAX_VALUE);
    }

    #[test]
    fn entries_reach_a_journal_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("socket");
        let server = UnixDatagram::bind(&path).expect("bind");
        let journal = Journal::open(&path);
        assert!(journal.connected());
        journal.send(ERR, "finding", &[("CODE", "sensitive-read".into())]);
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.contains("CODE=sensitive-read\n"), "{text}");
        assert!(!Journal::open(&dir.path().join("none")).connected());
    }
}
