//! `monitor-tamper`: a process of the build acting on buildwatch itself or on the kernel
//! facilities it stands on. A build that could detach the sensor's programs (`bpf()`), stop its
//! tracepoints (tracefs), leave the build's cgroup (`cgroup.procs`, which `--enforce` hangs on),
//! or stop, trace or read buildwatch would leave a report that vouches for nothing; none of this
//! has a place in compiling a crate, so no profile allows it.
use crate::model::{MonitorCall, Open, Tamper, TamperSyscall};

/// The (subject, detail) of a tamper event aimed at the monitor: `bpf()` and `perf_event_open`
/// by anyone, signals, ptrace and pidfds aimed at buildwatch (`monitor_pid`).
pub fn tamper_verdict(t: &Tamper, monitor_pid: Option<u32>) -> Option<(String, String)> {
    let request = t.request.as_deref().unwrap_or("");
    match t.syscall {
        TamperSyscall::Monitor(MonitorCall::Bpf) => Some((
            format!("bpf {request}"),
            format!(
                "called bpf({request}): the system call that loads, lists and detaches eBPF \
                 programs and maps, buildwatch's own among them"
            ),
        )),
        TamperSyscall::Monitor(MonitorCall::PerfEventOpen) => Some((
            format!("perf_event_open {request}"),
            format!(
                "called perf_event_open ({request}): tracing and probes outside the build's reach"
            ),
        )),
        TamperSyscall::Monitor(MonitorCall::Kill) => Some((
            format!("kill {request} {}", t.target),
            if t.target == u32::MAX {
                format!(
                    "sent {request} to every process it may signal (kill -1), buildwatch among them"
                )
            } else {
                format!("sent {request} to buildwatch (process {})", t.target)
            },
        )),
        TamperSyscall::Monitor(MonitorCall::PidfdOpen) => Some((
            format!("pidfd_open {}", t.target),
            format!(
                "opened a pidfd for buildwatch (process {}): a handle to signal it or take its \
                 descriptors",
                t.target
            ),
        )),
        TamperSyscall::Process(call) if monitor_pid.is_some_and(|m| m == t.target) => Some((
            format!("{call} {}", t.target),
            format!(
                "{call}{} on buildwatch itself (process {})",
                t.request
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default(),
                t.target
            ),
        )),
        _ => None,
    }
}

/// The (subject, detail) of an open that reaches the monitor: a write to tracefs, to bpffs or to
/// a cgroup's control files, or buildwatch's own `/proc` files beyond what `ps` reads.
pub fn open_verdict(
    open: &Open,
    monitor_pid: Option<u32>,
    result: &str,
) -> Option<(String, String)> {
    let path = open.path.as_str();
    if open.writes() {
        let what = if under(path, "/sys/kernel/tracing") || under(path, "/sys/kernel/debug/tracing")
        {
            Some("tracefs, where the sensor's tracepoints are switched on and off")
        } else if under(path, "/sys/fs/bpf") {
            Some("the BPF filesystem, where eBPF programs and maps are pinned")
        } else if is_cgroup_control(path) {
            Some(
                "a cgroup's control file: moving processes out of the build's cgroup escapes --enforce",
            )
        } else {
            None
        };
        if let Some(what) = what {
            return Some((path.to_owned(), format!("wrote {path} ({what}){result}")));
        }
    }
    let pid = monitor_pid?;
    let rest = path.strip_prefix("/proc/")?;
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if first.parse::<u32>().ok()? != pid {
        return None;
    }
    // A thread's files are the process's: /proc/PID/task/TID/mem is /proc/PID/mem.
    let file = match tail.split_once('/') {
        Some(("task", thread)) => thread.split_once('/').map_or("", |(_, f)| f),
        _ => tail,
    };
    if !open.writes() && HARMLESS_PROC.contains(&file) {
        return None;
    }
    let verb = if open.writes() { "wrote" } else { "opened" };
    Some((
        path.to_owned(),
        format!("{verb} {path}: a /proc file of buildwatch itself{result}"),
    ))
}

/// What `ps`, `top` or a crate counting processes reads of every process, buildwatch included.
const HARMLESS_PROC: &[&str] = &[
    "",
    "stat",
    "status",
    "statm",
    "cmdline",
    "comm",
    "cgroup",
    "limits",
    "sched",
    "schedstat",
    "oom_score",
    "wchan",
    "loginuid",
    "sessionid",
    "task",
];

fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A cgroup's control file (`cgroup.procs`, `cgroup.threads`, `cgroup.kill`, ... and v1's
/// `tasks`), wherever the cgroup filesystem is mounted, or anything written under
/// /sys/fs/cgroup (where a write changes limits, freezes or moves processes).
fn is_cgroup_control(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    name.starts_with("cgroup.") || under(path, "/sys/fs/cgroup")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Access, OpenSyscall, ProcessCall};

    fn open(path: &str, access: Access) -> Open {
        Open {
            syscall: OpenSyscall::Openat,
            path: path.to_owned(),
            requested: None,
            flags: 0,
            access,
            create: false,
            result: 3,
            error: None,
            truncated: false,
            compat: false,
            protected: None,
        }
    }

    #[test]
    fn writes_to_the_monitor_s_kernel_facilities() {
        for path in [
            "/sys/fs/cgroup/buildwatch-1/cgroup.procs",
            "/mnt/cg/x/cgroup.threads",
            "/sys/fs/cgroup/user.slice/memory.max",
            "/sys/kernel/tracing/events/syscalls/enable",
            "/sys/kernel/debug/tracing/tracing_on",
            "/sys/fs/bpf/prog",
        ] {
            assert!(
                open_verdict(&open(path, Access::Write), None, "").is_some(),
                "{path}"
            );
            assert!(
                open_verdict(&open(path, Access::Read), None, "").is_none(),
                "{path}"
            );
        }
        assert!(open_verdict(&open("/sys/fs/cgroupx/a", Access::Write), None, "").is_none());
    }

    #[test]
    fn buildwatch_s_proc_files_beyond_what_ps_reads() {
        let m = Some(4242);
        for path in [
            "/proc/4242/mem",
            "/proc/4242/environ",
            "/proc/4242/task/4243/mem",
            "/proc/4242/fd/3",
        ] {
            assert!(
                open_verdict(&open(path, Access::Read), m, "").is_some(),
                "{path}"
            );
        }
        for path in [
            "/proc/4242/stat",
            "/proc/4242/cmdline",
            "/proc/4242",
            "/proc/4242/task/4243/stat",
            "/proc/4241/mem",
        ] {
            assert!(
                open_verdict(&open(path, Access::Read), m, "").is_none(),
                "{path}"
            );
        }
        assert!(open_verdict(&open("/proc/4242/mem", Access::Read), None, "").is_none());
    }

    #[test]
    fn ptrace_of_buildwatch_and_bpf_calls() {
        let ptrace = Tamper {
            syscall: TamperSyscall::Process(ProcessCall::Ptrace),
            request: Some("PTRACE_ATTACH".to_owned()),
            target: 4242,
        };
        let (_, detail) = tamper_verdict(&ptrace, Some(4242)).expect("ptrace of buildwatch");
        assert!(detail.contains("on buildwatch itself"), "{detail}");
        assert!(tamper_verdict(&ptrace, Some(1)).is_none());
        let bpf = Tamper {
            syscall: TamperSyscall::Monitor(MonitorCall::Bpf),
            request: Some("BPF_PROG_DETACH".to_owned()),
            target: 0,
        };
        let (subject, _) = tamper_verdict(&bpf, None).expect("bpf call");
        assert_eq!(subject, "bpf BPF_PROG_DETACH");
    }
}
