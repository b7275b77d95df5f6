//! `privilege-escalation`: a program of the build that ran with more privileges than the build's
//! user. The sensor decides in the kernel, at `sched_process_exec` (where the new image's
//! credentials are committed and not one instruction of it has run), whether a tracked process
//! came out of exec with an effective uid or gid other than its real one (a setuid/setgid bit),
//! as root while the build's user is not, or with effective capabilities in the initial user
//! namespace (file capabilities, or root's); it sends the `privileged-exec` tamper record that is
//! judged here, and under `--enforce` kills the process there and then.
use crate::model::{PrivilegeCall, Tamper, TamperSyscall};

/// The marks the sensor puts in a `privileged-exec` event's `request` (comma-separated).
pub mod mark {
    /// Effective uid differs from the real uid: a setuid program.
    pub const SETUID: &str = "setuid";
    /// Effective gid differs from the real gid: a setgid program.
    pub const SETGID: &str = "setgid";
    /// Effective uid 0 while the build's user is not root (sudo's and su's children).
    pub const ROOT: &str = "root";
    /// Effective capabilities in the initial user namespace: file capabilities, or root's.
    pub const CAPS: &str = "caps";
    /// Killed by `--enforce` before it ran.
    pub const KILLED: &str = "killed";
}

/// The finding's (subject, detail) for a tamper event that is a privilege gain, `program` being
/// the image that gained it (the last link of the actor's chain); None for any other event.
pub fn verdict(t: &Tamper, program: &str) -> Option<(String, String)> {
    let TamperSyscall::Privilege(PrivilegeCall::Exec) = t.syscall else {
        return None;
    };
    let marks: Vec<&str> = t
        .request
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|m| !m.is_empty())
        .collect();
    let has = |m: &str| marks.contains(&m);
    let mut how = Vec::new();
    if has(mark::SETUID) {
        how.push("a setuid program".to_owned());
    }
    if has(mark::SETGID) {
        how.push("a setgid program".to_owned());
    }
    if has(mark::ROOT) {
        how.push("effective uid 0 while the build's user is not root".to_owned());
    } else {
        how.push(format!("effective uid {}", t.target));
    }
    if has(mark::CAPS) {
        how.push("with effective capabilities".to_owned());
    }
    let fate = if has(mark::KILLED) {
        "; killed by --enforce before it ran"
    } else {
        ""
    };
    Some((
        format!("privileged {program}"),
        format!(
            "ran {program} with more privileges than the build's user ({}){fate}: as root, build \
             code can switch the monitor off",
            how.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(request: &str, euid: u32) -> Tamper {
        Tamper {
            syscall: TamperSyscall::Privilege(PrivilegeCall::Exec),
            request: Some(request.to_owned()),
            target: euid,
        }
    }

    #[test]
    fn setuid_root_is_described_with_its_fate() {
        let (subject, detail) =
            verdict(&exec("setuid,root,caps,killed", 0), "sudo").expect("a privilege gain");
        assert_eq!(subject, "privileged sudo");
        assert!(
            detail.starts_with("ran sudo with more privileges"),
            "{detail}"
        );
        assert!(detail.contains("a setuid program"), "{detail}");
        assert!(detail.contains("effective uid 0 while"), "{detail}");
        assert!(detail.contains("killed by --enforce"), "{detail}");
    }

    #[test]
    fn setgid_names_the_effective_uid() {
        let (_, detail) = verdict(&exec("setgid", 1000), "crontab").expect("a privilege gain");
        assert!(
            detail.contains("a setgid program, effective uid 1000"),
            "{detail}"
        );
        assert!(!detail.contains("killed"), "{detail}");
    }

    #[test]
    fn other_tamper_events_are_not_privilege_gains() {
        let t = Tamper {
            syscall: TamperSyscall::Process(crate::model::ProcessCall::Ptrace),
            request: Some("PTRACE_ATTACH".to_owned()),
            target: 1,
        };
        assert!(verdict(&t, "x").is_none());
    }
}
