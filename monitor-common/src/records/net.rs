//! Net family: connections and datagrams towards an address, and the allow list `--enforce`
//! consults in the kernel.
use super::header::RecordHeader;

/// Record kinds of the net family (`0x03nn`).
pub mod kind {
    /// A connect() returned, or a datagram was sent to an address: [`super::ConnectRecord`].
    pub const CONNECT: u32 = 0x0301;
}

/// Syscall codes of [`ConnectRecord::syscall`] (20..=39).
pub mod syscall {
    /// connect(2)
    pub const CONNECT: u32 = 20;
    /// sendto(2) with a destination address.
    pub const SENDTO: u32 = 21;
    /// sendmsg(2) with a destination address.
    pub const SENDMSG: u32 = 22;
    /// sendmmsg(2) with a destination address.
    pub const SENDMMSG: u32 = 23;
    /// sendto(2) with MSG_FASTOPEN: a TCP connection opened without connect().
    pub const FASTOPEN: u32 = 24;
    /// A connection seen by the cgroup connect hook with no connect-family syscall under way
    /// (io_uring, and other kernel paths).
    pub const CGROUP_CONNECT: u32 = 25;
    /// A datagram seen by the cgroup sendmsg hook with no send syscall under way.
    pub const CGROUP_SENDMSG: u32 = 26;
    /// A connection seen by the cgroup connect hook during a 32-bit (int 0x80) system call.
    pub const COMPAT_CONNECT: u32 = 27;
    /// A datagram seen by the cgroup sendmsg hook during a 32-bit (int 0x80) system call.
    pub const COMPAT_SENDMSG: u32 = 28;
}

/// Longest `sun_path` of a unix socket address.
pub const UNIX_PATH_MAX: usize = 108;

/// A connect() returned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectRecord {
    /// Header.
    pub header: RecordHeader,
    /// One of [`syscall`].
    pub syscall: u32,
    /// The socket file descriptor.
    pub fd: i32,
    /// Return value: 0, or `-errno` (`-EINPROGRESS` for a non-blocking connect under way).
    pub result: i64,
    /// Address family (AF_INET, AF_INET6, AF_UNIX, ...).
    pub family: u16,
    /// Port in host byte order (inet families).
    pub port: u16,
    /// Length of the socket address as passed by the caller.
    pub addrlen: u32,
    /// IPv4 address (first 4 bytes) or IPv6 address, network byte order.
    pub addr: [u8; 16],
    /// [`crate::flag`] bits.
    pub flags: u32,
    /// Bytes of `unix_path` that hold the path (AF_UNIX); abstract names start with a NUL.
    pub unix_path_len: u32,
    /// `sun_path` of an AF_UNIX address.
    pub unix_path: [u8; UNIX_PATH_MAX],
    /// Proc-macro libraries (slot bits) with a return address on the calling thread's stack.
    pub callers: u32,
}

impl Default for ConnectRecord {
    fn default() -> Self {
        Self {
            header: RecordHeader::default(),
            syscall: 0,
            fd: 0,
            result: 0,
            family: 0,
            port: 0,
            addrlen: 0,
            addr: [0; 16],
            flags: 0,
            unix_path_len: 0,
            unix_path: [0; UNIX_PATH_MAX],
            callers: 0,
        }
    }
}

/// The value a process has in `CRATE_PROCS` before userspace knows its crate: its network is
/// refused under `--enforce` unless allowed for this group.
pub const GROUP_UNKNOWN: u32 = 0;
/// The group of rustc processes (proc-macros run there): what any proc-macro profile allows.
pub const GROUP_RUSTC: u32 = 1;
/// The group of programs a proc-macro started (forked while proc-macro code was on rustc's
/// stack): what any proc-macro profile allows; killable under `--enforce` like a build script's.
pub const GROUP_PROC_MACRO: u32 = u32::MAX;

/// Key of the network allow list the cgroup hooks consult under `--enforce` (an LPM trie:
/// group, port and family must match exactly, the address by prefix).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowKey {
    /// The crate group (see `CRATE_PROCS`).
    pub group: u32,
    /// Port in network byte order, or 0 for any port.
    pub port: u16,
    /// AF_INET or AF_INET6.
    pub family: u16,
    /// The address, network byte order (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
}

impl AllowKey {
    /// Bits of the key before the address: group, port and family.
    pub const FIXED_BITS: u32 = 64;
}

impl_record!(ConnectRecord, AllowKey);

// No implicit padding: each size is the sum of the fields', records a multiple of 8.
const _: () = assert!(
    size_of::<ConnectRecord>()
        == size_of::<RecordHeader>() + 4 + 4 + 8 + 2 + 2 + 4 + 16 + 4 + 4 + UNIX_PATH_MAX + 4
);
const _: () = assert!(size_of::<ConnectRecord>().is_multiple_of(8));
const _: () = assert!(size_of::<AllowKey>() == 24);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn net_records_round_trip() {
        let mut unix_path = [0u8; UNIX_PATH_MAX];
        unix_path[..8].copy_from_slice(b"/run/x.s");
        round_trip(ConnectRecord {
            header: header(kind::CONNECT),
            syscall: syscall::CONNECT,
            fd: 3,
            result: -111,
            family: 2,
            port: 4444,
            addrlen: 16,
            addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            flags: 0,
            unix_path_len: 8,
            unix_path,
            callers: 2,
        });
        round_trip(AllowKey {
            group: 7,
            port: 443u16.to_be(),
            family: 10,
            addr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        });
    }
}
