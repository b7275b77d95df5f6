//! Role rules compiled against one crate instance's variables, for cheap per-event matching.
use globset::{Candidate, GlobMatcher, GlobSet, GlobSetBuilder};

use super::{
    network::{Endpoint, HostPattern, NetPattern, PortPattern, UnixPattern},
    pattern::{ExecPattern, PathPattern, glob},
    rules::{RoleRules, Rule, RuleList},
    sensitive,
    vars::{Var, Vars},
};

/// A rule that could not be compiled and so matches nothing. Patterns are checked when the
/// profile is parsed and variable values are escaped, so this is not expected; it is kept so
/// that the caller can say so rather than have a rule silently do nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileProblem {
    /// The list the rule is in.
    pub list: RuleList,
    /// The rule's index in that list; `None` when the whole list failed to compile.
    pub index: Option<usize>,
    /// What went wrong.
    pub reason: String,
}

/// [`RoleRules`] compiled against one [`Vars`]: glob sets are built once, each match is a
/// single automaton run. Every matcher returns the index of the first matching rule of its list.
#[derive(Clone, Debug)]
pub struct CompiledRules {
    exec_paths: PathSet,
    exec_names: PathSet,
    read: PathSet,
    write: PathSet,
    sensitive_read: PathSet,
    network: Vec<(usize, CompiledNet)>,
    link: Vec<(usize, GlobMatcher)>,
    home: Option<String>,
    problems: Vec<CompileProblem>,
}

/// A glob set and, for each of its globs, the index of the rule it came from (rules whose
/// variable is unset have no glob).
#[derive(Clone, Debug)]
struct PathSet {
    set: GlobSet,
    rules: Vec<usize>,
}

#[derive(Clone, Debug)]
enum CompiledNet {
    Inet(HostPattern, PortPattern),
    UnixPath(GlobMatcher),
    UnixAbstract(GlobMatcher),
}

impl RoleRules {
    /// Compiles the rules with the variables of one crate instance. Patterns using an unset
    /// variable match nothing.
    pub fn compile(&self, vars: &Vars) -> CompiledRules {
        let mut problems = Vec::new();
        let paths = |rules: &[Rule<PathPattern>]| -> Vec<(usize, String)> {
            rules
                .iter()
                .enumerate()
                .filter_map(|(index, rule)| Some((index, rule.pattern.resolve(vars)?)))
                .collect()
        };
        let mut exec_paths = Vec::new();
        let mut exec_names = Vec::new();
        for (index, rule) in self.exec.iter().enumerate() {
            match &rule.pattern {
                ExecPattern::Name(name) => exec_names.push((index, name.clone())),
                ExecPattern::Path(path) => {
                    exec_paths.extend(path.resolve(vars).map(|g| (index, g)))
                }
            }
        }
        let mut network = Vec::new();
        for (index, rule) in self.network.iter().enumerate() {
            let matcher = |text: &str, problems: &mut Vec<CompileProblem>| match glob(text) {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(error) => {
                    problems.push(CompileProblem {
                        list: RuleList::Network,
                        index: Some(index),
                        reason: error.to_string(),
                    });
                    None
                }
            };
            let compiled = match &rule.pattern {
                NetPattern::Inet { host, port } => Some(CompiledNet::Inet(host.clone(), *port)),
                NetPattern::Unix(UnixPattern::Path(path)) => path
                    .resolve(vars)
                    .and_then(|text| matcher(&text, &mut problems))
                    .map(CompiledNet::UnixPath),
                NetPattern::Unix(UnixPattern::Abstract(name)) => {
                    matcher(name, &mut problems).map(CompiledNet::UnixAbstract)
                }
            };
            network.extend(compiled.map(|compiled| (index, compiled)));
        }
        let mut link = Vec::new();
        for (index, rule) in self.link.iter().enumerate() {
            match rule.pattern.compile(vars) {
                Some(Ok(matcher)) => link.push((index, matcher)),
                Some(Err(error)) => problems.push(CompileProblem {
                    list: RuleList::Link,
                    index: Some(index),
                    reason: error.to_string(),
                }),
                None => {}
            }
        }
        CompiledRules {
            link,
            exec_paths: PathSet::build(RuleList::Exec, exec_paths, &mut problems),
            exec_names: PathSet::build(RuleList::Exec, exec_names, &mut problems),
            read: PathSet::build(RuleList::Read, paths(&self.read), &mut problems),
            write: PathSet::build(RuleList::Write, paths(&self.write), &mut problems),
            sensitive_read: PathSet::build(
                RuleList::SensitiveRead,
                paths(&self.sensitive_read),
                &mut problems,
            ),
            network,
            home: vars.get(Var::Home).map(str::to_owned),
            problems,
        }
    }
}

