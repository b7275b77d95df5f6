//! The typed event model: what the sensor saw, decoded, and (later in the pipeline) attributed.
//!
//! This is also the JSON Lines format of `--events` (docs/cli.md), which `replay` reads back: one
//! [`Event`] per line, the kind's own fields flattened next to the common ones.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::actor::Actor;
use super::vocab::{
    ConnectSyscall, IoUringOp, KillClass, LostReason, OpenSyscall, SocketFamily, TamperSyscall,
};

/// One thing a process of the watched tree did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time of the event, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent process id as recorded when the process was forked (0 when unknown).
    #[serde(default)]
    pub ppid: u32,
    /// The task's `comm`.
    #[serde(default)]
    pub comm: String,
    /// Who is responsible for this event (filled in by attribution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// In a rustc process: the proc-macro library slots (see `macro-lib` events) whose code was
    /// on the calling thread's stack; `16 + slot` (16 = the sensor's slot count) when the
    /// instruction pointer at the system call was in that slot's library.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<u8>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Defines [`EventKind`] from one table: each variant, its payload and the name it is written
/// as (the JSON `kind`), so that [`EventKind::name`] and [`EventKind::NAMES`] cannot miss one.
macro_rules! event_kinds {
    ($($(#[$meta:meta])* $variant:ident($payload:ident) => $name:literal,)+) => {
        /// What happened, with the kind's own fields.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum EventKind {
            $($(#[$meta])* #[serde(rename = $name)] $variant($payload),)+
        }

        impl EventKind {
            /// Every kind's name, as written in JSON, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The kind's name as written in JSON (`exec`, `open`, ...).
            pub fn name(&self) -> &'static str {
                match self {
                    $(EventKind::$variant(_) => $name,)+
                }
            }
        }
    };
}

event_kinds! {
    /// The process forked a new process (threads are not reported).
    Fork(Fork) => "fork",
    /// The process executed a new image.
    Exec(Exec) => "exec",
    /// The process exited (its last thread ended).
    Exit(Exit) => "exit",
    /// A file open returned.
    Open(Open) => "open",
    /// A connect() returned.
    Connect(Connect) => "connect",
    /// Records the sensor could not deliver.
    Lost(Lost) => "lost",
    /// A rustc process mapped a proc-macro library: its code is now identifiable on stacks.
    MacroLib(MacroLib) => "macro-lib",
    /// A DNS query was sent (the name it asks for).
    Dns(Dns) => "dns",
    /// ptrace, process_vm_writev or process_vm_readv aimed at a process, or namespaces created
    /// or joined.
    Tamper(Tamper) => "tamper",
    /// io_uring: a ring was set up, or an operation kind first submitted.
    IoUring(IoUring) => "io-uring",
    /// A 32-bit system call (the first of each kind per process image), which syscall tracing
    /// does not see.
    CompatSyscall(CompatSyscall) => "compat-syscall",
    /// A raw or packet socket was created (or refused).
    Socket(Socket) => "socket",
    /// `--enforce` killed the process in the kernel, before it returned to user space, for what
    /// it had just done (the act itself is its own event, sent first).
    Killed(Killed) => "killed",
}

/// What `--enforce` killed a process for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Killed {
    /// Why.
    pub class: KillClass,
    /// The system call it was killed in (`openat`, `ptrace`, `int 0x80 open`, ...); absent at
    /// exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// What it reached: the secret or persistence target (as buildwatch found it at start), the
    /// ptrace request, the namespace flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The process acted on (tamper), else 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub target: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Killed {
    /// `killed by --enforce in openat: secret /home/u/.ssh/id_rsa`.
    pub fn describe(&self) -> String {
        let at = self
            .syscall
            .as_deref()
            .map(|s| format!(" in {s}"))
            .unwrap_or_else(|| " at exec".to_owned());
        let what = self.object.as_deref().unwrap_or("");
        let target = if self.target != 0 {
            format!(" (process {})", self.target)
        } else {
            String::new()
        };
        format!("killed by --enforce{at}: {} {what}{target}", self.class)
            .trim_end()
            .to_owned()
    }
}

/// A raw or packet socket: `SOCK_RAW` of any family but netlink and unix, `AF_PACKET`,
/// `SOCK_PACKET`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// `inet`, `inet6`, `packet`, or `af<N>`.
    pub family: String,
    /// `SOCK_RAW`, `SOCK_DGRAM` (a cooked packet socket), `SOCK_PACKET`, or `type<N>`.
    #[serde(rename = "type")]
    pub sock_type: String,
    /// The protocol argument (255 = IPPROTO_RAW; for packet sockets an ethertype, network
    /// order).
    pub protocol: u32,
    /// The new descriptor, or `-errno`.
    pub result: i64,
    /// Name of the error when `result` is negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Refused by buildwatch (`--enforce`, the cgroup `sock_create` hook).
    #[serde(default, skip_serializing_if = "is_false")]
    pub refused: bool,
    /// Its process was killed by buildwatch (`--enforce`: a packet socket, which the kernel's
    /// hook cannot refuse).
    #[serde(default, skip_serializing_if = "is_false")]
    pub killed: bool,
}

