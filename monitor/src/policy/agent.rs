//! Unix sockets of agents and daemons: the way a build reaches keys and root without opening a
//! file. A connection to the ssh-agent signs with the user's keys; to gpg-agent, decrypts and
//! signs; to docker, containerd or podman, starts a root container with the host mounted; to
//! systemd's private socket, starts units; to the D-Bus buses, talks to every service on them.
//!
//! Pure: the decision for one socket path, given the agent sockets the user's environment names.
use std::fmt;

/// Which agent or daemon a unix socket belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agent {
    /// ssh-agent (or a keyring's ssh-agent emulation).
    Ssh,
    /// gpg-agent or its keybox daemon.
    Gpg,
    /// The docker daemon.
    Docker,
    /// containerd.
    Containerd,
    /// podman's API service.
    Podman,
    /// systemd's private manager socket.
    Systemd,
    /// A D-Bus bus (system or session).
    Dbus,
}

impl Agent {
    /// What a connection to it gives, for the finding's detail.
    pub fn grants(self) -> &'static str {
        match self {
            Agent::Ssh => "signing with the user's SSH keys",
            Agent::Gpg => "signing and decrypting with the user's GPG keys",
            Agent::Docker | Agent::Containerd | Agent::Podman => {
                "root containers with the host's files mounted"
            }
            Agent::Systemd => "starting and changing system services",
            Agent::Dbus => "every service on the bus",
        }
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Agent::Ssh => "ssh-agent",
            Agent::Gpg => "gpg-agent",
            Agent::Docker => "docker",
            Agent::Containerd => "containerd",
            Agent::Podman => "podman",
            Agent::Systemd => "systemd",
            Agent::Dbus => "dbus",
        })
    }
}

/// The agent sockets the environment names: `SSH_AUTH_SOCK`, `DOCKER_HOST` and
/// `DBUS_SESSION_BUS_ADDRESS` (their `unix:` paths), as (agent, path).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentEnv {
    named: Vec<(Agent, String)>,
}