impl PathSet {
    fn build(
        list: RuleList,
        globs: Vec<(usize, String)>,
        problems: &mut Vec<CompileProblem>,
    ) -> Self {
        let mut builder = GlobSetBuilder::new();
        let mut rules = Vec::with_capacity(globs.len());
        for (index, text) in globs {
            match glob(&text) {
                Ok(glob) => {
                    builder.add(glob);
                    rules.push(index);
                }
                Err(error) => problems.push(CompileProblem {
                    list,
                    index: Some(index),
                    reason: error.to_string(),
                }),
            }
        }
        match builder.build() {
            Ok(set) => PathSet { set, rules },
            Err(error) => {
                problems.push(CompileProblem {
                    list,
                    index: None,
                    reason: error.to_string(),
                });
                PathSet {
                    set: GlobSet::empty(),
                    rules: Vec::new(),
                }
            }
        }
    }

    /// The first rule (lowest index) whose glob matches.
    fn first(&self, candidate: &Candidate<'_>) -> Option<usize> {
        if self.rules.is_empty() || !self.set.is_match_candidate(candidate) {
            return None;
        }
        self.set
            .matches_candidate(candidate)
            .into_iter()
            .filter_map(|glob| self.rules.get(glob).copied())
            .min()
    }
}

impl CompiledRules {
    /// The first `exec` rule allowing the program at `image_path`: name rules match its file
    /// name, path rules the whole path.
    pub fn exec(&self, image_path: &str) -> Option<usize> {
        let name = image_path.rsplit('/').next().unwrap_or(image_path);
        let by_path = self.exec_paths.first(&Candidate::new(image_path));
        let by_name = self.exec_names.first(&Candidate::new(name));
        by_path.into_iter().chain(by_name).min()
    }

    /// The first `read` rule allowing a read of `path`. Never matches a sensitive path (see
    /// [`sensitive::sensitive_read`], with `${HOME}` as home): those need a `sensitive-read`
    /// entry, however broad the `read` globs.
    pub fn read(&self, path: &str) -> Option<usize> {
        if sensitive::sensitive_read(path, self.home.as_deref()).is_some() {
            return None;
        }
        self.read.first(&Candidate::new(path))
    }

    /// The first `write` rule allowing a write to (or creation of) `path`.
    pub fn write(&self, path: &str) -> Option<usize> {
        self.write.first(&Candidate::new(path))
    }

    /// The first `sensitive-read` rule accepting a read of `path`.
    pub fn sensitive_read(&self, path: &str) -> Option<usize> {
        self.sensitive_read.first(&Candidate::new(path))
    }

    /// The first `link` rule allowing the link directive `subject` (`search:/dir`, `arg:-B/x`,
    /// `env:NAME=VALUE`, `lib:static=z`).
    pub fn link(&self, subject: &str) -> Option<usize> {
        self.link
            .iter()
            .find(|(_, m)| m.is_match(subject))
            .map(|(index, _)| *index)
    }

