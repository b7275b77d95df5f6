//! Files opened (and the new names of renames and links).
use super::{Allow, Verdict, attempt};
use crate::{
    model::{Access, Open, OpenSyscall, Places, ProtectedFile},
    policy::Code,
    profile::RuleList,
};

/// Another process's memory is tampering, never allowed; a secret read is allowed only by the
/// `sensitive-read` list (a `read` entry never covers one); a persistence write by the `write`
/// list; other reads and writes outside the baseline by `read` and `write`. Failed attempts
/// count for secrets, persistence and memory, not for ordinary files.
pub(super) fn open(open: &Open, pid: u32, places: &Places) -> Option<Verdict> {
    let path = open.path.as_str();
    if let Some(target) = other_process_memory(path, pid) {
        let how = if open.writes() {
            "for writing"
        } else {
            "for reading"
        };
        return Some(Verdict::new(
            Code::ProcessTamper,
            Allow::Never,
            format!("{path} {target}"),
            format!(
                "opened {path} {how}: the memory of process {target}{}",
                attempt(open.result)
            ),
        ));
    }
    if let Some(secret) = &open.protected
        && open.access != Access::Write
    {
        return Some(protected_read(open, secret));
    }
    if open.writes() {
        if let Some(kind) = places.persistence_write(path) {
            return Some(Verdict::new(
                Code::PersistenceWrite,
                Allow::List(RuleList::Write),
                path,
                format!("wrote {path} ({kind}){}", attempt(open.result)),
            ));
        }
        if open.result < 0 || places.expected_write(path) {
            return None;
        }
        return Some(Verdict::new(
            Code::UnexpectedWrite,
            Allow::List(RuleList::Write),
            path,
            format!("wrote {path}"),
        ));
    }
    if let Some(kind) = places.sensitive_read(path) {
        return Some(Verdict::new(
            Code::SensitiveRead,
            Allow::List(RuleList::SensitiveRead),
            path,
            format!(
                "{} {path} ({kind}){}",
                read_verb(open),
                attempt(open.result)
            ),
        ));
    }
    if open.result < 0 || places.expected_read(path) {
        return None;
    }
    Some(Verdict::new(
        Code::UnexpectedRead,
        Allow::List(RuleList::Read),
        path,
        format!("{} {path}", read_verb(open)),
    ))
}

/// A read of a secret the kernel recognised by its device and inode: the verdict names the
/// protected file (the name a `sensitive-read` entry allows), whatever path reached it.
fn protected_read(open: &Open, secret: &ProtectedFile) -> Verdict {
    let path = open.path.as_str();
    let how = if path == secret.path {
        String::new()
    } else {
        format!(
            ", which is {} (the same file, recognised by its inode)",
            secret.path
        )
    };
    Verdict::new(
        Code::SensitiveRead,
        Allow::List(RuleList::SensitiveRead),
        secret.path.as_str(),
        format!(
            "{} {path} ({}){how}{}",
            read_verb(open),
            secret.category,
            attempt(open.result)
        ),
    )
}

/// How an open counted as a read got at the file.
fn read_verb(open: &Open) -> &'static str {
    match open.syscall {
        OpenSyscall::LinkSource => "hard-linked (its contents readable under the new name)",
        OpenSyscall::RenameSource => "moved",
        _ => "read",
    }
}

/// The process whose memory `path` is (`/proc/PID/mem`, or a thread's `/proc/PID/task/TID/mem`),
/// unless it is the opener's own.
pub(super) fn other_process_memory(path: &str, opener: u32) -> Option<u32> {
    let rest = path.strip_prefix("/proc/")?.strip_suffix("/mem")?;
    let mut parts = rest.split('/');
    let pid: u32 = parts.next()?.parse().ok()?;
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) | (Some("task"), Some(_), None) => (pid != opener).then_some(pid),
        _ => None,
    }
}
