//! The profile as written: keys and TOML types checked, every value kept with its span, nothing
//! interpreted yet ([`super::validate`] does that).
//!
//! This walks toml's spanned document ([`DeTable`]) rather than deriving `Deserialize`: serde's
//! errors are strings and stop at the first, while walking the document gives every unknown key
//! and wrong type, with the key's name and position, to report precisely.
use std::ops::Range;

use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use super::{
    error::{ErrorKind, suggest},
    render::toml_string,
    rules::RuleList,
};

/// A problem found in the document, at a byte span.
pub(super) type Diag = (Range<usize>, ErrorKind);

/// The top-level keys of schema 1.
const TOP_KEYS: [&str; 5] = ["schema", "crate", "versions", "build-script", "proc-macro"];
/// The role tables of schema 1.
const ROLE_TABLES: [&str; 2] = ["build-script", "proc-macro"];
/// The keys of a role table.
const ROLE_KEYS: [&str; 5] = ["exec", "read", "write", "sensitive-read", "network"];

/// A profile document, types checked.
#[derive(Debug, Default)]
pub(super) struct RawProfile {
    /// `crate`
    pub krate: Option<Spanned<String>>,
    /// `versions`: one string or a list, always a list here; the outer span is the value's.
    pub versions: Option<Spanned<Vec<Spanned<String>>>>,
    /// `[build-script]`
    pub build_script: Option<RawRole>,
    /// `[proc-macro]`
    pub proc_macro: Option<RawRole>,
}

/// A role table, types checked.
#[derive(Debug, Default)]
pub(super) struct RawRole {
    /// Each list present in the table, in [`RuleList::ALL`] order.
    pub lists: Vec<(RuleList, Vec<Spanned<String>>)>,
}

/// Checks `schema` first: a document of another schema may have other keys, so nothing else
/// is worth reporting about it.
pub(super) fn check_schema(doc: &DeTable<'_>) -> Result<(), Diag> {
    let Some(value) = doc.get("schema") else {
        return Err((0..0, ErrorKind::MissingSchema));
    };
    match value.get_ref() {
        DeValue::Integer(integer) => {
            if i64::from_str_radix(integer.as_str(), integer.radix()) == Ok(1) {
                Ok(())
            } else {
                Err((
                    value.span(),
                    ErrorKind::UnsupportedSchema {
                        found: integer.to_string(),
                    },
                ))
            }
        }
        other => Err((
            value.span(),
            wrong_type(
                "`schema`",
                "the integer 1",
                other,
                "`schema = 1`".to_owned(),
            ),
        )),
    }
}

/// Reads the document's keys into a [`RawProfile`], collecting every problem. `stem` (the file
/// name without `.toml`) only serves examples in help text.
pub(super) fn read(doc: &DeTable<'_>, stem: &str, diags: &mut Vec<Diag>) -> RawProfile {
    let mut raw = RawProfile::default();
    for (key, value) in doc {
        match key.get_ref().as_ref() {
            "schema" => {}
            "crate" => {
                let example = format!("`crate = {}`", toml_string(stem));
                raw.krate = string(value, "`crate`", &example, diags);
            }
            "versions" => raw.versions = versions(value, diags),
            "build-script" => raw.build_script = role(value, "build-script", diags),
            "proc-macro" => raw.proc_macro = role(value, "proc-macro", diags),
            other => {
                let kind = if value.get_ref().as_table().is_some() {
                    ErrorKind::UnknownRoleTable {
                        name: other.to_owned(),
                        suggestion: suggest(other, &ROLE_TABLES),
                    }
                } else {
                    ErrorKind::UnknownKey {
                        key: other.to_owned(),
                        suggestion: suggest(other, &TOP_KEYS),
                    }
                };
                diags.push((key.span(), kind));
            }
        }
    }
    raw
}

