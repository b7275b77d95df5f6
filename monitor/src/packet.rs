//! Where a packet sent on a raw or packet socket goes: read from its own headers, since the
//! address passed with it means little (a raw IPv4 socket with the header included routes by the
//! header's destination, and ignores the port; a packet socket's address names an interface).
//!
//! Pure: the socket's family, type and protocol and the packet's first bytes in, the destination
//! out.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const AF_PACKET: u16 = 17;
const SOCK_RAW: u16 = 3;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;
const IPPROTO_RAW: u16 = 255;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;

/// The socket a packet was sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSocket {
    /// AF_INET, AF_INET6, AF_PACKET, ...
    pub family: u16,
    /// SOCK_RAW, SOCK_DGRAM, ...
    pub sock_type: u16,
    /// The protocol it was created with (for AF_PACKET, an ethertype in network order).
    pub protocol: u16,
}

/// Where a packet goes, as far as its first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    /// The destination address.
    pub addr: IpAddr,
    /// The destination port (UDP and TCP), when the transport header is in the bytes.
    pub port: Option<u16>,
}

/// The destination of a packet sent on `socket`, from its first bytes `data`. `sockaddr` is the
/// address passed with it (inet families), which a raw socket without the IP header uses.
pub fn destination(
    socket: RawSocket,
    data: &[u8],
    sockaddr: Option<IpAddr>,
) -> Option<Destination> {
    match socket.family {
        AF_PACKET if socket.sock_type == SOCK_RAW => {
            // Ethernet header, possibly one VLAN tag, then the network-layer packet.
            let mut at = 12;
            let mut ethertype = be16(data, at)?;
            if ethertype == ETH_P_8021Q {
                at += 4;
                ethertype = be16(data, at)?;
            }
            let ip = data.get(at + 2..)?;
            match ethertype {
                ETH_P_IP | ETH_P_IPV6 => ip_header(ip),
                _ => None,
            }
        }
        // SOCK_DGRAM packet socket: the kernel adds the link-layer header; the bytes start with
        // the network-layer packet.
        AF_PACKET => ip_header(data),
        AF_INET | AF_INET6 => {
            let header_included = socket.protocol == IPPROTO_RAW
                || (socket.family == AF_INET && looks_like_ipv4(data, sockaddr));
            if header_included {
                ip_header(data)
            } else {
                // The kernel writes the IP header from the sockaddr; the bytes start with the
                // transport header.
                let addr = sockaddr?;
                let port = matches!(socket.protocol, IPPROTO_UDP | IPPROTO_TCP)
                    .then(|| be16(data, 2))
                    .flatten();
                Some(Destination { addr, port })
            }
        }
        _ => None,
    }
}

/// An IPv4 header (IP_HDRINCL set on a socket of another protocol) whose destination is the
/// address passed.
fn looks_like_ipv4(data: &[u8], sockaddr: Option<IpAddr>) -> bool {
    let (Some(&first), Some(dst)) = (data.first(), data.get(16..20)) else {
        return false;
    };
    first >> 4 == 4
        && first & 0xf >= 5
        && sockaddr == Some(IpAddr::V4(Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3])))
}

/// The destination of an IPv4 or IPv6 packet starting at `data[0]`.
fn ip_header(data: &[u8]) -> Option<Destination> {
    match data.first()? >> 4 {
        4 => {
            let ihl = usize::from(data[0] & 0xf) * 4;
            let dst = data.get(16..20)?;
            let addr = IpAddr::V4(Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]));
            let proto = u16::from(*data.get(9)?);
            Some(Destination {
                addr,
                port: transport_port(proto, data, ihl),
            })
        }
        6 => {
            let dst: [u8; 16] = data.get(24..40)?.try_into().ok()?;
            let next = u16::from(*data.get(6)?);
            Some(Destination {
                addr: IpAddr::V6(Ipv6Addr::from(dst)),
                port: transport_port(next, data, 40),
            })
        }
        _ => None,
    }
}

