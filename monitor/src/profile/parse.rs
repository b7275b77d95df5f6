//! Parsing one profile: TOML → [`raw`](super::raw) → [`validate`](super::validate) → [`Profile`].
use std::path::Path;

use toml::de::DeTable;

use super::{
    error::{ErrorKind, Location, ProfileError},
    raw::{self, Diag},
    rules::{Profile, ProfileSource},
    validate::validate,
};

/// Parses and validates the profile `text`, read from `path` (whose file name must be
/// `<crate>.toml`). On failure, the first problem in the file.
pub fn parse(text: &str, path: &Path) -> Result<Profile, ProfileError> {
    parse_all(text, path, ProfileSource::File(path.to_owned())).map_err(|problems| problems.first)
}

/// Parses a profile shipped inside buildwatch; `name` (e.g. `profiles/libz-sys.toml`) stands for
/// the file's path in errors and in [`ProfileSource::BuiltIn`].
pub fn parse_builtin(text: &str, name: &'static str) -> Result<Profile, ProfileError> {
    parse_all(text, Path::new(name), ProfileSource::BuiltIn(name))
        .map_err(|problems| problems.first)
}

/// Every problem of one profile, in file order (never empty).
#[derive(Debug)]
pub(super) struct Problems {
    /// The first.
    pub first: ProfileError,
    /// The others.
    pub rest: Vec<ProfileError>,
}

impl Problems {
    fn one(error: ProfileError) -> Self {
        Problems {
            first: error,
            rest: Vec::new(),
        }
    }

    /// All of them, in order.
    pub fn into_vec(self) -> Vec<ProfileError> {
        let mut all = Vec::with_capacity(1 + self.rest.len());
        all.push(self.first);
        all.extend(self.rest);
        all
    }
}

/// Parses and validates, reporting every problem found.
pub(super) fn parse_all(
    text: &str,
    path: &Path,
    source: ProfileSource,
) -> Result<Profile, Problems> {
    let error = |(span, kind): Diag| {
        ProfileError::new(path, Some(Location::from_offset(text, span.start)), kind)
    };
    let doc = DeTable::parse(text).map_err(|syntax| {
        let location = syntax
            .span()
            .map(|span| Location::from_offset(text, span.start));
        // One line, as every profile error's first line.
        let message = syntax.message().trim().replace('\n', "; ");
        Problems::one(ProfileError::new(
            path,
            location,
            ErrorKind::Syntax { message },
        ))
    })?;
    raw::check_schema(doc.get_ref()).map_err(|diag| Problems::one(error(diag)))?;
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut diags = Vec::new();
    let raw = raw::read(doc.get_ref(), &stem, &mut diags);
    let profile = validate(raw, text, &stem, source, &mut diags);
    // Stable: problems at one place keep the order they were found in.
    diags.sort_by_key(|(span, _)| span.start);
    let mut errors = diags.into_iter().map(error);
    match errors.next() {
        None => Ok(profile),
        Some(first) => Err(Problems {
            first,
            rest: errors.collect(),
        }),
    }
}
