//! Raw-socket family: raw and packet sockets created (or refused), and the packets sent on them,
//! whose real destination is inside the packet's own headers.
use super::header::RecordHeader;

/// Record kinds of the raw-socket family (`0x0Bnn`).
pub mod kind {
    /// A raw or packet socket was created, or its creation refused: [`super::SocketRecord`].
    pub const SOCKET: u32 = 0x0B01;
    /// A packet was sent on a raw or packet socket: [`super::PacketRecord`].
    pub const PACKET: u32 = 0x0B02;
}

/// Syscall codes of the raw-socket family's records (80..=89).
pub mod syscall {
    /// socket(2).
    pub const SOCKET: u32 = 80;
    /// A socket seen by the cgroup `sock_create` hook with no socket(2) under way (io_uring's
    /// `IORING_OP_SOCKET`).
    pub const CGROUP_SOCKET: u32 = 81;
    /// sendto(2) on a raw or packet socket.
    pub const RAW_SENDTO: u32 = 82;
    /// sendmsg(2) on a raw or packet socket.
    pub const RAW_SENDMSG: u32 = 83;
    /// sendmmsg(2) on a raw or packet socket (one record per message).
    pub const RAW_SENDMMSG: u32 = 84;
    /// write(2) on a raw or packet socket.
    pub const RAW_WRITE: u32 = 85;
}

/// [`SocketRecord::flags`] bit: buildwatch sent its process SIGKILL at the call (`--enforce`,
/// a socket the cgroup hook cannot refuse). `flag::REFUSED` marks a refusal by the hook.
pub const KILLED: u32 = 1 << 24;

/// Bytes of a packet copied into [`PacketRecord::data`]: an Ethernet header, a VLAN tag, an
/// IPv6 header and the ports of the transport header fit.
pub const PACKET_HEAD: usize = 64;

/// A raw or packet socket was created (or refused).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketRecord {
    /// Header.
    pub header: RecordHeader,
    /// One of [`syscall`].
    pub syscall: u32,
    /// Address family (AF_INET, AF_INET6, AF_PACKET, ...).
    pub family: u32,
    /// Socket type (SOCK_RAW, SOCK_DGRAM, SOCK_PACKET), without SOCK_NONBLOCK/SOCK_CLOEXEC.
    pub sock_type: u32,
    /// The protocol argument (for packet sockets an ethertype in network order).
    pub protocol: u32,
    /// The new descriptor, or `-errno`.
    pub result: i64,
    /// `flag::REFUSED`, [`KILLED`].
    pub flags: u32,
    /// Zero.
    pub _pad: u32,
}

/// A packet sent on a raw or packet socket: the socket, the address passed with it, and the
/// packet's first bytes (its headers).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRecord {
    /// Header.
    pub header: RecordHeader,
    /// One of [`syscall`] (`RAW_*`).
    pub syscall: u32,
    /// The socket descriptor.
    pub fd: i32,
    /// Bytes sent, or `-errno`.
    pub result: i64,
    /// The socket's family.
    pub sock_family: u16,
    /// The socket's type.
    pub sock_type: u16,
    /// The socket's protocol (for packet sockets an ethertype in network order).
    pub protocol: u16,
    /// Family of the address passed with the packet (0: none).
    pub to_family: u16,
    /// Port of the address passed (host order, inet families).
    pub to_port: u16,
    /// Zero.
    pub _pad: u16,
    /// Bytes of `data` that hold the packet's start.
    pub len: u32,
    /// The address passed (IPv4 in the first 4 bytes), network order.
    pub to_addr: [u8; 16],
    /// Proc-macro libraries (slot bits) on the calling thread's stack, as in `ConnectRecord`.
    pub callers: u32,
    /// `flag::REFUSED` bits.
    pub flags: u32,
    /// The packet's first bytes.
    pub data: [u8; PACKET_HEAD],
}

impl Default for PacketRecord {
    fn default() -> Self {
        Self {
            header: RecordHeader::default(),
            syscall: 0,
            fd: 0,
            result: 0,
            sock_family: 0,
            sock_type: 0,
            protocol: 0,
            to_family: 0,
            to_port: 0,
            _pad: 0,
            len: 0,
            to_addr: [0; 16],
            callers: 0,
            flags: 0,
            data: [0; PACKET_HEAD],
        }
    }
}

/// Where the kind of a socket is in kernel structures, written by userspace at load time (from
/// BTF): what tells a raw socket from any other when a packet is sent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOffsets {
    /// `file.f_inode`
    pub file_f_inode: u32,
    /// `inode.i_mode` (`S_IFSOCK`: the file is a socket, its `private_data` a `struct socket`)
    pub inode_i_mode: u32,
    /// `sock.__sk_common.skc_family`
    pub sock_family: u32,
    /// `sock.sk_type`
    pub sock_type: u32,
    /// `sock.sk_protocol`
    pub sock_protocol: u32,
    /// Zero.
    pub _pad: u32,
}

impl_record!(SocketRecord, PacketRecord, SocketOffsets);

// No implicit padding: each size is the sum of the fields', records a multiple of 8.
const _: () = assert!(size_of::<SocketRecord>() == size_of::<RecordHeader>() + 4 * 4 + 8 + 4 + 4);
const _: () = assert!(
    size_of::<PacketRecord>()
        == size_of::<RecordHeader>() + 4 + 4 + 8 + 2 * 6 + 4 + 16 + 4 + 4 + PACKET_HEAD
);
const _: () = assert!(size_of::<SocketRecord>().is_multiple_of(8));
const _: () = assert!(size_of::<SocketOffsets>() == 6 * 4);
const _: () = assert!(size_of::<PacketRecord>().is_multiple_of(8));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn raw_socket_records_round_trip() {
        round_trip(SocketRecord {
            header: header(kind::SOCKET),
            syscall: syscall::SOCKET,
            family: 2,
            sock_type: 3,
            protocol: 255,
            result: -1,
            flags: KILLED | crate::flag::REFUSED,
            _pad: 0,
        });
        let mut data = [0u8; PACKET_HEAD];
        data[..4].copy_from_slice(&[0x45, 0, 0, 35]);
        round_trip(PacketRecord {
            header: header(kind::PACKET),
            syscall: syscall::RAW_SENDMMSG,
            fd: 4,
            result: 35,
            sock_family: 17,
            sock_type: 3,
            protocol: 0x0300,
            to_family: 2,
            to_port: 9,
            _pad: 0,
            len: 35,
            to_addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            callers: 1,
            flags: 0,
            data,
        });
    }
}
