//! From the document as written ([`RawProfile`]) to a validated [`Profile`].
use std::ops::Range;

use toml::Spanned;

use super::{
    error::{ErrorKind, Location},
    link::LinkPattern,
    network::NetPattern,
    pattern::{ExecPattern, PathPattern},
    raw::{Diag, RawProfile, RawRole},
    rules::{Profile, ProfileSource, RoleRules, Rule, RuleList},
};

/// Validates `raw`; every problem goes to `diags`. The profile returned is only meaningful when
/// no problem was found. `text` is the file's text (for entry locations), `stem` its name
/// without `.toml`.
pub(super) fn validate(
    raw: RawProfile,
    text: &str,
    stem: &str,
    source: ProfileSource,
    diags: &mut Vec<Diag>,
) -> Profile {
    let krate = match raw.krate {
        None => {
            diags.push((
                0..0,
                ErrorKind::MissingCrate {
                    stem: stem.to_owned(),
                },
            ));
            String::new()
        }
        Some(krate) => {
            let span = krate.span();
            let name = krate.into_inner();
            if !is_crate_name(&name) {
                diags.push((span, ErrorKind::BadCrateName { name: name.clone() }));
            } else if name != stem {
                diags.push((
                    span,
                    ErrorKind::CrateMismatch {
                        krate: name.clone(),
                        stem: stem.to_owned(),
                    },
                ));
            }
            name
        }
    };
    let mut versions = Vec::new();
    if let Some(list) = raw.versions {
        if list.get_ref().is_empty() {
            diags.push((list.span(), ErrorKind::EmptyVersions));
        }
        for entry in list.into_inner() {
            match semver::VersionReq::parse(entry.get_ref()) {
                Ok(req) => versions.push(req),
                Err(error) => diags.push((
                    entry.span(),
                    ErrorKind::BadVersionReq {
                        text: entry.into_inner(),
                        reason: error.to_string(),
                    },
                )),
            }
        }
    }
    let mut role = |raw: Option<RawRole>| raw.map(|raw| role_rules(raw, text, diags));
    Profile {
        krate,
        versions,
        build_script: role(raw.build_script),
        proc_macro: role(raw.proc_macro),
        source,
    }
}

/// A package name as cargo accepts it: ASCII letters, digits, `-` and `_`.
fn is_crate_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn role_rules(raw: RawRole, text: &str, diags: &mut Vec<Diag>) -> RoleRules {
    let mut rules = RoleRules::default();
    for (list, entries) in raw.lists {
        match list {
            RuleList::Exec => rules.exec = parse_rules(entries, text, ExecPattern::parse, diags),
            RuleList::Read => rules.read = parse_rules(entries, text, PathPattern::parse, diags),
            RuleList::Write => rules.write = parse_rules(entries, text, PathPattern::parse, diags),
            RuleList::SensitiveRead => {
                rules.sensitive_read = parse_rules(entries, text, PathPattern::parse, diags);
            }
            RuleList::Network => {
                rules.network = parse_rules(entries, text, NetPattern::parse, diags);
            }
            RuleList::Link => rules.link = parse_rules(entries, text, LinkPattern::parse, diags),
        }
    }
    rules
}

fn parse_rules<P>(
    entries: Vec<Spanned<String>>,
    text: &str,
    parse: impl Fn(&str) -> Result<P, ErrorKind>,
    diags: &mut Vec<Diag>,
) -> Vec<Rule<P>> {
    let mut rules = Vec::with_capacity(entries.len());
    for entry in entries {
        let span: Range<usize> = entry.span();
        let written = entry.into_inner();
        match parse(&written) {
            Ok(pattern) => rules.push(Rule {
                pattern,
                text: written,
                location: Location::from_offset(text, span.start),
            }),
            Err(kind) => diags.push((span, kind)),
        }
    }
    rules
}