    /// The first `network` rule allowing a connection to `ep`.
    pub fn network(&self, ep: &Endpoint<'_>) -> Option<usize> {
        self.network
            .iter()
            .find(|(_, rule)| match (rule, ep) {
                (
                    CompiledNet::Inet(host, port),
                    Endpoint::Inet {
                        addr,
                        port: p,
                        name,
                    },
                ) => port.matches(*p) && host.matches(*addr, *name),
                (CompiledNet::Inet(host, _), Endpoint::Lookup { name }) => match host {
                    HostPattern::Any => true,
                    HostPattern::Name(_) => {
                        host.matches(std::net::Ipv4Addr::UNSPECIFIED.into(), Some(name))
                    }
                    HostPattern::Addr(_) | HostPattern::Net(_) => false,
                },
                (CompiledNet::UnixPath(glob), Endpoint::Unix { path }) => {
                    !path.starts_with('@') && glob.is_match(path)
                }
                (CompiledNet::UnixAbstract(glob), Endpoint::Unix { path }) => path
                    .strip_prefix('@')
                    .is_some_and(|name| glob.is_match(name)),
                _ => false,
            })
            .map(|(index, _)| *index)
    }

    /// Rules that could not be compiled (and so match nothing).
    pub fn problems(&self) -> &[CompileProblem] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::profile::parse;

    fn rules(role: &str) -> RoleRules {
        let text = format!("schema = 1\ncrate = \"x\"\n[build-script]\n{role}");
        parse(&text, Path::new("x.toml"))
            .expect("profile")
            .build_script
            .expect("build-script")
    }

    fn vars() -> Vars {
        Vars {
            out_dir: Some("/w/target/debug/build/x-1/out".into()),
            manifest_dir: Some("/h/u/.cargo/registry/src/x-1.0.0".into()),
            rustc_sysroot: Some("/h/u/.rustup/toolchains/stable".into()),
            home: Some("/h/u".into()),
            ..Vars::default()
        }
    }

    #[test]
    fn exec_by_name_and_path() {
        let compiled = rules(
            r#"exec = ["${RUSTC_SYSROOT}/bin/rustc", "cc", "x86_64-*-gcc*", "/usr/bin/pkg-config", "${TMPDIR}/tool"]"#,
        )
        .compile(&vars());
        assert_eq!(
            compiled.exec("/h/u/.rustup/toolchains/stable/bin/rustc"),
            Some(0)
        );
        assert_eq!(compiled.exec("/usr/bin/cc"), Some(1));
        assert_eq!(compiled.exec("cc"), Some(1));
        assert_eq!(compiled.exec("/usr/bin/x86_64-linux-gnu-gcc-12"), Some(2));
        assert_eq!(compiled.exec("/usr/bin/pkg-config"), Some(3));
        assert_eq!(compiled.exec("/usr/local/bin/pkg-config"), None);
        assert_eq!(compiled.exec("/usr/bin/rustc"), None);
        assert_eq!(compiled.exec("/usr/bin/ccc"), None);
        // ${TMPDIR} is unset: that rule matches nothing.
        assert_eq!(compiled.exec("/tmp/tool"), None);
        assert!(compiled.problems().is_empty());
    }

    #[test]
    fn paths_and_separators() {
        let compiled = rules(
            r#"read = ["${CARGO_MANIFEST_DIR}/**", "/usr/include/*.h", "/usr/include/**", "${HOME}/**"]
               write = ["${OUT_DIR}/**"]
               sensitive-read = ["${HOME}/.netrc"]"#,
        )
        .compile(&vars());
        assert_eq!(
            compiled.read("/h/u/.cargo/registry/src/x-1.0.0/src/lib.rs"),
            Some(0)
        );
        assert_eq!(compiled.read("/usr/include/zlib.h"), Some(1));
        // `*` does not cross `/`; `**` does.
        assert_eq!(compiled.read("/usr/include/sys/types.h"), Some(2));
        assert_eq!(compiled.read("/usr/lib/libz.so"), None);
        // `${HOME}/**` never covers sensitive paths.
        assert_eq!(compiled.read("/h/u/notes.txt"), Some(3));
        assert_eq!(compiled.read("/h/u/.netrc"), None);
        assert_eq!(compiled.read("/h/u/.ssh/id_ed25519"), None);
        assert_eq!(compiled.sensitive_read("/h/u/.netrc"), Some(0));
        assert_eq!(compiled.sensitive_read("/h/u/.ssh/id_ed25519"), None);
        assert_eq!(
            compiled.write("/w/target/debug/build/x-1/out/gen.rs"),
            Some(0)
        );
        assert_eq!(compiled.write("/w/target/debug/build/x-1/gen.rs"), None);
    }

