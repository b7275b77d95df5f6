//! `privilege-escalation`: a program of the build that ran with more privileges than the build's
//! user. The sensor decides in the kernel, at `sched_process_exec` (where the new image's
//! credentials are committed and not one instruction of it has run), whether a tracked process
//! came out of exec with an effective uid or gid other than its real one (a setuid/setgid bit),
//! as root while the build's user is not, or with effective capabilities in the initial user
//! namespace (file capabilities, or root's); it sends the `privileged-exec` tamper record that is
//! judged here, and under `--enforce` kills the process there and then. Without exec, the
//! sensor compares the privileges before and after each credential call (set*id, capset) and
//! sends `privileged-creds`, naming the call, when the call added any (a process that held
//! CAP_SETUID making itself root); it is the same finding.
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
    /// `privileged-creds`: the credential call, as `syscall=setresuid`.
    pub const SYSCALL: &str = "syscall=";
}

/// The finding's (subject, detail) for a tamper event that is a privilege gain, `program` being
/// the image that gained it (the last link of the actor's chain); None for any other event.
pub fn verdict(t: &Tamper, program: &str) -> Option<(String, String)> {
    let TamperSyscall::Privilege(call) = t.syscall else {
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
    let by_call = marks.iter().find_map(|m| m.strip_prefix(mark::SYSCALL));
    let mut how: Vec<String> = Vec::new();
    if has(mark::SETUID) {
        how.push(
            match call {
                PrivilegeCall::Exec => "a setuid program",
                PrivilegeCall::Creds => "effective uid other than the real uid",
            }
            .to_owned(),
        );
    }
    if has(mark::SETGID) {
        how.push(
            match call {
                PrivilegeCall::Exec => "a setgid program",
                PrivilegeCall::Creds => "effective gid other than the real gid",
            }
            .to_owned(),
        );
    }
    if has(mark::ROOT) {
        how.push("effective uid 0 while the build's user is not root".to_owned());
    } else {
        how.push(format!("effective uid {}", t.target));
    }
    if has(mark::CAPS) {
        how.push("with effective capabilities".to_owned());
    }
    if call == PrivilegeCall::Creds {
        let syscall = by_call.unwrap_or("a credential call");
        let fate = if has(mark::KILLED) {
            "; killed by --enforce before the call returned"
        } else {
            ""
        };
        return Some((
            format!("privileged {program} at {syscall}"),
            format!(
                "{program} gained more privileges than the build's user without exec, at \
                 {syscall}() ({}){fate}: as root, build code can switch the monitor off",
                how.join(", ")
            ),
        ));
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
    fn a_credential_call_is_named_apart_from_the_exec() {
        let t = Tamper {
            syscall: TamperSyscall::Privilege(PrivilegeCall::Creds),
            request: Some("root,caps,syscall=setresuid".to_owned()),
            target: 0,
        };
        let (subject, detail) = verdict(&t, "setpriv").expect("a privilege gain");
        assert_eq!(subject, "privileged setpriv at setresuid");
        assert!(
            detail.contains("without exec, at setresuid() (effective uid 0 while"),
            "{detail}"
        );
        assert!(detail.contains("with effective capabilities"), "{detail}");
        assert!(!detail.contains("killed"), "{detail}");
        assert_ne!(
            subject,
            verdict(&exec("caps", 1000), "setpriv").expect("a gain").0
        );
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
