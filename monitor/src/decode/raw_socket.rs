//! Decoding the raw-socket family: raw and packet sockets created, and packets sent on them,
//! whose destination is read from their own headers (`crate::packet`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use monitor_common::{PacketRecord, SocketRecord, records::raw_socket};

use super::*;
use crate::{
    model::Socket,
    packet::{self, RawSocket},
};

pub(super) fn decode_socket(r: &SocketRecord) -> Socket {
    let refused = r.flags & flag::REFUSED != 0;
    let result = if refused {
        -i64::from(libc::EPERM)
    } else {
        r.result
    };
    Socket {
        family: family_name(r.family),
        sock_type: type_name(r.sock_type),
        protocol: r.protocol,
        result,
        error: errno_name(result),
        refused,
        killed: r.flags & raw_socket::KILLED != 0,
    }
}

/// A packet on a raw or packet socket as a connection attempt: its destination from its headers
/// when they can be read, else the address passed with it.
pub(super) fn decode_packet(r: &PacketRecord) -> Connect {
    let sock = RawSocket {
        family: r.sock_family,
        sock_type: r.sock_type,
        protocol: r.protocol,
    };
    let passed_ip = match i32::from(r.to_family) {
        libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
            r.to_addr[0],
            r.to_addr[1],
            r.to_addr[2],
            r.to_addr[3],
        ))),
        libc::AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(r.to_addr))),
        _ => None,
    };
    let passed_text = passed_ip.map(|ip| endpoint(ip, r.to_port));
    let data = &r.data[..(r.len as usize).min(r.data.len())];
    let (family, addr, port, passed) = match packet::destination(sock, data, passed_ip) {
        Some(d) => {
            let port = d.port.unwrap_or(0);
            let passed = passed_text.filter(|p| *p != endpoint(d.addr, port));
            (family_of(d.addr), d.addr.to_string(), port, passed)
        }
        // Unreadable headers: the address passed is all there is.
        None => match passed_ip {
            Some(ip) => (family_of(ip), ip.to_string(), r.to_port, None),
            None => (SocketFamily::from_af(r.sock_family), String::new(), 0, None),
        },
    };
    let refused = r.flags & flag::REFUSED != 0;
    Connect {
        syscall: match r.syscall {
            syscall::RAW_SENDMSG => ConnectSyscall::RawSendmsg,
            syscall::RAW_SENDMMSG => ConnectSyscall::RawSendmmsg,
            syscall::RAW_WRITE => ConnectSyscall::RawWrite,
            _ => ConnectSyscall::RawSendto,
        },
        family,
        addr,
        port,
        result: r.result,
        error: errno_name(r.result),
        refused,
        passed,
    }
}

fn family_of(ip: IpAddr) -> SocketFamily {
    match ip {
        IpAddr::V4(_) => SocketFamily::Inet,
        IpAddr::V6(_) => SocketFamily::Inet6,
    }
}

fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn family_name(af: u32) -> String {
    match af as i32 {
        libc::AF_INET => "inet".to_owned(),
        libc::AF_INET6 => "inet6".to_owned(),
        libc::AF_PACKET => "packet".to_owned(),
        n => format!("af{n}"),
    }
}

fn type_name(t: u32) -> String {
    match t as i32 {
        libc::SOCK_RAW => "SOCK_RAW".to_owned(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".to_owned(),
        // SOCK_PACKET (obsolete, deprecated in the libc crate): a packet socket.
        10 => "SOCK_PACKET".to_owned(),
        n => format!("type{n}"),
    }
}
