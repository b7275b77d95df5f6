//! Findings: what checking a run against profiles and the baseline turned up.
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::attribution::{CrateRef, Role};

/// Stable finding codes (kebab-case in every output). Documented in README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// Network by a build script, a proc-macro or anything they ran, that its profile does not
    /// allow.
    UnexpectedNetwork,
    /// A program run that neither the baseline nor the profile allows.
    UnexpectedExec,
    /// A read of a secret (SSH/GPG keys, credentials, shell history, .env, ...) not explicitly
    /// accepted in the profile (attempts that failed count too).
    SensitiveRead,
    /// A read outside the baseline and the profile.
    UnexpectedRead,
    /// A write outside the baseline and the profile.
    UnexpectedWrite,
    /// A write to a place that makes code run later (shell rc files, authorized_keys, cargo's
    /// config, crontabs, systemd units, git hooks, ~/.cargo/bin, ...).
    PersistenceWrite,
    /// A profile exists for other versions of the crate, and this version does something it
    /// does not allow.
    NewBehaviour,
    /// The sensor lost events: monitoring was incomplete.
    EventsLost,
    /// A program executed from memory (memfd) or a deleted file.
    FilelessExec,
    /// ptrace, process_vm_writev or process_vm_readv on another process.
    ProcessTamper,
    /// io_uring used by a build script or proc-macro.
    IoUringUse,
    /// New namespaces created (unshare, clone with CLONE_NEW*) or joined (setns): inside a new
    /// mount namespace, bind mounts can show any file under any path.
    NamespaceUse,
    /// A 32-bit system call (`int 0x80`) by a build script, a proc-macro or a program they ran:
    /// the way around syscall tracing.
    CompatSyscall,
    /// A process started by the build was still running when the build ended.
    ProcessOutlivedBuild,
    /// An allow entry in a profile matched nothing during the run.
    UnusedAllow,
    /// A raw or packet socket (`SOCK_RAW` of any family, `AF_PACKET`) created by a build
    /// script, a proc-macro or anything they ran: packets built by hand, whose real destination
    /// is inside them.
    RawSocket,
    /// A connection to an agent's or daemon's unix socket (ssh-agent, gpg-agent, docker,
    /// containerd, podman, systemd, D-Bus): keys and root without touching a file.
    AgentSocket,
    /// A program executed that the watched run itself wrote (a build script, a proc-macro or
    /// a program they ran), other than what the toolchain built for a crate in its own OUT_DIR.
    DroppedExec,
    /// A write, rename or link onto the project's files outside the target directory (sources,
    /// manifests, Cargo.lock, .cargo/, .git/, .github/, editor folders) or onto any crate's
    /// sources (registry, git checkouts).
    SourceTamper,
    /// A write into another crate's OUT_DIR or target-directory entries (deps, build,
    /// .fingerprint, incremental) by anything but cargo and the toolchain working for that crate.
    ArtifactTamper,
    /// A dependency outside the workspace reading the project's version control data or files
    /// of the workspace outside its own package.
    ProjectRead,
    /// A build script, a proc-macro or anything they ran executed a program with more
    /// privileges than the build's user: a setuid/setgid bit, file capabilities, or root (sudo,
    /// su, pkexec).
    PrivilegeEscalation,
    /// A process of the build reached for the monitor's own machinery: bpf(), perf_event_open,
    /// writes to tracefs, bpffs or a cgroup's control files, or signals, ptrace or /proc
    /// opens aimed at buildwatch.
    MonitorTamper,
    /// A toolchain program (rustc, cargo, rustdoc, rust-lld, the system's cc, ld, as, ar) has
    /// another digest than `learn` recorded for the same toolchain version.
    ToolchainChanged,
    /// A build script's link directives (`rustc-link-arg*`, `rustc-link-search`,
    /// `rustc-link-lib`, `rustc-flags`, `rustc-env`) that change which programs the link runs or
    /// how it links, or bring in inputs from outside the crate's own OUT_DIR and the system's
    /// library directories.
    LinkInjection,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: [Code; 25] = [
        Code::UnexpectedNetwork,
        Code::SensitiveRead,
        Code::PersistenceWrite,
        Code::FilelessExec,
        Code::ProcessTamper,
        Code::CompatSyscall,
        Code::NamespaceUse,
        Code::DroppedExec,
        Code::SourceTamper,
        Code::ArtifactTamper,
        Code::LinkInjection,
        Code::ProjectRead,
        Code::UnexpectedExec,
        Code::UnexpectedRead,
        Code::UnexpectedWrite,
        Code::NewBehaviour,
        Code::IoUringUse,
        Code::ProcessOutlivedBuild,
        Code::EventsLost,
        Code::UnusedAllow,
        Code::RawSocket,
        Code::AgentSocket,
        Code::PrivilegeEscalation,
        Code::MonitorTamper,
        Code::ToolchainChanged,
    ];

    /// The code's name (`unexpected-network`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::UnexpectedNetwork => "unexpected-network",
            Code::UnexpectedExec => "unexpected-exec",
            Code::SensitiveRead => "sensitive-read",
            Code::UnexpectedRead => "unexpected-read",
            Code::UnexpectedWrite => "unexpected-write",
            Code::PersistenceWrite => "persistence-write",
            Code::NewBehaviour => "new-behaviour",
            Code::EventsLost => "events-lost",
            Code::FilelessExec => "fileless-exec",
            Code::ProcessTamper => "process-tamper",
            Code::IoUringUse => "io-uring-use",
            Code::CompatSyscall => "compat-syscall",
            Code::NamespaceUse => "namespace-use",
            Code::ProcessOutlivedBuild => "process-outlived-build",
            Code::UnusedAllow => "unused-allow",
            Code::RawSocket => "raw-socket",
            Code::AgentSocket => "agent-socket",
            Code::DroppedExec => "dropped-exec",
            Code::SourceTamper => "source-tamper",
            Code::ArtifactTamper => "artifact-tamper",
            Code::ProjectRead => "project-read",
            Code::PrivilegeEscalation => "privilege-escalation",
            Code::MonitorTamper => "monitor-tamper",
            Code::ToolchainChanged => "toolchain-changed",
            Code::LinkInjection => "link-injection",
        }
    }

    /// Parses a code name.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// One line on what triggers the code.
    pub fn description(self) -> &'static str {
        match self {
            Code::UnexpectedNetwork => {
                "network by a build script, proc-macro or a program they ran, not allowed by its profile"
            }
            Code::UnexpectedExec => {
                "a program run that neither the built-in baseline nor the crate's profile allows"
            }
            Code::SensitiveRead => {
                "a read (or attempted read) of keys, credentials, history or .env files not accepted in the profile"
            }
            Code::UnexpectedRead => "a file read outside the baseline and the crate's profile",
            Code::UnexpectedWrite => "a file written outside the baseline and the crate's profile",
            Code::PersistenceWrite => {
                "a write to a place that makes code run later (rc files, authorized_keys, cron, systemd, git hooks, ~/.cargo/bin)"
            }
            Code::NewBehaviour => {
                "this version of the crate does something its profile (written for other versions) does not allow"
            }
            Code::EventsLost => "the sensor lost events: monitoring was incomplete",
            Code::FilelessExec => "a program executed from memory (memfd) or from a deleted file",
            Code::ProcessTamper => {
                "ptrace, process_vm_writev or process_vm_readv aimed at another process"
            }
            Code::IoUringUse => {
                "io_uring set up by a build script or proc-macro, whose operations syscall tracing cannot see"
            }
            Code::CompatSyscall => {
                "a 32-bit system call (int 0x80) by a build script, proc-macro or a program they ran, which syscall tracing skips"
            }
            Code::NamespaceUse => {
                "namespaces created or joined (unshare, setns, clone with CLONE_NEW*), in which bind mounts can disguise paths"
            }
            Code::ProcessOutlivedBuild => {
                "a process started during the build was still running when the build ended"
            }
            Code::UnusedAllow => "an allow entry in a profile matched nothing during the run",
            Code::RawSocket => {
                "a raw or packet socket (SOCK_RAW, AF_PACKET) created by a build script, proc-macro or a program they ran"
            }
            Code::AgentSocket => {
                "a connection to an agent or daemon socket (ssh-agent, gpg-agent, docker, containerd, podman, systemd, D-Bus)"
            }
            Code::DroppedExec => {
                "a program executed that the build itself wrote (a build script, proc-macro or a program they ran), other than a probe the toolchain built in the crate's own OUT_DIR"
            }
            Code::SourceTamper => {
                "a write, rename or link onto the project's sources, manifests, Cargo.lock, .cargo/, .git/, .github/ or editor folders, or onto a crate's sources"
            }
            Code::ArtifactTamper => {
                "a write into another crate's OUT_DIR or target-directory entries by anything but cargo and the toolchain working for that crate"
            }
            Code::LinkInjection => {
                "a build script's link directives or rustc-env variables change which programs the link runs or how it links (-B, -fuse-ld, --wrap, --defsym, linker scripts, plugins, rpaths, LD_PRELOAD, PATH, ...), or bring in inputs from outside its OUT_DIR and the system's library directories"
            }
            Code::ProjectRead => {
                "a dependency outside the workspace read the project's version control data or workspace files outside its own package"
            }
            Code::PrivilegeEscalation => {
                "a program run with more privileges than the build's user (setuid/setgid, file capabilities, sudo, su, pkexec)"
            }
            Code::MonitorTamper => {
                "a call to bpf() or perf_event_open, a write to tracefs, bpffs or a cgroup's control files, or a signal, ptrace or /proc open aimed at buildwatch"
            }
            Code::ToolchainChanged => {
                "a toolchain program (rustc, cargo, rustdoc, rust-lld, cc, ld, as, ar) has another digest than learn recorded for the same toolchain version"
            }
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious a finding is for this run's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Fails the run (`ci`), per `--fail-on`.
    Error,
    /// Reported, does not fail the run.
    Warning,
}