impl AgentEnv {
    /// From this process's environment (the build inherits it).
    pub fn from_process() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From variables looked up by `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut named = Vec::new();
        if let Some(p) = var("SSH_AUTH_SOCK").filter(|p| !p.is_empty()) {
            named.push((Agent::Ssh, p));
        }
        if let Some(p) = var("DOCKER_HOST").as_deref().and_then(unix_address) {
            named.push((Agent::Docker, p));
        }
        if let Some(addr) = var("DBUS_SESSION_BUS_ADDRESS") {
            // `unix:path=/run/user/1000/bus,guid=...` or `unix:abstract=/tmp/dbus-x`; several
            // addresses are separated by `;`.
            for one in addr.split(';') {
                for kv in one.trim_start_matches("unix:").split(',') {
                    match kv.split_once('=') {
                        Some(("path", p)) => named.push((Agent::Dbus, p.to_owned())),
                        Some(("abstract", p)) => named.push((Agent::Dbus, format!("@{p}"))),
                        _ => {}
                    }
                }
            }
        }
        Self { named }
    }

    /// The agent or daemon behind the unix socket `path` (abstract names start with `@`), if any.
    pub fn agent(&self, path: &str) -> Option<Agent> {
        if let Some((agent, _)) = self.named.iter().find(|(_, p)| p == path) {
            return Some(*agent);
        }
        well_known(path)
    }
}

/// `unix:///run/docker.sock` → `/run/docker.sock`.
fn unix_address(url: &str) -> Option<String> {
    let rest = url.strip_prefix("unix://")?;
    Some(rest.to_owned()).filter(|p| p.starts_with('/'))
}

/// Sockets recognised by their place or name, wherever the user's environment points.
fn well_known(path: &str) -> Option<Agent> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let dir_name = dir.rsplit('/').next().unwrap_or(dir);
    // ssh-agent: /tmp/ssh-XXXXXX/agent.<pid>; keyrings and forwarding helpers.
    if (dir_name.starts_with("ssh-") && name.starts_with("agent."))
        || name == "S.gpg-agent.ssh"
        || name.starts_with("ssh-agent")
        || name == "openssh_agent"
        || (name == "ssh" && matches!(dir_name, "keyring" | "gcr"))
    {
        return Some(Agent::Ssh);
    }
    if name.starts_with("S.gpg-agent") || name == "S.keyboxd" || name == "S.scdaemon" {
        return Some(Agent::Gpg);
    }
    if name == "docker.sock"
        || name == "dockershim.sock"
        || dir_name == "docker" && name.ends_with(".sock")
    {
        return Some(Agent::Docker);
    }
    if name.starts_with("containerd") && name.contains(".sock") || dir_name == "containerd" {
        return Some(Agent::Containerd);
    }
    if name == "podman.sock" || dir_name == "podman" && name.ends_with(".sock") {
        return Some(Agent::Podman);
    }
    // The manager's private socket (systemctl's way in), system or user instance.
    if name == "private" && dir_name == "systemd" {
        return Some(Agent::Systemd);
    }
    if name == "system_bus_socket" && dir_name == "dbus"
        || name == "bus" && dir.starts_with("/run/user/")
        || path.starts_with("@/tmp/dbus-")
    {
        return Some(Agent::Dbus);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> AgentEnv {
        AgentEnv::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_environments_sockets_wherever_they_are() {
        let e = env(&[
            ("SSH_AUTH_SOCK", "/home/u/.local/agent-x"),
            ("DOCKER_HOST", "unix:///srv/d.sock"),
            (
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/home/u/bus,guid=1;unix:abstract=/tmp/x",
            ),
        ]);
        assert_eq!(e.agent("/home/u/.local/agent-x"), Some(Agent::Ssh));
        assert_eq!(e.agent("/srv/d.sock"), Some(Agent::Docker));
        assert_eq!(e.agent("/home/u/bus"), Some(Agent::Dbus));
        assert_eq!(e.agent("@/tmp/x"), Some(Agent::Dbus));
        assert_eq!(
            env(&[("DOCKER_HOST", "tcp://1.2.3.4:2375")]),
            AgentEnv::default()
        );
    }

    #[test]
    fn well_known_sockets() {
        let e = AgentEnv::default();
        for (path, agent) in [
            ("/tmp/ssh-XXXXabcd/agent.1234", Agent::Ssh),
            ("/run/user/1000/keyring/ssh", Agent::Ssh),
            ("/run/user/1000/gnupg/S.gpg-agent.ssh", Agent::Ssh),
            ("/run/user/1000/gnupg/S.gpg-agent", Agent::Gpg),
            ("/home/u/.gnupg/S.gpg-agent.extra", Agent::Gpg),
            ("/var/run/docker.sock", Agent::Docker),
            ("/run/user/1000/docker.sock", Agent::Docker),
            ("/run/containerd/containerd.sock", Agent::Containerd),
            ("/run/containerd/containerd.sock.ttrpc", Agent::Containerd),
            ("/run/podman/podman.sock", Agent::Podman),
            ("/run/user/1000/podman/podman.sock", Agent::Podman),
            ("/run/systemd/private", Agent::Systemd),
            ("/run/user/1000/systemd/private", Agent::Systemd),
            ("/run/dbus/system_bus_socket", Agent::Dbus),
            ("/var/run/dbus/system_bus_socket", Agent::Dbus),
            ("/run/user/1000/bus", Agent::Dbus),
            ("@/tmp/dbus-AbCdEf", Agent::Dbus),
        ] {
            assert_eq!(e.agent(path), Some(agent), "{path}");
        }
    }

    #[test]
    fn ordinary_sockets_are_not_agents() {
        let e = AgentEnv::default();
        for path in [
            "/var/run/nscd/socket",
            "/run/systemd/journal/socket",
            "/dev/log",
            "/run/systemd/userdb/io.systemd.DynamicUser",
            "/tmp/buildwatch-test/agent.sock",
            "/home/u/project/target/private",
            "@buildwatch",
        ] {
            assert_eq!(e.agent(path), None, "{path}");
        }
    }
}
