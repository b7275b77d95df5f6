//! Network patterns (`host[:port]`, `unix:…`) and the endpoints they are matched against.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    error::{ErrorKind, PathProblem},
    pattern::{PathPattern, glob},
};

/// What a `network` entry allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NetPattern {
    /// An IPv4/IPv6 endpoint: `host[:port]`.
    Inet {
        /// Which addresses.
        host: HostPattern,
        /// Which ports.
        port: PortPattern,
    },
    /// A unix domain socket: `unix:<path glob>` or `unix:@<abstract name glob>`.
    Unix(UnixPattern),
}

/// The host part of an inet network entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any address.
    Any,
    /// One address (an IPv4-mapped IPv6 address also matches its IPv4 form).
    Addr(IpAddr),
    /// A CIDR block.
    Net(IpNet),
    /// A DNS name, lowercase without trailing dot; `*.example.com` matches any subdomain. It
    /// matches only when the caller knows the name the address was resolved from.
    Name(String),
}

/// The port part of an inet network entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortPattern {
    /// No port, or `*`: any port.
    Any,
    /// One port.
    Port(u16),
}

/// A unix socket network entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixPattern {
    /// `unix:/path/glob`: a socket file (the path may start with a variable).
    Path(PathPattern),
    /// `unix:@name`: an abstract socket; the name (without `@`) is a glob.
    Abstract(String),
}

/// A network endpoint a process connected to, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// An IPv4/IPv6 address and port.
    Inet {
        /// The address connected to.
        addr: IpAddr,
        /// The port connected to.
        port: u16,
        /// The DNS name this address was resolved from during the run, when known.
        name: Option<&'a str>,
    },
    /// A DNS lookup of `name` (whichever resolver it went to). Allowed by an entry naming that
    /// host (any port: a lookup precedes the connection) or by `*`.
    Lookup {
        /// The name looked up.
        name: &'a str,
    },
    /// A unix socket: its path, or `@name` for an abstract socket.
    Unix {
        /// The socket's path, or `@` and the abstract name.
        path: &'a str,
    },
}

impl NetPattern {
    /// Parses a `network` entry.
    pub fn parse(text: &str) -> Result<Self, ErrorKind> {
        match text.strip_prefix("unix:") {
            Some(rest) => parse_unix(text, rest).map(NetPattern::Unix),
            None => parse_inet(text),
        }
    }
}

fn parse_unix(text: &str, rest: &str) -> Result<UnixPattern, ErrorKind> {
    let bad = |reason| ErrorKind::BadUnix {
        text: text.to_owned(),
        reason,
    };
    if let Some(name) = rest.strip_prefix('@') {
        if name.is_empty() {
            return Err(bad("the abstract socket name is empty"));
        }
        glob(name).map_err(|error| ErrorKind::BadGlob {
            text: text.to_owned(),
            reason: error.kind().to_string(),
        })?;
        return Ok(UnixPattern::Abstract(name.to_owned()));
    }
    if rest.is_empty() {
        return Err(bad("the socket path is empty"));
    }
    PathPattern::parse(rest)
        .map(UnixPattern::Path)
        .map_err(|error| match error {
            ErrorKind::RelativePath { .. }
            | ErrorKind::BadPath {
                problem: PathProblem::Empty,
                ..
            } => bad("the socket path is not absolute"),
            other => other,
        })
}

fn parse_inet(text: &str) -> Result<NetPattern, ErrorKind> {
    let bad_host = |host: &str, reason| ErrorKind::BadHost {
        text: text.to_owned(),
        host: host.to_owned(),
        reason,
    };
    if text.contains("://") {
        return Err(bad_host(text, "a URL is not a network entry"));
    }
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(bad_host(text, "`[` without its `]`"));
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(bad_host(text, "unexpected text after `]`")),
            },
        };
        (parse_bracketed_host(text, inside)?, port)
    } else {
        if text.matches(':').count() > 1 {
            return Err(ErrorKind::BadIp {
                text: text.to_owned(),
                host: text.to_owned(),
            });
        }
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        (parse_plain_host(text, host)?, port)
    };
    let port = match port {
        None | Some("*") => PortPattern::Any,
        Some(port) => match port.parse::<u16>() {
            Ok(number) if number != 0 && !port.starts_with('+') => PortPattern::Port(number),
            _ => {
                return Err(ErrorKind::BadPort {
                    text: text.to_owned(),
                    port: port.to_owned(),
                });
            }
        },
    };
    Ok(NetPattern::Inet { host, port })
}

/// The host inside `[…]`: an IPv6 address or CIDR block.
fn parse_bracketed_host(text: &str, host: &str) -> Result<HostPattern, ErrorKind> {
    if host.contains('/') {
        return parse_cidr::<Ipv6Addr>(text, host, 128, |addr, len| {
            Ipv6Net::new(addr, len).ok().map(IpNet::V6)
        })
        .map(HostPattern::Net);
    }
    Ipv6Addr::from_str(host)
        .map(|addr| HostPattern::Addr(IpAddr::V6(addr)))
        .map_err(|_| ErrorKind::BadIp {
            text: text.to_owned(),
            host: host.to_owned(),
        })
}