impl Socket {
    /// `socket inet SOCK_RAW 255`: the finding subject.
    pub fn subject(&self) -> String {
        format!(
            "socket {} {} {}",
            self.family, self.sock_type, self.protocol
        )
    }
}

/// A DNS query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// The name asked for.
    pub name: String,
    /// The query type (`A`, `AAAA`, `TXT`, ... or a number).
    pub qtype: String,
    /// The server it was sent to.
    pub server: String,
    /// Its port.
    pub port: u16,
}

/// Tampering with a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tamper {
    /// `ptrace`, `process_vm_writev`, `process_vm_readv`, `pidfd_getfd`; or a namespace change:
    /// `unshare`, `setns`, `clone`.
    pub syscall: TamperSyscall,
    /// The ptrace request (`PTRACE_ATTACH`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The target process.
    pub target: u32,
}

impl Tamper {
    /// Creating or joining namespaces (`unshare`, `setns`, `clone` with `CLONE_NEW*`), rather
    /// than acting on another process.
    pub fn is_namespace(&self) -> bool {
        matches!(self.syscall, TamperSyscall::Namespace(_))
    }
}

/// io_uring activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoUring {
    /// `setup` for a new ring, else the operation (`OPENAT`, `CONNECT`, `READ`, ...).
    pub op: IoUringOp,
}

/// A 32-bit system call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatSyscall {
    /// Its name in the i386 table (`open`, `socketcall`, ...) or `syscall#<nr>`.
    pub syscall: String,
    /// Its i386 number.
    pub nr: u32,
    /// What it returned.
    pub result: i64,
    /// Name of the error when `result` is negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A proc-macro library mapped by rustc.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroLib {
    /// The slot number events' `callers` refer to.
    pub slot: u8,
    /// The library.
    pub path: String,
    /// Its digest (filled in off the event path; absent in streams of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<super::ImageDigest>,
}

/// A new process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fork {
    /// Process id of the new process.
    pub child_pid: u32,
}

/// A successful exec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    /// The program as passed to exec (may be relative, or `/dev/fd/N`).
    pub path: String,
    /// The new executable's absolute path as the kernel resolved it, when it differs from `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The process's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Arguments (argv[0] first).
    pub argv: Vec<String>,
    /// argv was longer than the sensor copies and was cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    /// The variables of [`KEPT_VARIABLES`] found in the new image's environment; the rest of the
    /// environment (which may hold secrets) is never kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The environment was longer than the sensor copies: variables may be missing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub env_truncated: bool,
    /// The executable had been deleted (no links left) when it ran.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// `buildwatch guard`: the process was not watched before this exec, which made it the root
    /// of a build (its new image is a cargo, rustc or rust-analyzer known by identity).
    #[serde(default, skip_serializing_if = "is_false")]
    pub guard_root: bool,
    /// The digest of the executable the kernel ran ([`Exec::image`]; filled in off the event
    /// path, absent in streams of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<super::ImageDigest>,
}

/// Environment variables kept from each exec: cargo's variables for build scripts and rustc, and
/// the locations profile variables expand to.
pub const KEPT_VARIABLES: [&str; 22] = [
    "CARGO_PKG_NAME",
    "CARGO_PKG_VERSION",
    "CARGO_MANIFEST_DIR",
    "CARGO_CRATE_NAME",
    "OUT_DIR",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_PRIMARY_PACKAGE",
    "RUSTC_WRAPPER",
    // The compiler cargo resolved, given to build scripts: the sysroot before any rustc is seen.
    "RUSTC",
    "TARGET",
    "HOME",
    "TMPDIR",
    // What cargo:rustc-env may set to change the code rustc and its linker run, compared with
    // cargo's own (see attribution::directives), and the user's flags that precede the
    // directives in rustc's arguments.
    "LD_PRELOAD",
    "LD_AUDIT",
    "LD_LIBRARY_PATH",
    "PATH",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
    "LIBRARY_PATH",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_ENCODED_RUSTFLAGS",
];