fn versions(
    value: &Spanned<DeValue<'_>>,
    diags: &mut Vec<Diag>,
) -> Option<Spanned<Vec<Spanned<String>>>> {
    const EXAMPLE: &str = "`versions = \"^1.2\"` or `versions = [\"^1.2\", \"^2\"]`";
    match value.get_ref() {
        DeValue::String(text) => Some(Spanned::new(
            value.span(),
            vec![Spanned::new(value.span(), text.to_string())],
        )),
        DeValue::Array(_) => string_list(value, "`versions`", EXAMPLE, diags),
        other => {
            diags.push((
                value.span(),
                wrong_type(
                    "`versions`",
                    "a version requirement or a list of them",
                    other,
                    EXAMPLE.to_owned(),
                ),
            ));
            None
        }
    }
}

fn role(
    value: &Spanned<DeValue<'_>>,
    name: &'static str,
    diags: &mut Vec<Diag>,
) -> Option<RawRole> {
    let DeValue::Table(table) = value.get_ref() else {
        diags.push((
            value.span(),
            wrong_type(
                &format!("`{name}`"),
                "a table",
                value.get_ref(),
                format!("a `[{name}]` table with keys such as `exec = [\"cc\"]`"),
            ),
        ));
        return None;
    };
    let mut lists = Vec::new();
    for (key, value) in table {
        let key_text = key.get_ref().as_ref();
        let Some(list) = RuleList::from_key(key_text) else {
            diags.push((
                key.span(),
                ErrorKind::UnknownRoleKey {
                    role: name,
                    key: key_text.to_owned(),
                    suggestion: suggest(key_text, &ROLE_KEYS),
                },
            ));
            continue;
        };
        let what = format!("`{name}.{list}`");
        let example = match value.get_ref() {
            DeValue::String(text) => format!("`{list} = [{}]`", toml_string(text)),
            _ => format!("`{list} = [{}]`", toml_string(sample(list))),
        };
        if let Some(entries) = string_list(value, &what, &example, diags) {
            lists.push((list, entries.into_inner()));
        }
    }
    lists.sort_by_key(|(list, _)| *list);
    Some(RawRole { lists })
}

/// A typical entry of each list, for help text.
fn sample(list: RuleList) -> &'static str {
    match list {
        RuleList::Exec => "cc",
        RuleList::Read => "${CARGO_MANIFEST_DIR}/**",
        RuleList::Write => "${OUT_DIR}/**",
        RuleList::SensitiveRead => "${HOME}/.netrc",
        RuleList::Network => "127.0.0.1:8080",
        RuleList::Link => "search:${OUT_DIR}/lib",
    }
}

fn string(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    example: &str,
    diags: &mut Vec<Diag>,
) -> Option<Spanned<String>> {
    match value.get_ref() {
        DeValue::String(text) => Some(Spanned::new(value.span(), text.to_string())),
        other => {
            diags.push((
                value.span(),
                wrong_type(what, "a string", other, example.to_owned()),
            ));
            None
        }
    }
}

/// A list of strings; reports the list itself or each entry of the wrong type.
fn string_list(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    example: &str,
    diags: &mut Vec<Diag>,
) -> Option<Spanned<Vec<Spanned<String>>>> {
    let DeValue::Array(items) = value.get_ref() else {
        diags.push((
            value.span(),
            wrong_type(
                what,
                "a list of strings",
                value.get_ref(),
                example.to_owned(),
            ),
        ));
        return None;
    };
    let mut strings = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let what = format!("entry {} of {what}", index + 1);
        strings.extend(string(item, &what, example, diags));
    }
    Some(Spanned::new(value.span(), strings))
}

fn wrong_type(
    what: &str,
    expected: &'static str,
    found: &DeValue<'_>,
    example: String,
) -> ErrorKind {
    ErrorKind::WrongType {
        what: what.to_owned(),
        expected,
        found: match found {
            DeValue::String(_) => "a string",
            DeValue::Integer(_) => "an integer",
            DeValue::Float(_) => "a float",
            DeValue::Boolean(_) => "a boolean",
            DeValue::Datetime(_) => "a date-time",
            DeValue::Array(_) => "an array",
            DeValue::Table(_) => "a table",
        },
        example,
    }
}
