//! The closed vocabularies of the event model: which system call, which address family, which
//! io_uring operation, why records were lost. Each is a type, so code matches on variants and
//! the compiler checks every match; each is written in JSON and text exactly as the strings the
//! event schema (docs/events.md) documents.
use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A word that is not in a vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}`")]
pub struct UnknownWord {
    /// Which vocabulary.
    pub what: &'static str,
    /// The word.
    pub word: String,
}

/// Defines a closed vocabulary: a fieldless enum, each variant written as a fixed string (in
/// JSON, through serde, and in text, through `Display`), with the table in one place.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every value as written.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value as written in JSON and text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(word: &str) -> Result<Self, UnknownWord> {
                match word {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownWord { what: $what, word: word.to_owned() }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let word = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                word.parse()
                    .map_err(|_| de::Error::unknown_variant(&word, $name::NAMES))
            }
        }
    };
}

vocabulary! {
    /// The system call behind an `open` event (the file's new or old name for rename and link).
    pub enum OpenSyscall ("open syscall") {
        /// openat(2)
        Openat => "openat",
        /// openat2(2)
        Openat2 => "openat2",
        /// open(2)
        Open => "open",
        /// creat(2)
        Creat => "creat",
        /// open_by_handle_at(2)
        OpenByHandleAt => "open_by_handle_at",
        /// rename(2) and co.: the new name.
        Rename => "rename",
        /// link(2), linkat(2): the new name.
        Link => "link",
        /// symlink(2), symlinkat(2): the new name.
        Symlink => "symlink",
        /// rename(2) and co.: the old name (the file moved).
        RenameSource => "rename-source",
        /// link(2), linkat(2): the old name (the file given another name).
        LinkSource => "link-source",
        /// A code this version does not know (a sensor/monitor mismatch).
        Unknown => "unknown",
    }
}

vocabulary! {
    /// How a network attempt was made (a `connect` event).
    pub enum ConnectSyscall ("connect syscall") {
        /// connect(2)
        Connect => "connect",
        /// sendto(2) with a destination address.
        Sendto => "sendto",
        /// sendmsg(2) with a destination address.
        Sendmsg => "sendmsg",
        /// sendmmsg(2) with a destination address.
        Sendmmsg => "sendmmsg",
        /// sendto(2) with MSG_FASTOPEN: a TCP connection opened without connect().
        Fastopen => "fastopen",
        /// The cgroup connect hook with no connect syscall under way: io_uring and other kernel
        /// paths.
        IoUring => "io_uring",
        /// The cgroup sendmsg hook with no send syscall under way.
        Send => "send",
        /// A connection made by a 32-bit (int 0x80) system call, seen by the cgroup hook.
        Int80Connect => "int80-connect",
        /// A datagram sent by a 32-bit (int 0x80) system call, seen by the cgroup hook.
        Int80Send => "int80-send",
        /// A packet sent by sendto(2) on a raw or packet socket (destination from its headers).
        RawSendto => "raw-sendto",
        /// A packet sent by sendmsg(2) on a raw or packet socket.
        RawSendmsg => "raw-sendmsg",
        /// A packet sent by sendmmsg(2) on a raw or packet socket.
        RawSendmmsg => "raw-sendmmsg",
        /// A packet written by write(2) to a raw or packet socket.
        RawWrite => "raw-write",
        /// A code this version does not know (a sensor/monitor mismatch).
        Unknown => "unknown",
    }
}

impl ConnectSyscall {
    /// A packet sent on a raw or packet socket.
    pub fn is_raw(self) -> bool {
        matches!(
            self,
            ConnectSyscall::RawSendto
                | ConnectSyscall::RawSendmsg
                | ConnectSyscall::RawSendmmsg
                | ConnectSyscall::RawWrite
        )
    }

    /// The attempt opens a connection (rather than sending a datagram).
    pub fn connects(self) -> bool {
        matches!(
            self,
            ConnectSyscall::Connect
                | ConnectSyscall::Fastopen
                | ConnectSyscall::IoUring
                | ConnectSyscall::Int80Connect
        )
    }
}

vocabulary! {
    /// A system call acting on another process.
    pub enum ProcessCall ("process syscall") {
        /// ptrace(2)
        Ptrace => "ptrace",
        /// process_vm_writev(2)
        ProcessVmWritev => "process_vm_writev",
        /// process_vm_readv(2)
        ProcessVmReadv => "process_vm_readv",
        /// pidfd_getfd(2): a copy of another process's descriptor.
        PidfdGetfd => "pidfd_getfd",
        /// A code this version does not know (a sensor/monitor mismatch).
        Unknown => "unknown",
    }
}

vocabulary! {
    /// A system call creating or joining namespaces.
    pub enum NamespaceCall ("namespace syscall") {
        /// unshare(2) with CLONE_NEW* flags.
        Unshare => "unshare",
        /// setns(2).
        Setns => "setns",
        /// clone(2) or clone3(2) with CLONE_NEW* flags.
        Clone => "clone",
    }
}

vocabulary! {
    /// A system call reaching for the monitor's own machinery.
    pub enum MonitorCall ("monitor syscall") {
        /// bpf(2), any command.
        Bpf => "bpf",
        /// perf_event_open(2).
        PerfEventOpen => "perf_event_open",
        /// kill, tkill or tgkill aimed at buildwatch (or kill(-1)).
        Kill => "kill",
        /// pidfd_open(2) of buildwatch.
        PidfdOpen => "pidfd_open",
    }
}

vocabulary! {
    /// A gain of privileges.
    pub enum PrivilegeCall ("privilege change") {
        /// An exec whose new image runs with more privileges than the build's user.
        Exec => "privileged-exec",
        /// A credential system call (set*id, capset) that added privileges beyond the build's
        /// user's, without exec.
        Creds => "privileged-creds",
    }
}

/// The system call of a `tamper` event: acting on another process, changing namespaces (which
/// is not tampering with a process, and is judged as its own finding), reaching for the
/// monitor, or gaining privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TamperSyscall {
    /// ptrace, process_vm_*, pidfd_getfd.
    Process(ProcessCall),
    /// unshare, setns, clone with CLONE_NEW*.
    Namespace(NamespaceCall),
    /// bpf, perf_event_open, signals and pidfds aimed at buildwatch.
    Monitor(MonitorCall),
    /// An exec or a credential call that raised privileges.
    Privilege(PrivilegeCall),
}

impl TamperSyscall {
    /// The syscall's name as written.
    pub const fn as_str(self) -> &'static str {
        match self {
            TamperSyscall::Process(call) => call.as_str(),
            TamperSyscall::Namespace(call) => call.as_str(),
            TamperSyscall::Monitor(call) => call.as_str(),
            TamperSyscall::Privilege(call) => call.as_str(),
        }
    }
}

impl fmt::Display for TamperSyscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TamperSyscall {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        word.parse()
            .map(TamperSyscall::Namespace)
            .or_else(|_| word.parse().map(TamperSyscall::Process))
            .or_else(|_| word.parse().map(TamperSyscall::Monitor))
            .or_else(|_| word.parse().map(TamperSyscall::Privilege))
            .map_err(|_| UnknownWord {
                what: "tamper syscall",
                word: word.to_owned(),
            })
    }
}

impl Serialize for TamperSyscall {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TamperSyscall {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        word.parse().map_err(de::Error::custom)
    }
}

vocabulary! {
    /// Why the sensor could not deliver records (a `lost` event).
    pub enum LostReason ("lost reason") {
        /// A record did not fit in the ring buffer.
        RingBufferFull => "ring-buffer-full",
        /// Syscalls in flight could not be remembered (pending map full).
        PendingFull => "pending-full",
        /// Processes that could not be tracked (tracked map full): they and their descendants
        /// are not watched.
        TrackedFull => "tracked-full",
        /// The kernel skipped a sensor program.
        ProgSkipped => "prog-skipped",
    }
}

/// The address family of a network attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SocketFamily {
    /// AF_INET, written `inet`.
    Inet,
    /// AF_INET6, written `inet6`.
    Inet6,
    /// AF_UNIX, written `unix`.
    Unix,
    /// Any other family, written `af<N>`.
    Other(u16),
}

impl SocketFamily {
    /// The family of an `AF_*` number.
    pub fn from_af(af: u16) -> Self {
        match i32::from(af) {
            libc::AF_INET => SocketFamily::Inet,
            libc::AF_INET6 => SocketFamily::Inet6,
            libc::AF_UNIX => SocketFamily::Unix,
            _ => SocketFamily::Other(af),
        }
    }

    /// An internet family (addresses and ports), rather than a local one.
    pub fn is_inet(self) -> bool {
        matches!(self, SocketFamily::Inet | SocketFamily::Inet6)
    }
}

impl fmt::Display for SocketFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketFamily::Inet => f.write_str("inet"),
            SocketFamily::Inet6 => f.write_str("inet6"),
            SocketFamily::Unix => f.write_str("unix"),
            SocketFamily::Other(af) => write!(f, "af{af}"),
        }
    }
}

impl FromStr for SocketFamily {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        match word {
            "inet" => Ok(SocketFamily::Inet),
            "inet6" => Ok(SocketFamily::Inet6),
            "unix" => Ok(SocketFamily::Unix),
            _ => word
                .strip_prefix("af")
                .and_then(|n| n.parse().ok())
                .map(SocketFamily::Other)
                .ok_or_else(|| UnknownWord {
                    what: "socket family",
                    word: word.to_owned(),
                }),
        }
    }
}

impl Serialize for SocketFamily {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SocketFamily {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        word.parse().map_err(de::Error::custom)
    }
}

/// An io_uring event's operation: a ring set up, or an operation kind submitted (its IORING_OP_*
/// code, written by name: `OPENAT`, `CONNECT`, ... or `op<N>` for codes newer than this table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IoUringOp {
    /// A new ring (io_uring_setup), written `setup`.
    Setup,
    /// An operation, by its IORING_OP_* code.
    Op(u32),
}

/// Names of the io_uring operations by code (IORING_OP_*, include/uapi/linux/io_uring.h).
const URING_OPS: [&str; 59] = [
    "NOP",
    "READV",
    "WRITEV",
    "FSYNC",
    "READ_FIXED",
    "WRITE_FIXED",
    "POLL_ADD",
    "POLL_REMOVE",
    "SYNC_FILE_RANGE",
    "SENDMSG",
    "RECVMSG",
    "TIMEOUT",
    "TIMEOUT_REMOVE",
    "ACCEPT",
    "ASYNC_CANCEL",
    "LINK_TIMEOUT",
    "CONNECT",
    "FALLOCATE",
    "OPENAT",
    "CLOSE",
    "FILES_UPDATE",
    "STATX",
    "READ",
    "WRITE",
    "FADVISE",
    "MADVISE",
    "SEND",
    "RECV",
    "OPENAT2",
    "EPOLL_CTL",
    "SPLICE",
    "PROVIDE_BUFFERS",
    "REMOVE_BUFFERS",
    "TEE",
    "SHUTDOWN",
    "RENAMEAT",
    "UNLINKAT",
    "MKDIRAT",
    "SYMLINKAT",
    "LINKAT",
    "MSG_RING",
    "FSETXATTR",
    "SETXATTR",
    "FGETXATTR",
    "GETXATTR",
    "SOCKET",
    "URING_CMD",
    "SEND_ZC",
    "SENDMSG_ZC",
    "READ_MULTISHOT",
    "WAITID",
    "FUTEX_WAIT",
    "FUTEX_WAKE",
    "FUTEX_WAITV",
    "FIXED_FD_INSTALL",
    "FTRUNCATE",
    "BIND",
    "LISTEN",
    "RECV_ZC",
];

impl IoUringOp {
    /// IORING_OP_CONNECT
    pub const CONNECT: IoUringOp = IoUringOp::Op(16);
    /// IORING_OP_OPENAT
    pub const OPENAT: IoUringOp = IoUringOp::Op(18);
    /// IORING_OP_OPENAT2
    pub const OPENAT2: IoUringOp = IoUringOp::Op(28);
}

impl fmt::Display for IoUringOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoUringOp::Setup => f.write_str("setup"),
            IoUringOp::Op(code) => match URING_OPS.get(*code as usize) {
                Some(name) => f.write_str(name),
                None => write!(f, "op{code}"),
            },
        }
    }
}

impl FromStr for IoUringOp {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        if word == "setup" {
            return Ok(IoUringOp::Setup);
        }
        if let Some(code) = URING_OPS.iter().position(|name| *name == word) {
            return Ok(IoUringOp::Op(code as u32));
        }
        word.strip_prefix("op")
            .and_then(|n| n.parse().ok())
            .map(IoUringOp::Op)
            .ok_or_else(|| UnknownWord {
                what: "io_uring operation",
                word: word.to_owned(),
            })
    }
}

impl Serialize for IoUringOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IoUringOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        word.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize>(value: T) -> String {
        serde_json::to_string(&value).expect("serialize")
    }

    fn back<T: for<'de> Deserialize<'de>>(text: &str) -> T {
        serde_json::from_str(text).expect("deserialize")
    }

    #[test]
    fn vocabularies_are_written_as_documented() {
        assert_eq!(json(ConnectSyscall::IoUring), r#""io_uring""#);
        assert_eq!(json(ConnectSyscall::Int80Connect), r#""int80-connect""#);
        assert_eq!(json(OpenSyscall::LinkSource), r#""link-source""#);
        assert_eq!(json(OpenSyscall::OpenByHandleAt), r#""open_by_handle_at""#);
        assert_eq!(
            json(TamperSyscall::Process(ProcessCall::ProcessVmWritev)),
            r#""process_vm_writev""#
        );
        assert_eq!(json(LostReason::PendingFull), r#""pending-full""#);
        assert_eq!(json(SocketFamily::Inet6), r#""inet6""#);
        assert_eq!(json(SocketFamily::Other(16)), r#""af16""#);
        assert_eq!(json(IoUringOp::Setup), r#""setup""#);
        assert_eq!(json(IoUringOp::OPENAT), r#""OPENAT""#);
        assert_eq!(json(IoUringOp::Op(200)), r#""op200""#);
    }

    #[test]
    fn every_word_reads_back() {
        for v in OpenSyscall::ALL {
            assert_eq!(back::<OpenSyscall>(&json(v)), *v);
        }
        for v in ConnectSyscall::ALL {
            assert_eq!(back::<ConnectSyscall>(&json(v)), *v);
        }
        for v in LostReason::ALL {
            assert_eq!(back::<LostReason>(&json(v)), *v);
        }
        for v in ProcessCall::ALL {
            let t = TamperSyscall::Process(*v);
            assert_eq!(back::<TamperSyscall>(&json(t)), t);
        }
        for v in NamespaceCall::ALL {
            let t = TamperSyscall::Namespace(*v);
            assert_eq!(back::<TamperSyscall>(&json(t)), t);
        }
        for v in MonitorCall::ALL {
            let t = TamperSyscall::Monitor(*v);
            assert_eq!(back::<TamperSyscall>(&json(t)), t);
        }
        for v in PrivilegeCall::ALL {
            let t = TamperSyscall::Privilege(*v);
            assert_eq!(back::<TamperSyscall>(&json(t)), t);
        }
        for f in [
            SocketFamily::Inet,
            SocketFamily::Inet6,
            SocketFamily::Unix,
            SocketFamily::Other(40),
        ] {
            assert_eq!(back::<SocketFamily>(&json(f)), f);
        }
        for code in 0..70 {
            assert_eq!(
                back::<IoUringOp>(&json(IoUringOp::Op(code))),
                IoUringOp::Op(code)
            );
        }
        assert_eq!(back::<IoUringOp>(r#""setup""#), IoUringOp::Setup);
    }

    #[test]
    fn unknown_words_are_refused() {
        assert!("connecct".parse::<ConnectSyscall>().is_err());
        assert!("ifnet".parse::<SocketFamily>().is_err());
        assert!("afx".parse::<SocketFamily>().is_err());
        assert!("OPENATX".parse::<IoUringOp>().is_err());
        assert!("tracked".parse::<LostReason>().is_err());
        assert!("fork".parse::<TamperSyscall>().is_err());
    }

    #[test]
    fn namespace_changes_are_told_apart_by_type() {
        assert_eq!(
            "setns".parse::<TamperSyscall>(),
            Ok(TamperSyscall::Namespace(NamespaceCall::Setns))
        );
        assert_eq!(
            "ptrace".parse::<TamperSyscall>(),
            Ok(TamperSyscall::Process(ProcessCall::Ptrace))
        );
    }
}

vocabulary! {
    /// Why `--enforce` killed a process in the kernel (a `killed` event).
    pub enum KillClass ("kill class") {
        /// Opened a protected secret for reading.
        Secret => "secret",
        /// Opened a persistence target for writing (or created a file in a persistence
        /// directory).
        Persistence => "persistence",
        /// Executed a program from memory or a deleted file.
        FilelessExec => "fileless-exec",
        /// Reached into another process (ptrace, process_vm_readv/writev, pidfd_getfd).
        Tamper => "tamper",
        /// Created or joined a namespace.
        Namespace => "namespace",
        /// Made a 32-bit system call.
        Compat => "compat",
        /// A class this version does not know (a sensor/monitor mismatch).
        Unknown => "unknown",
    }
}