impl Exec {
    /// The executable's best known absolute path: the kernel's view if known, else `path`.
    pub fn image(&self) -> &str {
        self.exe.as_deref().unwrap_or(&self.path)
    }

    /// The program as requested, made absolute against the working directory (for a script,
    /// the script; [`Exec::image`] is then its interpreter).
    pub fn requested(&self) -> String {
        if self.path.starts_with('/') {
            return self.path.clone();
        }
        match &self.cwd {
            Some(cwd) => super::path::normalize(&std::path::Path::new(cwd).join(&self.path)),
            None => self.path.clone(),
        }
    }

    /// A kept environment variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The directory in variable `name`, written as the kernel writes paths
    /// ([`super::paths::clean_dir`], relative to the working directory).
    pub fn dir_var(&self, name: &str) -> Option<String> {
        super::paths::clean_dir(self.var(name)?, self.cwd.as_deref())
    }
}

/// A process exit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    /// Exit code (0-255) when the process exited normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Terminating signal number when a signal killed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Failed reads in the run's quiet directories (the toolchain, the system's libraries and
    /// headers, the target directory) that the kernel counted for this process instead of
    /// sending each (`policy::quiet`): none of them can be anything the policy acts on. Counted
    /// over the process's life, whatever images it ran (they are told under the last one). 0 in
    /// a stream recorded with `--events`, which has every failed open as an event of its own.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quiet_failed_reads: u32,
}

impl Exit {
    /// Decodes a wait(2)-style status.
    pub fn from_wait_status(status: u32) -> Self {
        let sig = (status & 0x7f) as i32;
        if sig == 0 {
            Exit {
                code: Some(((status >> 8) & 0xff) as i32),
                signal: None,
                quiet_failed_reads: 0,
            }
        } else {
            Exit {
                code: None,
                signal: Some(sig),
                quiet_failed_reads: 0,
            }
        }
    }
}

/// How a file was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// O_RDONLY (also O_PATH).
    Read,
    /// O_WRONLY.
    Write,
    /// O_RDWR.
    ReadWrite,
}

/// A file open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Open {
    /// The system call (`openat`, `openat2`, `open`, `creat`, ...).
    pub syscall: OpenSyscall,
    /// Absolute path of the file: the kernel's own resolution for a successful open (symlinks,
    /// `..` and relative paths resolved); for a failed one, the argument made absolute against the
    /// directory it was relative to. Stays relative only when that directory is unknown.
    pub path: String,
    /// The path argument as passed, when it differs from `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// O_* flags.
    pub flags: u32,
    /// Read/write mode derived from `flags`.
    pub access: Access,
    /// The file is created if missing (O_CREAT) or truncated (O_TRUNC).
    #[serde(default, skip_serializing_if = "is_false")]
    pub create: bool,
    /// File descriptor, or `-errno`.
    pub result: i64,
    /// Name of the error when `result` is negative (`ENOENT`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The path had more components than the in-kernel walk follows; its start is missing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// Made as a 32-bit system call (`int 0x80`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub compat: bool,
    /// The object opened is one of the user's secrets, known to the kernel by its device and
    /// inode: the same file whatever name reached it (a hard link, a bind mount, `/proc/PID/root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<ProtectedFile>,
}

/// A secret buildwatch found at start and gave the kernel by identity (see `Open::protected`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedFile {
    /// Where buildwatch found it (its name in buildwatch's own mount namespace).
    pub path: String,
    /// The category of secret (`ssh-key`, `cloud-credentials`, ...).
    pub category: String,
}

impl Open {
    /// The open writes (or creates/truncates) the file.
    pub fn writes(&self) -> bool {
        self.access != Access::Read || self.create
    }
}

