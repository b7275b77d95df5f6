//! Network: connections and datagrams, DNS lookups, raw and packet sockets.
use super::{Allow, Verdict, attempt};
use crate::{
    model::{Connect, ConnectSyscall, Dns, EventKind, Socket, SocketFamily, paths},
    policy::{AgentEnv, Code},
    profile::{Endpoint, RuleList},
};

/// A connection or datagram: to an agent's socket, `agent-socket`; to libc's name service
/// cache, nothing; anywhere else, `unexpected-network`. A profile's `network` list may allow
/// either, unless `--enforce` refused it (a refusal is always reported). A packet on a raw
/// socket is never allowed.
pub(super) fn connect(c: &Connect, agents: &AgentEnv) -> Option<Verdict> {
    if c.is_raw() {
        return Some(raw_packet(c));
    }
    let allow = if c.refused {
        Allow::Never
    } else {
        Allow::List(RuleList::Network)
    };
    let tried = attempt_connect(c);
    if c.family == SocketFamily::Unix {
        if let Some(agent) = agents.agent(&c.addr) {
            return Some(Verdict::new(
                Code::AgentSocket,
                allow,
                c.addr.clone(),
                format!(
                    "connected to the {agent} socket {} (it gives {}){tried}",
                    c.addr,
                    agent.grants(),
                ),
            ));
        }
        if !c.refused && paths::is_name_service_socket(&c.addr) {
            return None;
        }
    }
    let ep = c.endpoint();
    let refused = if c.refused {
        " (refused by --enforce)"
    } else {
        ""
    };
    let detail = format!("{} {ep}{tried}{refused}", connect_verb(c));
    Some(Verdict::new(Code::UnexpectedNetwork, allow, ep, detail))
}

/// A DNS lookup: allowed by a `network` entry for the name, or for the resolver.
pub(super) fn dns(d: &Dns) -> Verdict {
    Verdict::new(
        Code::UnexpectedNetwork,
        Allow::List(RuleList::Network),
        format!("dns:{}", d.name),
        format!(
            "looked up {} ({}) at {}:{}",
            d.name, d.qtype, d.server, d.port
        ),
    )
}

/// A raw or packet socket's creation: never allowed (packets built by hand carry their real
/// destination inside them).
pub(super) fn socket(s: &Socket) -> Verdict {
    let what = match s.family.as_str() {
        "packet" => "a packet socket (link-layer frames built by hand)",
        _ => "a raw socket (IP packets built by hand)",
    };
    let outcome = if s.refused {
        " (refused by --enforce)".to_owned()
    } else if s.killed {
        " (the process was killed by --enforce before it could use it)".to_owned()
    } else {
        attempt(s.result)
    };
    Verdict::new(
        Code::RawSocket,
        Allow::Never,
        s.subject(),
        format!(
            "created {what}: {} {} protocol {}{outcome}",
            s.family, s.sock_type, s.protocol
        ),
    )
}

/// A packet sent on a raw or packet socket: where it goes, read from its headers.
fn raw_packet(c: &Connect) -> Verdict {
    let ep = c.endpoint();
    let passed = match &c.passed {
        Some(p) => format!(", whatever the address passed with it says ({p})"),
        None => String::new(),
    };
    let how = match c.syscall {
        ConnectSyscall::RawSendmsg => "sendmsg",
        ConnectSyscall::RawSendmmsg => "sendmmsg",
        ConnectSyscall::RawWrite => "write",
        _ => "sendto",
    };
    Verdict::new(
        Code::RawSocket,
        Allow::Never,
        format!("packet to {ep}"),
        format!(
            "sent a hand-built packet on a raw socket ({how}) to {ep}, read from the packet's own headers{passed}{}",
            attempt_connect(c)
        ),
    )
}

/// Whether `--enforce` refused this (or killed its process): reported whoever did it.
pub(super) fn is_refusal(kind: &EventKind) -> bool {
    match kind {
        EventKind::Connect(c) => c.refused,
        EventKind::Socket(s) => s.refused || s.killed,
        _ => false,
    }
}

/// How a connection or datagram went out: `connected to`, `sent a datagram (sendmmsg) to`.
fn connect_verb(c: &Connect) -> String {
    match (c.family, c.syscall) {
        (SocketFamily::Unix, _) => "connected to unix socket".to_owned(),
        (_, ConnectSyscall::Connect) => "connected to".to_owned(),
        (_, ConnectSyscall::Fastopen) => "opened a TCP Fast Open connection to".to_owned(),
        (_, ConnectSyscall::IoUring) => {
            "connected (through io_uring, no connect syscall) to".to_owned()
        }
        (_, ConnectSyscall::Int80Connect) => {
            "connected (through a 32-bit int 0x80 system call) to".to_owned()
        }
        (_, how) => format!("sent a datagram ({how}) to"),
    }
}

/// ` (attempt failed: ECONNREFUSED)` for a failed attempt; a non-blocking connect still under
/// way is not a failure.
fn attempt_connect(c: &Connect) -> String {
    match (c.result, c.error.as_deref()) {
        (r, Some("EINPROGRESS")) if r < 0 => String::new(),
        (r, Some(e)) if r < 0 => format!(" (attempt failed: {e})"),
        _ => String::new(),
    }
}

/// A connection's endpoint as profiles' `network` entries are matched against it.
pub fn endpoint(c: &Connect) -> Endpoint<'_> {
    match (c.family, c.addr.parse()) {
        (SocketFamily::Inet | SocketFamily::Inet6, Ok(addr)) => Endpoint::Inet {
            addr,
            port: c.port,
            name: None,
        },
        _ => Endpoint::Unix { path: &c.addr },
    }
}