/// The destination port of a UDP or TCP header at `data[at]`.
fn transport_port(proto: u16, data: &[u8], at: usize) -> Option<u16> {
    matches!(proto, IPPROTO_UDP | IPPROTO_TCP)
        .then(|| be16(data, at + 2))
        .flatten()
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn udp4(dst: [u8; 4], port: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 35, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1];
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0x9c, 0x40]);
        p.extend_from_slice(&port.to_be_bytes());
        p.extend_from_slice(&[0, 15, 0, 0]);
        p.extend_from_slice(b"payload");
        p
    }

    fn sock(family: u16, sock_type: u16, protocol: u16) -> RawSocket {
        RawSocket {
            family,
            sock_type,
            protocol,
        }
    }

    #[test]
    fn ipproto_raw_reads_the_header_not_the_sockaddr() {
        let d = destination(
            sock(AF_INET, SOCK_RAW, IPPROTO_RAW),
            &udp4([10, 1, 2, 3], 5555),
            Some(LO),
        );
        assert_eq!(
            d,
            Some(Destination {
                addr: "10.1.2.3".parse().expect("ip"),
                port: Some(5555)
            })
        );
    }

    #[test]
    fn hdrincl_on_another_protocol_is_recognised() {
        let d = destination(
            sock(AF_INET, SOCK_RAW, IPPROTO_UDP),
            &udp4([127, 0, 0, 1], 77),
            Some(LO),
        );
        assert_eq!(d.and_then(|d| d.port), Some(77));
    }

    #[test]
    fn without_the_header_the_transport_header_has_the_port() {
        let udp = [0x9c, 0x40, 0x15, 0xb3, 0, 15, 0, 0, b'x'];
        let d = destination(sock(AF_INET, SOCK_RAW, IPPROTO_UDP), &udp, Some(LO));
        assert_eq!(
            d,
            Some(Destination {
                addr: LO,
                port: Some(5555)
            })
        );
        // ICMP: no port.
        let d = destination(sock(AF_INET, SOCK_RAW, 1), &[8, 0, 0, 0], Some(LO));
        assert_eq!(
            d,
            Some(Destination {
                addr: LO,
                port: None
            })
        );
    }

    #[test]
    fn packet_sockets_read_through_the_ethernet_header() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&udp4([192, 0, 2, 9], 53));
        let d = destination(sock(AF_PACKET, SOCK_RAW, 0x0300), &frame, None);
        assert_eq!(
            d,
            Some(Destination {
                addr: "192.0.2.9".parse().expect("ip"),
                port: Some(53)
            })
        );
        // With a VLAN tag.
        let mut tagged = vec![0u8; 12];
        tagged.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
        tagged.extend_from_slice(&udp4([192, 0, 2, 9], 53));
        assert_eq!(destination(sock(AF_PACKET, SOCK_RAW, 0), &tagged, None), d);
        // Cooked (SOCK_DGRAM): the IP packet itself.
        assert_eq!(
            destination(sock(AF_PACKET, 2, 0), &udp4([192, 0, 2, 9], 53), None),
            d
        );
    }

    #[test]
    fn ipv6_headers() {
        let mut p = vec![0x60, 0, 0, 0, 0, 15, 17, 64];
        p.extend_from_slice(&[0; 16]);
        let dst: Ipv6Addr = "2001:db8::1".parse().expect("ip");
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb, 0, 15, 0, 0]);
        let d = destination(sock(AF_INET6, SOCK_RAW, IPPROTO_RAW), &p, None);
        assert_eq!(
            d,
            Some(Destination {
                addr: IpAddr::V6(dst),
                port: Some(443)
            })
        );
    }

    #[test]
    fn garbage_is_not_a_destination() {
        assert_eq!(
            destination(sock(AF_PACKET, SOCK_RAW, 0), &[1, 2, 3], None),
            None
        );
        assert_eq!(
            destination(sock(AF_INET, SOCK_RAW, IPPROTO_RAW), &[0x12; 30], Some(LO)),
            None
        );
        assert_eq!(
            destination(sock(AF_INET, SOCK_RAW, IPPROTO_UDP), &[0; 8], None),
            None
        );
    }
}
