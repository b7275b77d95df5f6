//! Built-in classifiers: reads of secrets, and writes that make something run later.
//!
//! Paths are absolute and already resolved. Home-relative entries apply to the watched user's
//! home and also to every `/home/<user>` and to `/root`: another user's SSH keys are no less
//! secret.

/// How an entry matches a path (relative to a home, or absolute).
#[derive(Clone, Copy)]
enum Entry {
    /// Exactly this file.
    File(&'static str),
    /// This directory and everything under it.
    Tree(&'static str),
}

impl Entry {
    fn matches(self, path: &str) -> bool {
        match self {
            Entry::File(file) => path == file,
            Entry::Tree(dir) => under(path, dir),
        }
    }
}

/// `path` is `dir` or inside it.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

use Entry::{File, Tree};

/// Secrets under a home directory (paths relative to it).
const HOME_SECRETS: &[(Entry, &str)] = &[
    (Tree(".ssh"), "ssh-key"),
    (Tree(".gnupg"), "gpg"),
    (File(".cargo/credentials"), "cargo-credentials"),
    (File(".cargo/credentials.toml"), "cargo-credentials"),
    (File(".npmrc"), "npm-credentials"),
    (File(".pypirc"), "pypi-credentials"),
    (File(".netrc"), "netrc"),
    (File(".git-credentials"), "git-credentials"),
    (File(".config/git/credentials"), "git-credentials"),
    (File(".config/gh/hosts.yml"), "git-credentials"),
    (Tree(".aws"), "cloud-credentials"),
    (Tree(".config/gcloud"), "cloud-credentials"),
    (Tree(".azure"), "cloud-credentials"),
    (File(".kube/config"), "kube-config"),
    (File(".docker/config.json"), "docker-credentials"),
    (File(".vault-token"), "vault-token"),
    (Tree(".password-store"), "password-store"),
    (Tree(".local/share/keyrings"), "keyring"),
    (Tree(".mozilla"), "browser-profile"),
    (Tree(".config/google-chrome"), "browser-profile"),
    (Tree(".config/chromium"), "browser-profile"),
    (Tree(".config/BraveSoftware"), "browser-profile"),
    (Tree(".config/microsoft-edge"), "browser-profile"),
    (File(".bash_history"), "shell-history"),
    (File(".zsh_history"), "shell-history"),
    (File(".sh_history"), "shell-history"),
    (File(".local/share/fish/fish_history"), "shell-history"),
    (File(".python_history"), "shell-history"),
    (File(".node_repl_history"), "shell-history"),
    (File(".psql_history"), "shell-history"),
    (File(".mysql_history"), "shell-history"),
];

/// System-wide secrets.
const SYSTEM_SECRETS: &[(Entry, &str)] = &[
    (File("/etc/shadow"), "system-secrets"),
    (File("/etc/shadow-"), "system-secrets"),
    (File("/etc/gshadow"), "system-secrets"),
    (File("/etc/gshadow-"), "system-secrets"),
    (File("/etc/sudoers"), "system-secrets"),
    (Tree("/etc/sudoers.d"), "system-secrets"),
    (Tree("/run/secrets"), "system-secrets"),
    (Tree("/var/run/secrets"), "system-secrets"),
];

/// Persistence under a home directory (paths relative to it).
const HOME_PERSISTENCE: &[(Entry, &str)] = &[
    (File(".ssh/authorized_keys"), "ssh-authorized-keys"),
    (File(".ssh/authorized_keys2"), "ssh-authorized-keys"),
    (File(".ssh/config"), "ssh-config"),
    (File(".cargo/config"), "cargo-config"),
    (File(".cargo/config.toml"), "cargo-config"),
    (Tree(".cargo/bin"), "cargo-bin"),
    (File(".bashrc"), "shell-startup"),
    (File(".bash_profile"), "shell-startup"),
    (File(".bash_login"), "shell-startup"),
    (File(".bash_logout"), "shell-startup"),
    (File(".profile"), "shell-startup"),
    (File(".zshrc"), "shell-startup"),
    (File(".zprofile"), "shell-startup"),
    (File(".zshenv"), "shell-startup"),
    (File(".zlogin"), "shell-startup"),
    (File(".config/fish/config.fish"), "shell-startup"),
    (Tree(".config/fish/conf.d"), "shell-startup"),
    (Tree(".config/systemd/user"), "systemd-unit"),
    (Tree(".config/autostart"), "autostart"),
    (File(".gitconfig"), "git-config"),
    (File(".config/git/config"), "git-config"),
    (Tree(".local/bin"), "user-bin"),
    // Editors and coding agents: settings, tasks and hooks they run on their own (VS Code's
    // user tasks and settings, Claude Code's hooks, MCP servers, extensions).
    (Tree(".config/Code/User"), "editor"),
    (Tree(".config/Code - OSS/User"), "editor"),
    (Tree(".config/VSCodium/User"), "editor"),
    (Tree(".config/Cursor/User"), "editor"),
    (Tree(".vscode/extensions"), "editor"),
    (Tree(".vscode-server"), "editor"),
    (Tree(".cursor"), "editor"),
    (File(".claude.json"), "editor"),
    (File(".claude/settings.json"), "editor"),
    (File(".claude/settings.local.json"), "editor"),
    (Tree(".claude/commands"), "editor"),
    (Tree(".claude/agents"), "editor"),
    (Tree(".claude/hooks"), "editor"),
    (File(".claude/CLAUDE.md"), "editor"),
    (File(".gemini/settings.json"), "editor"),
    (File(".codex/config.toml"), "editor"),
    (Tree(".config/zed"), "editor"),
    (Tree(".config/nvim"), "editor"),
    (File(".vimrc"), "editor"),
    (Tree(".vim/plugin"), "editor"),
    (File(".emacs"), "editor"),
    (File(".emacs.d/init.el"), "editor"),
    (Tree(".config/JetBrains"), "editor"),
    // The session's environment: variables (PATH, LD_PRELOAD) every later program gets.
    (Tree(".config/environment.d"), "session-environment"),
    (File(".pam_environment"), "session-environment"),
    (Tree(".profile.d"), "session-environment"),
    (File(".xprofile"), "session-environment"),
    (File(".xsessionrc"), "session-environment"),
    (File(".xinitrc"), "session-environment"),
    (Tree(".config/plasma-workspace/env"), "session-environment"),
];

/// System-wide persistence.
const SYSTEM_PERSISTENCE: &[(Entry, &str)] = &[
    (Tree("/var/spool/cron"), "cron"),
    (Tree("/etc/systemd/system"), "systemd-unit"),
    (Tree("/etc/systemd/user"), "systemd-unit"),
    (Tree("/usr/lib/systemd/system"), "systemd-unit"),
    (Tree("/lib/systemd/system"), "systemd-unit"),
    (File("/etc/ld.so.preload"), "ld-preload"),
    (Tree("/etc/profile.d"), "shell-startup"),
    (File("/etc/profile"), "shell-startup"),
    (File("/etc/bash.bashrc"), "shell-startup"),
    (File("/etc/environment"), "shell-startup"),
    (Tree("/etc/environment.d"), "session-environment"),
    (File("/etc/security/pam_env.conf"), "session-environment"),
];

/// The part of `path` under a home directory: the watched user's, any `/home/<user>`, `/root`.
fn home_relative<'p>(path: &'p str, home: Option<&str>) -> Option<&'p str> {
    let home = home
        .map(|home| home.trim_end_matches('/'))
        .filter(|home| home.starts_with('/'));
    if let Some(rest) = home.and_then(|home| path.strip_prefix(home)?.strip_prefix('/')) {
        return Some(rest);
    }
    if let Some(rest) = path.strip_prefix("/home/") {
        return rest.split_once('/').map(|(_, rest)| rest);
    }
    path.strip_prefix("/root/")
}