/// The process a finding was seen in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    /// Process id.
    pub pid: u32,
    /// Its executable.
    pub exe: String,
    /// The processes from the responsible one down to this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

/// One finding. Identical findings (same code, crate, role and subject) are merged, counting
/// occurrences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of finding.
    pub code: Code,
    /// Error (fails the run) or warning.
    pub severity: Severity,
    /// The crate responsible.
    #[serde(rename = "crate", default, skip_serializing_if = "Option::is_none")]
    pub krate: Option<CrateRef>,
    /// build-script or proc-macro (or rustc, cargo, command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The first process it was seen in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
    /// What happened: `connect 127.0.0.1:4444`, `read /home/u/.ssh/id_rsa`.
    pub detail: String,
    /// The item itself (path, endpoint, program), for merging and for accepting into profiles.
    pub subject: String,
    /// The profile that applied, if any (file path or `built-in:<crate>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The profile list that would allow it (`exec`, `read`, `write`, `sensitive-read`,
    /// `network`), under `[<role>]` of the crate's profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Other crates it may be (proc-macros that could not be told apart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<CrateRef>,
    /// How many times it happened.
    pub count: u64,
    /// When it first happened (ns since the epoch).
    pub time_ns: u64,
    /// `--enforce` killed the process that did it, in the kernel, before it returned to user
    /// space (a secret never reached its memory, an append was never written).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub killed: bool,
}

impl Finding {
    /// `sensitive-read: keyscan 0.1.4 build-script read /home/u/.ssh/id_rsa`
    pub fn headline(&self) -> String {
        let names: Vec<String> = self.candidates.iter().map(ToString::to_string).collect();
        let who = match (&self.krate, self.role) {
            // No one proc-macro named as if it were certain.
            (Some(_), Some(r)) if !self.exact() => {
                format!("one of {} ({r}, attribution not exact):", names.join(", "))
            }
            (Some(k), Some(r)) => format!("{k} {r}"),
            (Some(k), None) => k.to_string(),
            (None, Some(r)) => r.to_string(),
            (None, None) => "the build".to_owned(),
        };
        let mut s = format!("{}: {who} {}", self.code, self.detail);
        if self.count > 1 {
            s.push_str(&format!(" (x{})", self.count));
        }
        // The detail carries paths and argv the build chose: shown, never obeyed, on a terminal.
        crate::model::shown(&s).into_owned()
    }

    /// Whether the finding names the one crate responsible. False when the sensor could not
    /// tell which of several proc-macros acted (`candidates` lists them all; `krate` is the
    /// first whose profile does not allow it, not a certainty).
    pub fn exact(&self) -> bool {
        self.candidates.len() < 2
    }
}
