//! Programs executed.
use super::{Allow, Verdict};
use crate::{
    model::{Exec, Places},
    policy::Code,
    profile::RuleList,
};

/// A program run from memory (memfd) or from a deleted file is never allowed (an `exec` entry,
/// even `*`, names files on disk); another program is unless the baseline runs it (the
/// toolchain, the build script itself) both as requested and as executed.
pub(super) fn exec(exec: &Exec, places: &Places) -> Option<Verdict> {
    let image = exec.image();
    if image.starts_with("/memfd:") {
        return Some(Verdict::new(
            Code::FilelessExec,
            Allow::Never,
            image,
            format!("executed {image} (a memfd: a program that exists only in memory)"),
        ));
    }
    if exec.deleted {
        return Some(Verdict::new(
            Code::FilelessExec,
            Allow::Never,
            image,
            format!("executed {image}, which had been deleted"),
        ));
    }
    let requested = exec.requested();
    if places.expected_exec(image) && places.expected_exec(&requested) {
        return None;
    }
    // The subject is the program as requested: for a script, the script.
    Some(Verdict::new(
        Code::UnexpectedExec,
        Allow::List(RuleList::Exec),
        requested,
        format!("ran {}", command_line(exec)),
    ))
}

/// The program and its first arguments.
pub(super) fn command_line(exec: &Exec) -> String {
    let mut s = exec.image().to_owned();
    for a in exec.argv.iter().skip(1).take(6) {
        s.push(' ');
        s.push_str(a);
    }
    if exec.argv.len() > 7 {
        s.push_str(" ...");
    }
    s
}
