//! Writing profiles (for `buildwatch learn`): stable, sorted, commented TOML that [`parse`]
//! reads back.
//!
//! [`parse`]: super::parse
use std::fmt::Write as _;

use super::rules::{Profile, RoleRules, Rule, RuleList};

/// The content of one profile file to write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileDoc {
    /// The crate (package) name; the file must be named `<krate>.toml`.
    pub krate: String,
    /// Version requirements (empty: every version).
    pub versions: Vec<String>,
    /// Comment lines at the top of the file (without `#`).
    pub header: Vec<String>,
    /// The `[build-script]` table, if any.
    pub build_script: Option<RoleDoc>,
    /// The `[proc-macro]` table, if any.
    pub proc_macro: Option<RoleDoc>,
    /// What was seen but is not allowed by the file, for a person to review: written as
    /// comments, never as rules.
    pub not_allowed: Vec<NotAllowed>,
}

/// The lists of one role table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleDoc {
    /// `exec` entries.
    pub exec: Vec<DocEntry>,
    /// `read` entries.
    pub read: Vec<DocEntry>,
    /// `write` entries.
    pub write: Vec<DocEntry>,
    /// `sensitive-read` entries.
    pub sensitive_read: Vec<DocEntry>,
    /// `network` entries.
    pub network: Vec<DocEntry>,
    /// `link` entries.
    pub link: Vec<DocEntry>,
}

impl RoleDoc {
    /// The entries of `list`.
    pub fn list(&self, list: RuleList) -> &[DocEntry] {
        match list {
            RuleList::Exec => &self.exec,
            RuleList::Read => &self.read,
            RuleList::Write => &self.write,
            RuleList::SensitiveRead => &self.sensitive_read,
            RuleList::Network => &self.network,
            RuleList::Link => &self.link,
        }
    }

    /// The entries of `list`, to add to.
    pub fn list_mut(&mut self, list: RuleList) -> &mut Vec<DocEntry> {
        match list {
            RuleList::Exec => &mut self.exec,
            RuleList::Read => &mut self.read,
            RuleList::Write => &mut self.write,
            RuleList::SensitiveRead => &mut self.sensitive_read,
            RuleList::Network => &mut self.network,
            RuleList::Link => &mut self.link,
        }
    }
}

/// One entry of a list, with an optional trailing comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocEntry {
    /// The entry (a pattern, as it is to be written).
    pub text: String,
    /// A comment after it on the same line (without `#`).
    pub comment: Option<String>,
}

impl DocEntry {
    /// An entry without comment.
    pub fn new(text: impl Into<String>) -> Self {
        DocEntry {
            text: text.into(),
            comment: None,
        }
    }
}

/// Something seen but not allowed, for review.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NotAllowed {
    /// What kind of thing (`network`, `sensitive-read`, `persistence-write`, …).
    pub kind: String,
    /// What exactly (`1.2.3.4:443`, `${HOME}/.netrc`).
    pub text: String,
}

impl ProfileDoc {
    /// The document of an existing profile (to extend it): entries as written, no comments.
    pub fn from_profile(profile: &Profile) -> Self {
        ProfileDoc {
            krate: profile.krate.clone(),
            versions: profile.versions.iter().map(ToString::to_string).collect(),
            header: Vec::new(),
            build_script: profile.build_script.as_ref().map(RoleDoc::from_rules),
            proc_macro: profile.proc_macro.as_ref().map(RoleDoc::from_rules),
            not_allowed: Vec::new(),
        }
    }
}

impl RoleDoc {
    fn from_rules(rules: &RoleRules) -> Self {
        fn entries<P>(rules: &[Rule<P>]) -> Vec<DocEntry> {
            rules.iter().map(|rule| DocEntry::new(&rule.text)).collect()
        }
        RoleDoc {
            exec: entries(&rules.exec),
            read: entries(&rules.read),
            write: entries(&rules.write),
            sensitive_read: entries(&rules.sensitive_read),
            network: entries(&rules.network),
            link: entries(&rules.link),
        }
    }
}

/// Renders `doc` as a schema 1 profile. Deterministic: versions and list entries are sorted and
/// deduplicated (the first comment of duplicates is kept), review items sorted.
pub fn render(doc: &ProfileDoc) -> String {
    let mut out = String::new();
    for line in &doc.header {
        push_comment(&mut out, "", line);
    }
    if !doc.header.is_empty() {
        out.push('\n');
    }
    out.push_str("schema = 1\n");
    let _ = writeln!(out, "crate = {}", toml_string(&doc.krate));
    let mut versions: Vec<&str> = doc.versions.iter().map(String::as_str).collect();
    versions.sort_unstable();
    versions.dedup();
    match versions.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(out, "versions = {}", toml_string(one));
        }
        several => {
            let list: Vec<String> = several.iter().map(|v| toml_string(v)).collect();
            let _ = writeln!(out, "versions = [{}]", list.join(", "));
        }
    }
    for (name, role) in [
        ("build-script", &doc.build_script),
        ("proc-macro", &doc.proc_macro),
    ] {
        if let Some(role) = role {
            let _ = write!(out, "\n[{name}]\n");
            for list in RuleList::ALL {
                render_list(&mut out, list, role.list(list));
            }
        }
    }
    let mut review: Vec<&NotAllowed> = doc.not_allowed.iter().collect();
    review.sort();
    review.dedup();
    if !review.is_empty() {
        out.push_str("\n# NOT allowed — review and accept explicitly.\n");
        out.push_str(
            "# Seen during learning but never accepted on its own: to allow one, add it\n",
        );
        out.push_str("# to the matching list above yourself.\n");
        for item in review {
            let line = format!("  {}: {}", item.kind, toml_string(&item.text));
            push_comment(&mut out, "", &line);
        }
    }
    out
}

fn render_list(out: &mut String, list: RuleList, entries: &[DocEntry]) {
    let mut sorted: Vec<&DocEntry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match sorted.iter_mut().find(|kept| kept.text == entry.text) {
            Some(kept) if kept.comment.is_none() => *kept = entry,
            Some(_) => {}
            None => sorted.push(entry),
        }
    }
    if sorted.is_empty() {
        return;
    }
    sorted.sort_by(|a, b| a.text.cmp(&b.text));
    let _ = writeln!(out, "{list} = [");
    for entry in sorted {
        let item = format!("    {},", toml_string(&entry.text));
        match &entry.comment {
            Some(comment) => push_comment(out, &item, comment),
            None => {
                out.push_str(&item);
                out.push('\n');
            }
        }
    }
    out.push_str("]\n");
}

/// Appends `before` then `# comment` as one line; control characters in the comment (which
/// could end the comment early) become spaces.
fn push_comment(out: &mut String, before: &str, comment: &str) {
    out.push_str(before);
    if !before.is_empty() {
        out.push_str("  ");
    }
    out.push('#');
    let comment: String = comment
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let comment = comment.trim_end();
    if !comment.is_empty() {
        out.push(' ');
        out.push_str(comment);
    }
    out.push('\n');
}

/// `text` as a TOML basic string (quoted, escaped).
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