fn lookup(table: &[(Entry, &'static str)], path: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(entry, _)| entry.matches(path))
        .map(|&(_, category)| category)
}

/// The kind of secret reading `path` touches, if any: `ssh-key`, `gpg`, `cargo-credentials`,
/// `npm-credentials`, `pypi-credentials`, `netrc`, `git-credentials`, `cloud-credentials`,
/// `kube-config`, `docker-credentials`, `vault-token`, `password-store`, `keyring`,
/// `browser-profile`, `shell-history`, `dotenv`, `system-secrets`, `process-secrets`,
/// `root-home`. `home` is the watched user's home directory.
pub fn sensitive_read(path: &str, home: Option<&str>) -> Option<&'static str> {
    if let Some(category) = home_relative(path, home).and_then(|rel| lookup(HOME_SECRETS, rel)) {
        return Some(category);
    }
    if let Some(category) = lookup(SYSTEM_SECRETS, path) {
        return Some(category);
    }
    if is_process_secret(path) {
        return Some("process-secrets");
    }
    if is_dotenv(path) {
        return Some("dotenv");
    }
    let home_is_root = home.is_some_and(|home| home.trim_end_matches('/') == "/root");
    if !home_is_root && under(path, "/root") {
        return Some("root-home");
    }
    None
}

/// Whether no path at or below `dir` names a secret by [`sensitive_read`] (for a watched user
/// whose home is `home`), leaving aside names with a component that starts with a dot below
/// `dir` (`..` climbs out of it; `.env` files are secrets anywhere): such paths are judged one
/// by one. `toolchain`: `dir` is rustc's sysroot or cargo's registry or git checkouts, which
/// are no secret even in another user's home (as `Places::sensitive_read` says), so `/root`
/// counts only for its secret places there.
///
/// The kernel counts failed reads below such a directory instead of sending them
/// (`policy::quiet`), so this must hold for every name below it: `dir` must not be or lie in a
/// secret place, nor hold one (in the watched user's home, root's, any `/home/<user>`, the
/// system's), nor be or hold `/proc`.
pub fn no_secret_below(dir: &str, home: Option<&str>, toolchain: bool) -> bool {
    // Absolute and normal (no `.`, `..` or empty component, no trailing slash); not `/`.
    if dir == "/" || !crate::model::path::is_normal(dir) {
        return false;
    }
    // `dir` itself, as a file: in a secret tree, a secret file, or root's home.
    match sensitive_read(dir, home) {
        None => {}
        Some("root-home") if toolchain => {}
        Some(_) => return false,
    }
    // Places that would lie at or below `dir`: homes as a whole (root's among `homes` below),
    // /proc, and every fixed secret place of every home `dir` may be in.
    if ["/home", "/proc"].iter().any(|p| under(p, dir)) || under(dir, "/proc") {
        return false;
    }
    let mut homes: Vec<&str> = vec!["/root"];
    homes.extend(
        home.map(|h| h.trim_end_matches('/'))
            .filter(|h| h.starts_with('/')),
    );
    if let Some(user) = dir
        .strip_prefix("/home/")
        .and_then(|rest| rest.split('/').next())
    {
        homes.push(&dir[.."/home/".len() + user.len()]);
    }
    if homes.iter().any(|h| under(h, dir)) {
        return false;
    }
    !homes
        .iter()
        .flat_map(|h| secret_places(h))
        .any(|place| under(&place, dir))
}

/// Every place `sensitive_read` names a secret by a fixed path: the files and trees under `home`
/// and the system-wide ones. What exists there at start is protected by identity (device and
/// inode) as well; `.env` files and `/proc` are found otherwise.
pub fn secret_places(home: &str) -> Vec<String> {
    let home = home.trim_end_matches('/');
    let path = |entry: Entry| match entry {
        File(p) | Tree(p) => p,
    };
    HOME_SECRETS
        .iter()
        .map(|&(entry, _)| format!("{home}/{}", path(entry)))
        .chain(
            SYSTEM_SECRETS
                .iter()
                .map(|&(entry, _)| path(entry).to_owned()),
        )
        .collect()
}

/// Every place `persistence_write` names by a fixed path: the files and trees under `home` and
/// the system-wide ones. What exists there at start is known to the kernel by identity under
/// `--enforce` (cron's `/etc/cron*` and git hooks are found otherwise).
pub fn persistence_places(home: &str) -> Vec<String> {
    let home = home.trim_end_matches('/');
    let path = |entry: Entry| match entry {
        File(p) | Tree(p) => p,
    };
    HOME_PERSISTENCE
        .iter()
        .map(|&(entry, _)| format!("{home}/{}", path(entry)))
        .chain(
            SYSTEM_PERSISTENCE
                .iter()
                .map(|&(entry, _)| path(entry).to_owned()),
        )
        .collect()
}

/// `/proc/<pid>/environ` or `/mem` (also `self`, `thread-self` and `task/<tid>/`): another
/// process's environment holds tokens; its memory holds everything.
fn is_process_secret(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/proc/") else {
        return false;
    };
    let is_task = |s: &str| s == "self" || s == "thread-self" || is_number(s);
    let parts: Vec<&str> = rest.split('/').collect();
    let file = match parts.as_slice() {
        [task, file] if is_task(task) => file,
        [task, "task", tid, file] if is_task(task) && is_number(tid) => file,
        _ => return false,
    };
    matches!(*file, "environ" | "mem")
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `.env` or `.env.<anything>` anywhere.
fn is_dotenv(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == ".env" || name.starts_with(".env.")
}

/// The kind of persistence writing `path` sets up, if any: `ssh-authorized-keys`, `ssh-config`,
/// `cargo-config`, `cargo-bin`, `shell-startup`, `cron`, `systemd-unit`, `autostart`,
/// `git-hook`, `git-config`, `ld-preload`, `user-bin`, `editor`, `session-environment`. `home` is the watched user's home.
pub fn persistence_write(path: &str, home: Option<&str>) -> Option<&'static str> {
    if let Some(category) = home_relative(path, home).and_then(|rel| lookup(HOME_PERSISTENCE, rel))
    {
        return Some(category);
    }
    if let Some(category) = lookup(SYSTEM_PERSISTENCE, path) {
        return Some(category);
    }
    // /etc/crontab, /etc/cron.d/*, /etc/cron.daily/*, ...
    if path
        .strip_prefix("/etc/")
        .is_some_and(|rest| rest.starts_with("cron"))
    {
        return Some("cron");
    }
    if is_git_hook(path) {
        return Some("git-hook");
    }
    None
}

