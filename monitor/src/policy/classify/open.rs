//! Files opened (and the new names of renames and links).
use super::{Allow, Run, Verdict, attempt, project, tamper};
use crate::{
    model::{Access, Event, Open, OpenSyscall, Places, ProtectedFile},
    policy::Code,
    profile::RuleList,
};

/// Another process's memory is tampering, never allowed; a secret read is allowed only by the
/// `sensitive-read` list (a `read` entry never covers one); a persistence write by the `write`
/// list, and so is a write onto the project's or a crate's sources (`source-tamper`) or into
/// another crate's build output (`artifact-tamper`); a dependency reading the project's version
/// control data or files outside its own package is `project-read` (the `read` list); other
/// reads and writes outside the baseline by `read` and `write`. Failed attempts count for
/// secrets, persistence, tampering and memory, not for ordinary files.
pub(super) fn open(open: &Open, event: &Event, places: &Places, run: &Run<'_>) -> Option<Verdict> {
    let path = open.path.as_str();
    let pid = event.pid;
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
        if let Some(kind) = places
            .persistence_write(path)
            .or_else(|| run.ci.persistence_write(path))
        {
            return Some(Verdict::new(
                Code::PersistenceWrite,
                Allow::List(RuleList::Write),
                path,
                format!("wrote {path} ({kind}){}", attempt(open.result)),
            ));
        }
        if let Some(krate) = event.actor.as_ref().and_then(|a| a.crate_ref()) {
            // rustc (or its linker) writes under its own `--crate-name` too.
            let crate_name = run.attribution.and_then(|a| a.rustc_crate_name(pid));
            if let Some(t) = tamper::write_tamper(path, places, &krate, crate_name) {
                return Some(Verdict::new(
                    t.code,
                    Allow::List(RuleList::Write),
                    path,
                    format!(
                        "{}{}",
                        t.detail(write_verb(open), path),
                        attempt(open.result)
                    ),
                ));
            }
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
    if open.result < 0 {
        return None;
    }
    if let Some(attribution) = run.attribution
        && let Some(actor) = event.actor.as_ref()
        && let Some(krate) = actor.crate_ref()
    {
        // A proc-macro may read the package of the crate it expands in.
        let compiling = actor
            .compiling
            .as_ref()
            .map(|c| attribution.places_for(Some(c)));
        if let Some(what) = project::project_read(path, places, compiling.as_ref(), || {
            attribution.is_member(&krate)
        }) {
            return Some(Verdict::new(
                Code::ProjectRead,
                Allow::List(RuleList::Read),
                path,
                format!("{} {path} ({what})", read_verb(open)),
            ));
        }
    }
    if places.expected_read(path) {
        return None;
    }
    Some(Verdict::new(
        Code::UnexpectedRead,
        Allow::List(RuleList::Read),
        path,
        format!("{} {path}", read_verb(open)),
    ))
}

/// How a write reached a name: `wrote`, or `renamed a file onto` for a rename's new name.
fn write_verb(open: &Open) -> &'static str {
    match open.syscall {
        OpenSyscall::Rename => "renamed a file onto",
        OpenSyscall::Link => "hard-linked a file as",
        OpenSyscall::Symlink => "made a symlink at",
        _ => "wrote",
    }
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
