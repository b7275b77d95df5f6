//! The profiles shipped with buildwatch (the repository's `profiles/` directory, embedded at
//! build time). They apply to crates that have no profile in the user's directory.
use crate::profile::{Profile, ProfileError, parse_builtin};

include!(concat!(env!("OUT_DIR"), "/shipped_profiles.rs"));

/// Every shipped profile, parsed. An error here is a buildwatch bug (the test suite parses them
/// all), reported rather than ignored.
pub fn profiles() -> Result<Vec<Profile>, ProfileError> {
    SHIPPED
        .iter()
        .map(|(_, file, text)| parse_builtin(text, file))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shipped_profile_parses() {
        let profiles = super::profiles().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(profiles.len(), super::SHIPPED.len());
        for (p, (name, _, _)) in profiles.iter().zip(super::SHIPPED) {
            assert_eq!(&p.krate, name);
        }
    }
}
