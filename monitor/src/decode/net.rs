//! Decoding the net and dns families: destinations of connections and datagrams, DNS questions.

use super::*;

pub(super) fn decode_connect(r: &ConnectRecord) -> Connect {
    let family = SocketFamily::from_af(r.family);
    let addr = match family {
        SocketFamily::Inet => {
            std::net::Ipv4Addr::new(r.addr[0], r.addr[1], r.addr[2], r.addr[3]).to_string()
        }
        SocketFamily::Inet6 => std::net::Ipv6Addr::from(r.addr).to_string(),
        SocketFamily::Unix => {
            let len = (r.unix_path_len as usize).min(r.unix_path.len());
            let path = &r.unix_path[..len];
            match path.split_first() {
                // Abstract socket: leading NUL, name runs to the end of the address.
                Some((0, name)) => {
                    format!("@{}", text(name.split(|&b| b == 0).next().unwrap_or(name)))
                }
                _ => text(c_bytes(path)),
            }
        }
        SocketFamily::Other(_) => String::new(),
    };
    let refused = r.flags & flag::REFUSED != 0;
    Connect {
        syscall: connect_syscall(r.syscall),
        family,
        addr,
        port: r.port,
        result: if refused {
            -(libc::EPERM as i64)
        } else {
            r.result
        },
        error: if refused {
            Some("EPERM".to_owned())
        } else {
            errno_name(r.result)
        },
        refused,
        passed: None,
    }
}

pub(super) fn connect_syscall(code: u32) -> ConnectSyscall {
    match code {
        syscall::CONNECT => ConnectSyscall::Connect,
        syscall::SENDTO => ConnectSyscall::Sendto,
        syscall::SENDMSG => ConnectSyscall::Sendmsg,
        syscall::SENDMMSG => ConnectSyscall::Sendmmsg,
        syscall::FASTOPEN => ConnectSyscall::Fastopen,
        syscall::CGROUP_CONNECT => ConnectSyscall::IoUring,
        syscall::CGROUP_SENDMSG => ConnectSyscall::Send,
        syscall::COMPAT_CONNECT => ConnectSyscall::Int80Connect,
        syscall::COMPAT_SENDMSG => ConnectSyscall::Int80Send,
        _ => ConnectSyscall::Unknown,
    }
}

/// The name a DNS query asks for, and its type, from the start of the message.
pub fn dns_question(msg: &[u8]) -> Option<(String, String)> {
    // Header: 12 bytes; then QNAME as length-prefixed labels ending with 0, then QTYPE.
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *msg.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 || labels.len() > 127 {
            return None;
        }
        let label = msg.get(pos..pos + len)?;
        labels.push(
            label
                .iter()
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
                .collect(),
        );
        pos += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    let qtype = match qtype {
        1 => "A".to_owned(),
        2 => "NS".to_owned(),
        5 => "CNAME".to_owned(),
        15 => "MX".to_owned(),
        16 => "TXT".to_owned(),
        28 => "AAAA".to_owned(),
        33 => "SRV".to_owned(),
        255 => "ANY".to_owned(),
        n => n.to_string(),
    };
    Some((labels.join("."), qtype))
}

pub(super) fn ip_text(family: u16, addr: &[u8; 16]) -> String {
    if family as i32 == libc::AF_INET6 {
        std::net::Ipv6Addr::from(*addr).to_string()
    } else {
        std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string()
    }
}