/// A host without brackets: `*`, IPv4, IPv4 CIDR or a DNS name.
fn parse_plain_host(text: &str, host: &str) -> Result<HostPattern, ErrorKind> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host.contains('/') {
        return parse_cidr::<Ipv4Addr>(text, host, 32, |addr, len| {
            Ipv4Net::new(addr, len).ok().map(IpNet::V4)
        })
        .map(HostPattern::Net);
    }
    if let Ok(addr) = Ipv4Addr::from_str(host) {
        return Ok(HostPattern::Addr(IpAddr::V4(addr)));
    }
    if !host.is_empty() && host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(ErrorKind::BadIp {
            text: text.to_owned(),
            host: host.to_owned(),
        });
    }
    dns_name(host)
        .map(HostPattern::Name)
        .ok_or_else(|| ErrorKind::BadHost {
            text: text.to_owned(),
            host: host.to_owned(),
            reason: "not an IP address, a CIDR block, `*` or a DNS name",
        })
}

/// Parses `addr/len`; refuses host bits (suggesting the block meant).
fn parse_cidr<A: FromStr + Copy>(
    text: &str,
    host: &str,
    max_len: u8,
    make: impl Fn(A, u8) -> Option<IpNet>,
) -> Result<IpNet, ErrorKind> {
    let bad = |reason: String, suggestion| ErrorKind::BadCidr {
        text: text.to_owned(),
        host: host.to_owned(),
        reason,
        suggestion,
    };
    let (addr, len) = host.split_once('/').unwrap_or((host, ""));
    let addr = A::from_str(addr).map_err(|_| bad(format!("`{addr}` is not an address"), None))?;
    let len = len
        .parse::<u8>()
        .ok()
        .filter(|&len| len <= max_len)
        .ok_or_else(|| bad(format!("the prefix length must be 0 to {max_len}"), None))?;
    let net = make(addr, len).ok_or_else(|| bad("invalid block".to_owned(), None))?;
    if net.trunc() != net {
        let block = match net.trunc() {
            IpNet::V4(block) => block.to_string(),
            IpNet::V6(block) => format!("[{block}]"),
        };
        return Err(bad("host bits are set".to_owned(), Some(block)));
    }
    Ok(net)
}

/// A DNS name (optionally `*.` + name), lowercased, without trailing dot.
fn dns_name(host: &str) -> Option<String> {
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let labels = name.strip_prefix("*.").unwrap_or(&name);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    (name.len() <= 253 && labels.split('.').all(label_ok)).then_some(name)
}

impl HostPattern {
    /// Whether the host matches `addr` (or `name`, the DNS name it was resolved from).
    pub fn matches(&self, addr: IpAddr, name: Option<&str>) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Addr(pattern) => pattern.to_canonical() == addr.to_canonical(),
            HostPattern::Net(net) => net.contains(&addr) || net.contains(&addr.to_canonical()),
            HostPattern::Name(pattern) => name.is_some_and(|name| {
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                match pattern.strip_prefix('*') {
                    Some(suffix) => name.len() > suffix.len() && name.ends_with(suffix),
                    None => name == *pattern,
                }
            }),
        }
    }
}