/// `…/.git/hooks/<name>`: runs at the next commit, checkout or push in that repository.
fn is_git_hook(path: &str) -> bool {
    path.match_indices("/.git/hooks/").any(|(at, found)| {
        let name = &path[at + found.len()..];
        !name.is_empty() && !name.contains('/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<&str> = Some("/home/u");

    #[test]
    fn sensitive_reads() {
        let cases = [
            ("/home/u/.ssh/id_ed25519", "ssh-key"),
            ("/home/u/.ssh/known_hosts", "ssh-key"),
            ("/home/u/.ssh", "ssh-key"),
            ("/home/u/.gnupg/private-keys-v1.d/x.key", "gpg"),
            ("/home/u/.cargo/credentials", "cargo-credentials"),
            ("/home/u/.cargo/credentials.toml", "cargo-credentials"),
            ("/home/u/.npmrc", "npm-credentials"),
            ("/home/u/.pypirc", "pypi-credentials"),
            ("/home/u/.netrc", "netrc"),
            ("/home/u/.git-credentials", "git-credentials"),
            ("/home/u/.config/gh/hosts.yml", "git-credentials"),
            ("/home/u/.aws/credentials", "cloud-credentials"),
            (
                "/home/u/.config/gcloud/application_default_credentials.json",
                "cloud-credentials",
            ),
            ("/home/u/.azure/accessTokens.json", "cloud-credentials"),
            ("/home/u/.kube/config", "kube-config"),
            ("/home/u/.docker/config.json", "docker-credentials"),
            ("/home/u/.vault-token", "vault-token"),
            ("/home/u/.password-store/bank.gpg", "password-store"),
            ("/home/u/.local/share/keyrings/login.keyring", "keyring"),
            (
                "/home/u/.mozilla/firefox/x.default/logins.json",
                "browser-profile",
            ),
            (
                "/home/u/.config/google-chrome/Default/Cookies",
                "browser-profile",
            ),
            (
                "/home/u/.config/chromium/Default/Login Data",
                "browser-profile",
            ),
            (
                "/home/u/.config/BraveSoftware/Brave-Browser/Default/Cookies",
                "browser-profile",
            ),
            (
                "/home/u/.config/microsoft-edge/Default/Cookies",
                "browser-profile",
            ),
            ("/home/u/.bash_history", "shell-history"),
            ("/home/u/.zsh_history", "shell-history"),
            ("/home/u/.local/share/fish/fish_history", "shell-history"),
            ("/home/u/.python_history", "shell-history"),
            ("/home/u/.psql_history", "shell-history"),
            ("/home/u/.mysql_history", "shell-history"),
            ("/home/u/project/.env", "dotenv"),
            ("/srv/app/.env.production", "dotenv"),
            ("/etc/shadow", "system-secrets"),
            ("/etc/gshadow", "system-secrets"),
            ("/etc/sudoers", "system-secrets"),
            ("/etc/sudoers.d/90-admin", "system-secrets"),
            ("/run/secrets/db_password", "system-secrets"),
            (
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
                "system-secrets",
            ),
            ("/proc/1234/environ", "process-secrets"),
            ("/proc/1234/mem", "process-secrets"),
            ("/proc/self/environ", "process-secrets"),
            ("/proc/1/task/2/environ", "process-secrets"),
            ("/root/notes.txt", "root-home"),
            // Other users' homes and root's are homes too.
            ("/home/other/.ssh/id_rsa", "ssh-key"),
            ("/root/.aws/config", "cloud-credentials"),
        ];
        for (path, category) in cases {
            assert_eq!(sensitive_read(path, HOME), Some(category), "{path}");
        }
        // A home outside /home.
        assert_eq!(
            sensitive_read("/var/lib/builder/.netrc", Some("/var/lib/builder/")),
            Some("netrc")
        );
    }

    #[test]
    fn no_secret_below_the_toolchain_the_system_and_a_target_directory() {
        for (dir, home, toolchain) in [
            ("/usr", HOME, false),
            ("/lib", HOME, false),
            ("/lib64", HOME, false),
            ("/home/u/project/target", HOME, false),
            (
                "/home/u/.rustup/toolchains/stable-x86_64-unknown-linux-gnu",
                HOME,
                true,
            ),
            ("/home/u/.cargo/registry/src", HOME, true),
            (
                "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu",
                HOME,
                true,
            ),
            (
                "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu",
                Some("/root"),
                false,
            ),
            ("/home/other/project/target", HOME, false),
            (
                "/var/lib/builder/ws/target",
                Some("/var/lib/builder"),
                false,
            ),
        ] {
            assert!(no_secret_below(dir, home, toolchain), "{dir}");
        }
    }

    #[test]
    fn a_secret_at_or_below_is_never_quiet() {
        for (dir, home, toolchain) in [
            ("/", HOME, false),
            ("/home", HOME, false),
            ("/home/u", HOME, false),
            ("/home/other", HOME, false),
            ("/home/u/.ssh", HOME, false),
            ("/home/u/.ssh/keys", HOME, false),
            ("/home/u/.config", HOME, false),
            ("/home/u/.cargo", HOME, true),
            ("/home/u/.local/share", HOME, false),
            ("/root", HOME, true),
            ("/root/project/target", HOME, false),
            ("/root/.ssh", Some("/root"), true),
            ("/var/lib/builder", Some("/var/lib/builder"), false),
            ("/var/lib/builder/.aws", Some("/var/lib/builder"), false),
            ("/etc", HOME, false),
            ("/etc/sudoers.d", HOME, false),
            ("/run", HOME, false),
            ("/var", HOME, false),
            ("/var/run", HOME, false),
            ("/proc", HOME, false),
            ("/proc/self", HOME, false),
            ("relative/target", HOME, false),
            ("/usr/", HOME, false),
            ("/usr/../root", HOME, false),
            ("/usr/./lib", HOME, false),
            ("/usr//lib", HOME, false),
        ] {
            assert!(!no_secret_below(dir, home, toolchain), "{dir}");
        }
    }

    #[test]
    fn secret_places_are_secrets() {
        let places = secret_places("/home/u/");
        assert!(places.contains(&"/home/u/.ssh".to_owned()));
        assert!(places.contains(&"/etc/shadow".to_owned()));
        for place in &places {
            assert!(sensitive_read(place, HOME).is_some(), "{place}");
        }
    }

    #[test]
    fn not_sensitive() {
        let cases = [
            "/home/u/.cargo/registry/src/index.crates.io-1/libc-0.2.0/src/lib.rs",
            "/home/u/.cargo/config.toml",
            "/home/u/.sshrc",
            "/home/u/project/src/environment.rs",
            "/home/u/project/.envrc",
            "/home/u/project/env",
            "/home/u/.config/gh/config.yml",
            "/home/u/.kube/cache/x",
            "/home/u/.docker/buildx/x",
            "/etc/passwd",
            "/etc/shadowsocks.json",
            "/etc/ld.so.cache",
            "/proc/self/status",
            "/proc/1234/cmdline",
            "/proc/sys/kernel/environ",
            "/usr/include/zlib.h",
            "/rootfs/x",
            "/home/u",
        ];
        for path in cases {
            assert_eq!(sensitive_read(path, HOME), None, "{path}");
        }
        assert_eq!(
            sensitive_read("/root/.cargo/registry/x", Some("/root")),
            None
        );
        assert_eq!(
            sensitive_read("/root/.ssh/id_rsa", Some("/root")),
            Some("ssh-key")
        );
    }

    #[test]
    fn persistence_writes() {
        let cases = [
            ("/home/u/.ssh/authorized_keys", "ssh-authorized-keys"),
            ("/home/u/.ssh/authorized_keys2", "ssh-authorized-keys"),
            ("/home/u/.ssh/config", "ssh-config"),
            ("/home/u/.cargo/config", "cargo-config"),
            ("/home/u/.cargo/config.toml", "cargo-config"),
            ("/home/u/.cargo/bin/cargo-evil", "cargo-bin"),
            ("/home/u/.bashrc", "shell-startup"),
            ("/home/u/.bash_profile", "shell-startup"),
            ("/home/u/.profile", "shell-startup"),
            ("/home/u/.zshrc", "shell-startup"),
            ("/home/u/.zprofile", "shell-startup"),
            ("/home/u/.config/fish/config.fish", "shell-startup"),
            ("/var/spool/cron/crontabs/u", "cron"),
            ("/etc/crontab", "cron"),
            ("/etc/cron.d/job", "cron"),
            ("/etc/cron.daily/job", "cron"),
            ("/home/u/.config/systemd/user/evil.service", "systemd-unit"),
            ("/etc/systemd/system/evil.service", "systemd-unit"),
            ("/home/u/.config/autostart/evil.desktop", "autostart"),
            ("/home/u/project/.git/hooks/pre-commit", "git-hook"),
            ("/home/u/.gitconfig", "git-config"),
            ("/etc/ld.so.preload", "ld-preload"),
            ("/etc/profile.d/evil.sh", "shell-startup"),
            ("/home/u/.local/bin/cc", "user-bin"),
            ("/root/.bashrc", "shell-startup"),
            ("/home/u/.config/Code/User/tasks.json", "editor"),
            ("/home/u/.claude/settings.json", "editor"),
            (
                "/home/u/.config/environment.d/50-evil.conf",
                "session-environment",
            ),
            ("/home/u/.pam_environment", "session-environment"),
        ];
        for (path, category) in cases {
            assert_eq!(persistence_write(path, HOME), Some(category), "{path}");
        }
    }

    #[test]
    fn not_persistence() {
        let cases = [
            "/home/u/project/target/debug/build/x-1/out/gen.rs",
            "/home/u/.cargo/registry/cache/x.crate",
            "/home/u/.ssh/known_hosts",
            "/home/u/.bashrc.d-notes/x",
            "/home/u/project/.git/hooks/sub/x",
            "/home/u/project/.git/hooks",
            "/home/u/project/.git/config",
            "/home/u/project/git/hooks/pre-commit",
            "/etc/hosts",
            "/tmp/cron",
            "/home/u/.local/share/x",
        ];
        for path in cases {
            assert_eq!(persistence_write(path, HOME), None, "{path}");
        }
    }
}