    #[test]
    fn variable_values_are_literal() {
        let compiled = rules(r#"read = ["${OUT_DIR}/*.rs"]"#).compile(&Vars {
            out_dir: Some("/w/[ab]*/out".into()),
            ..Vars::default()
        });
        assert_eq!(compiled.read("/w/[ab]*/out/x.rs"), Some(0));
        assert_eq!(compiled.read("/w/a/out/x.rs"), None);
    }

    #[test]
    fn network_endpoints() {
        let compiled = rules(
            r#"network = ["127.0.0.1:8080", "10.0.0.0/8", "[::1]:443", "*:443", "crates.io:80", "unix:/run/pcscd/*", "unix:@abstract-*"]"#,
        )
        .compile(&vars());
        let inet = |addr: &str, port, name| Endpoint::Inet {
            addr: addr.parse().expect("address"),
            port,
            name,
        };
        assert_eq!(compiled.network(&inet("127.0.0.1", 8080, None)), Some(0));
        assert_eq!(compiled.network(&inet("127.0.0.1", 8081, None)), None);
        assert_eq!(compiled.network(&inet("10.1.2.3", 22, None)), Some(1));
        assert_eq!(compiled.network(&inet("::1", 443, None)), Some(2));
        assert_eq!(compiled.network(&inet("8.8.8.8", 443, None)), Some(3));
        assert_eq!(compiled.network(&inet("1.2.3.4", 80, None)), None);
        assert_eq!(
            compiled.network(&inet("1.2.3.4", 80, Some("crates.io"))),
            Some(4)
        );
        // A lookup of an allowed name is allowed whatever the port; `*:443` allows any lookup.
        let lookup = |name| Endpoint::Lookup { name };
        assert_eq!(compiled.network(&lookup("crates.io")), Some(3));
        let names = rules(r#"network = ["crates.io:80", "*.example.com"]"#).compile(&vars());
        assert_eq!(names.network(&lookup("crates.io")), Some(0));
        assert_eq!(names.network(&lookup("CRATES.IO.")), Some(0));
        assert_eq!(names.network(&lookup("static.example.com")), Some(1));
        assert_eq!(names.network(&lookup("exfil.evil.test")), None);
        let addrs = rules(r#"network = ["127.0.0.1:53", "10.0.0.0/8"]"#).compile(&vars());
        assert_eq!(addrs.network(&lookup("crates.io")), None);
        let unix = |path| Endpoint::Unix { path };
        assert_eq!(compiled.network(&unix("/run/pcscd/pcscd.comm")), Some(5));
        assert_eq!(compiled.network(&unix("/run/pcscd/a/b")), None);
        assert_eq!(compiled.network(&unix("@abstract-x")), Some(6));
        assert_eq!(compiled.network(&unix("@other")), None);
        assert_eq!(compiled.network(&unix("/abstract-x")), None);
    }

    #[test]
    fn empty_rules_match_nothing() {
        let compiled = RoleRules::default().compile(&Vars::default());
        assert_eq!(compiled.exec("/bin/sh"), None);
        assert_eq!(compiled.read("/etc/hosts"), None);
        assert_eq!(compiled.write("/tmp/x"), None);
        assert_eq!(compiled.sensitive_read("/etc/shadow"), None);
        assert_eq!(compiled.network(&Endpoint::Unix { path: "/run/x" }), None);
    }
}