/// A network attempt towards an address: connect(), a datagram sent to an address, a TCP Fast
/// Open, or a connection made through io_uring (seen by the cgroup hook).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connect {
    /// How: `connect`, `sendto`, `sendmsg`, `sendmmsg`, `fastopen`, `int80-connect` and `int80-send`
    /// (32-bit system calls, seen by the cgroup hooks), `io_uring` (the cgroup
    /// connect hook without a syscall), `send` (the cgroup sendmsg hook without a syscall),
    /// `raw-sendto`, `raw-sendmsg`, `raw-sendmmsg` (a packet on a raw or packet socket).
    #[serde(default = "connect_syscall")]
    pub syscall: ConnectSyscall,
    /// `inet`, `inet6`, `unix`, or `af<N>` for other families.
    pub family: SocketFamily,
    /// Address: dotted IPv4, IPv6, a unix socket path (`@name` for abstract names).
    pub addr: String,
    /// Port (inet families; 0 otherwise).
    pub port: u16,
    /// 0, or `-errno` (`-EINPROGRESS` for a non-blocking connect under way).
    pub result: i64,
    /// Name of the error when `result` is negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Refused by buildwatch (`--enforce`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub refused: bool,
    /// A packet sent on a raw or packet socket (`syscall` is then `raw-sendto`, `raw-sendmsg` or
    /// `raw-sendmmsg`, and the destination is read from the packet's headers): the address
    /// passed with it, when it differs (a decoy: a raw socket ignores the port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<String>,
}

fn connect_syscall() -> ConnectSyscall {
    ConnectSyscall::Connect
}

impl Connect {
    /// `addr:port` for inet families (IPv6 in brackets), the path for unix sockets.
    pub fn endpoint(&self) -> String {
        match self.family {
            SocketFamily::Inet => format!("{}:{}", self.addr, self.port),
            SocketFamily::Inet6 => format!("[{}]:{}", self.addr, self.port),
            SocketFamily::Unix | SocketFamily::Other(_) => self.addr.clone(),
        }
    }

    /// Whether this is a packet sent on a raw or packet socket.
    pub fn is_raw(&self) -> bool {
        self.syscall.is_raw()
    }
}

/// Records the sensor could not deliver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lost {
    /// How many.
    pub count: u64,
    /// Why: `ring-buffer-full`, `pending-full` (syscalls in flight), `tracked-full` (processes
    /// that could not be tracked), `prog-skipped` (the kernel skipped a sensor program).
    pub reason: LostReason,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_round_trip() {
        let events = [
            Event {
                time_ns: 1,
                pid: 10,
                tid: 11,
                ppid: 9,
                comm: "cat".into(),
                actor: None,
                callers: Vec::new(),
                kind: EventKind::Open(Open {
                    syscall: OpenSyscall::Openat,
                    path: "/etc/hostname".into(),
                    requested: Some("hostname".into()),
                    flags: 0o2000000,
                    access: Access::Read,
                    create: false,
                    result: 3,
                    error: None,
                    truncated: false,
                    compat: false,
                    protected: None,
                }),
            },
            Event {
                time_ns: 2,
                pid: 10,
                tid: 10,
                ppid: 9,
                comm: "sh".into(),
                actor: None,
                callers: Vec::new(),
                kind: EventKind::Exec(Exec {
                    path: "/bin/cat".into(),
                    exe: Some("/usr/bin/cat".into()),
                    cwd: Some("/work".into()),
                    argv: vec!["cat".into(), "x".into()],
                    env: [("CARGO_PKG_NAME".to_owned(), "foo".to_owned())].into(),
                    ..Default::default()
                }),
            },
            Event {
                time_ns: 3,
                pid: 10,
                tid: 10,
                ppid: 9,
                comm: "x".into(),
                actor: None,
                callers: Vec::new(),
                kind: EventKind::Lost(Lost {
                    count: 5,
                    reason: LostReason::RingBufferFull,
                }),
            },
        ];
        for event in events {
            let line = serde_json::to_string(&event).expect("serialize");
            assert!(
                line.contains(&format!("\"kind\":\"{}\"", event.kind.name())),
                "{line}"
            );
            let back: Event = serde_json::from_str(&line).expect("deserialize");
            assert_eq!(back, event);
        }
    }

    #[test]
    fn wait_status() {
        assert_eq!(
            Exit::from_wait_status(0x0100),
            Exit {
                code: Some(1),
                signal: None,
                quiet_failed_reads: 0,
            }
        );
        assert_eq!(
            Exit::from_wait_status(9),
            Exit {
                code: None,
                signal: Some(9),
                quiet_failed_reads: 0,
            }
        );
    }
}