impl PortPattern {
    /// Whether the port matches.
    pub fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Port(allowed) => allowed == port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(text: &str) -> (HostPattern, PortPattern) {
        match NetPattern::parse(text).expect(text) {
            NetPattern::Inet { host, port } => (host, port),
            NetPattern::Unix(_) => panic!("{text} parsed as unix"),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn parses_hosts_and_ports() {
        assert_eq!(
            inet("127.0.0.1:8080"),
            (HostPattern::Addr(ip("127.0.0.1")), PortPattern::Port(8080))
        );
        assert_eq!(
            inet("[::1]:443"),
            (HostPattern::Addr(ip("::1")), PortPattern::Port(443))
        );
        assert_eq!(
            inet("[::1]"),
            (HostPattern::Addr(ip("::1")), PortPattern::Any)
        );
        assert_eq!(inet("*:443"), (HostPattern::Any, PortPattern::Port(443)));
        assert_eq!(inet("*"), (HostPattern::Any, PortPattern::Any));
        assert_eq!(inet("*:*"), (HostPattern::Any, PortPattern::Any));
        assert_eq!(
            inet("10.0.0.0/8"),
            (
                HostPattern::Net("10.0.0.0/8".parse().expect("net")),
                PortPattern::Any
            )
        );
        assert_eq!(
            inet("[fd00::/8]:53"),
            (
                HostPattern::Net("fd00::/8".parse().expect("net")),
                PortPattern::Port(53)
            )
        );
        assert_eq!(
            inet("Crates.IO.:443"),
            (
                HostPattern::Name("crates.io".into()),
                PortPattern::Port(443)
            )
        );
        assert_eq!(
            inet("*.crates.io"),
            (HostPattern::Name("*.crates.io".into()), PortPattern::Any)
        );
    }

    #[test]
    fn rejects_bad_entries() {
        let err = |text: &str| NetPattern::parse(text).expect_err(text);
        assert!(matches!(err("300.1.1.1:80"), ErrorKind::BadIp { .. }));
        assert!(matches!(err("1.2.3:80"), ErrorKind::BadIp { .. }));
        assert!(matches!(err("::1"), ErrorKind::BadIp { .. }));
        assert!(matches!(err("[::g]:1"), ErrorKind::BadIp { .. }));
        assert!(matches!(err("10.0.0.0/33"), ErrorKind::BadCidr { .. }));
        assert!(matches!(err("10.0.0.0/x"), ErrorKind::BadCidr { .. }));
        assert!(matches!(err("10.0.0/8"), ErrorKind::BadCidr { .. }));
        assert!(matches!(
            err("10.0.0.1/8"),
            ErrorKind::BadCidr { suggestion: Some(s), .. } if s == "10.0.0.0/8"
        ));
        assert!(matches!(
            err("[fd00::1/8]"),
            ErrorKind::BadCidr { suggestion: Some(s), .. } if s == "[fd00::/8]"
        ));
        assert!(matches!(err("[10.0.0.0/8]"), ErrorKind::BadCidr { .. }));
        assert!(matches!(err("127.0.0.1:0"), ErrorKind::BadPort { .. }));
        assert!(matches!(err("127.0.0.1:65536"), ErrorKind::BadPort { .. }));
        assert!(matches!(err("127.0.0.1:+80"), ErrorKind::BadPort { .. }));
        assert!(matches!(err("127.0.0.1:"), ErrorKind::BadPort { .. }));
        assert!(matches!(err("[::1]x"), ErrorKind::BadHost { .. }));
        assert!(matches!(err("[::1"), ErrorKind::BadHost { .. }));
        assert!(matches!(err(""), ErrorKind::BadHost { .. }));
        assert!(matches!(err("exa mple.com"), ErrorKind::BadHost { .. }));
        assert!(matches!(err("10.*.0.1"), ErrorKind::BadHost { .. }));
        assert!(matches!(err("-bad.com"), ErrorKind::BadHost { .. }));
        assert!(matches!(
            err("https://crates.io"),
            ErrorKind::BadHost { .. }
        ));
        assert!(matches!(err("unix:"), ErrorKind::BadUnix { .. }));
        assert!(matches!(err("unix:@"), ErrorKind::BadUnix { .. }));
        assert!(matches!(err("unix:run/x"), ErrorKind::BadUnix { .. }));
        assert!(matches!(err("unix:/run/[x"), ErrorKind::BadGlob { .. }));
    }

    #[test]
    fn parses_unix_entries() {
        assert!(matches!(
            NetPattern::parse("unix:/run/pcscd/*"),
            Ok(NetPattern::Unix(UnixPattern::Path(_)))
        ));
        assert!(matches!(
            NetPattern::parse("unix:${TMPDIR}/sock"),
            Ok(NetPattern::Unix(UnixPattern::Path(_)))
        ));
        assert_eq!(
            NetPattern::parse("unix:@abstract-name").expect("abstract"),
            NetPattern::Unix(UnixPattern::Abstract("abstract-name".into()))
        );
    }

    #[test]
    fn host_matching() {
        let net = |text: &str| inet(text).0;
        assert!(net("*").matches(ip("8.8.8.8"), None));
        assert!(net("127.0.0.1").matches(ip("127.0.0.1"), None));
        assert!(net("127.0.0.1").matches(ip("::ffff:127.0.0.1"), None));
        assert!(net("[::ffff:127.0.0.1]").matches(ip("127.0.0.1"), None));
        assert!(!net("127.0.0.1").matches(ip("127.0.0.2"), None));
        assert!(net("10.0.0.0/8").matches(ip("10.255.0.1"), None));
        assert!(net("10.0.0.0/8").matches(ip("::ffff:10.1.2.3"), None));
        assert!(!net("10.0.0.0/8").matches(ip("11.0.0.1"), None));
        assert!(net("[fd00::/8]").matches(ip("fd12::1"), None));
        assert!(!net("crates.io").matches(ip("1.2.3.4"), None));
        assert!(net("crates.io").matches(ip("1.2.3.4"), Some("CRATES.io.")));
        assert!(!net("crates.io").matches(ip("1.2.3.4"), Some("static.crates.io")));
        assert!(net("*.crates.io").matches(ip("1.2.3.4"), Some("static.crates.io")));
        assert!(!net("*.crates.io").matches(ip("1.2.3.4"), Some("crates.io")));
        assert!(!net("*.crates.io").matches(ip("1.2.3.4"), Some("evilcrates.io")));
        assert!(PortPattern::Any.matches(1));
        assert!(PortPattern::Port(443).matches(443));
        assert!(!PortPattern::Port(443).matches(80));
    }
}
