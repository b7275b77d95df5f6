//! Loading a directory of profiles, and the set of profiles a run uses.
use std::{
    collections::{HashMap, hash_map::Entry},
    fs, io,
    path::{Path, PathBuf},
};

use super::{
    error::{ErrorKind, ProfileError},
    parse::parse_all,
    rules::{Profile, ProfileSource, RoleRules},
};
use crate::model::{CrateRef, Role};

/// Loads every `*.toml` file of `dir` (in file-name order). A missing directory has no profiles;
/// any other failure, in any file, fails the whole load, with every problem of every file.
pub fn load_dir(dir: &Path) -> Result<Vec<Profile>, Vec<ProfileError>> {
    let io_error =
        |path: &Path, error: io::Error| ProfileError::new(path, None, ErrorKind::Io { error });
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(vec![io_error(dir, error)]),
    };
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "toml") {
                    paths.push(path);
                }
            }
            Err(error) => errors.push(io_error(dir, error)),
        }
    }
    paths.sort();
    let mut profiles = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        // Follows symlinks; directories that happen to end in .toml are not profiles.
        match fs::metadata(&path) {
            Ok(metadata) if !metadata.is_file() => continue,
            Ok(_) => {}
            Err(error) => {
                errors.push(io_error(&path, error));
                continue;
            }
        }
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                errors.push(io_error(&path, error));
                continue;
            }
        };
        match parse_all(&text, &path, ProfileSource::File(path.clone())) {
            Ok(profile) => match seen.entry(crate_key(&profile.krate)) {
                Entry::Occupied(other) => errors.push(ProfileError::new(
                    path.clone(),
                    None,
                    ErrorKind::DuplicateProfile {
                        krate: profile.krate,
                        other: other.get().clone(),
                    },
                )),
                Entry::Vacant(slot) => {
                    slot.insert(path);
                    profiles.push(profile);
                }
            },
            Err(problems) => errors.extend(problems.into_vec()),
        }
    }
    if errors.is_empty() {
        Ok(profiles)
    } else {
        Err(errors)
    }
}

/// The file of `dir` that holds the profile of `krate`: the one [`load_dir`] matches for it
/// (a profile's file is named after the `crate` it names, and crates are matched with `-` and
/// `_` alike, so `foo_bar.toml` holds `foo-bar`'s), or `<krate>.toml` when there is none. Where
/// learning and accepting write, so that they never add a second profile for one crate.
pub fn file_for(dir: &Path, krate: &str) -> Result<PathBuf, Vec<ProfileError>> {
    let key = crate_key(krate);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(dir.join(format!("{krate}.toml")));
        }
        Err(error) => return Err(vec![ProfileError::new(dir, None, ErrorKind::Io { error })]),
    };
    let mut matching: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "toml")
                && path
                    .file_stem()
                    .is_some_and(|stem| crate_key(&stem.to_string_lossy()) == key)
        })
        .collect();
    matching.sort();
    Ok(matching
        .into_iter()
        .next()
        .unwrap_or_else(|| dir.join(format!("{krate}.toml"))))
}

/// A crate name as compared across profiles: cargo's package names and crate names differ only
/// in `-` versus `_`.
pub fn crate_key(name: &str) -> String {
    name.replace('_', "-")
}

/// The profiles a run uses: the user's, and the shipped ones for crates the user has none for.
#[derive(Clone, Debug, Default)]
pub struct ProfileSet {
    profiles: Vec<Profile>,
    by_crate: HashMap<String, usize>,
}

impl ProfileSet {
    /// Combines the user's profiles with the shipped ones; for a crate in both, the user's
    /// profile wins (within one list, the first wins).
    pub fn new(user: Vec<Profile>, shipped: Vec<Profile>) -> Self {
        let mut set = ProfileSet::default();
        for profile in user.into_iter().chain(shipped) {
            if let Entry::Vacant(slot) = set.by_crate.entry(crate_key(&profile.krate)) {
                slot.insert(set.profiles.len());
                set.profiles.push(profile);
            }
        }
        set
    }

    /// The profile for crate `krate` (`-` and `_` are the same).
    pub fn get(&self, krate: &str) -> Option<&Profile> {
        self.by_crate
            .get(&crate_key(krate))
            .and_then(|&index| self.profiles.get(index))
    }

    /// The profile of a crate instance, whether it covers the instance's version, and its
    /// rules for `role`: the one lookup checking, learning, accepting and enforcing share.
    pub fn rules_for(&self, krate: &CrateRef, role: Role) -> Option<ProfileMatch<'_>> {
        let profile = self.get(&krate.name)?;
        Some(ProfileMatch {
            profile,
            covers: profile.covers_version(krate.version.as_deref()),
            rules: profile.rules(role),
        })
    }

    /// Every profile in use: the user's first, then the shipped ones not overridden.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }

    /// How many profiles are in use.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether there is no profile at all.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// The profile that applies to one crate instance in one role (see [`ProfileSet::rules_for`]).
#[derive(Clone, Copy, Debug)]
pub struct ProfileMatch<'a> {
    /// The crate's profile.
    pub profile: &'a Profile,
    /// It covers this version of the crate (false: it was written for other versions, and
    /// what it allows is new behaviour here).
    pub covers: bool,
    /// Its table for the role (`None`: the role may do nothing beyond the baseline).
    pub rules: Option<&'a RoleRules>,
}

impl<'a> ProfileMatch<'a> {
    /// The role's rules when the profile covers this version: what enforcing installs (a
    /// profile written for other versions allows nothing in the kernel).
    pub fn covering_rules(&self) -> Option<&'a RoleRules> {
        self.rules.filter(|_| self.covers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::parse_builtin;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).expect("write profile");
    }

    #[test]
    fn missing_dir_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let profiles = load_dir(&dir.path().join("nope")).expect("missing dir");
        assert!(profiles.is_empty());
    }

    #[test]
    fn loads_every_toml_file_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "zlib.toml", "schema = 1\ncrate = \"zlib\"\n");
        write(dir.path(), "cc.toml", "schema = 1\ncrate = \"cc\"\n");
        write(dir.path(), "README.md", "not a profile");
        fs::create_dir(dir.path().join("dir.toml")).expect("mkdir");
        let profiles = load_dir(dir.path()).expect("load");
        let names: Vec<_> = profiles.iter().map(|p| p.krate.as_str()).collect();
        assert_eq!(names, ["cc", "zlib"]);
        assert_eq!(
            profiles[0].source,
            ProfileSource::File(dir.path().join("cc.toml"))
        );
    }

    #[test]
    fn collects_errors_of_every_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.toml", "schema = 2\n");
        write(
            dir.path(),
            "b.toml",
            "schema = 1\ncrate = \"b\"\nfoo = 1\n[build-script]\nread = [\"x\"]\n",
        );
        write(dir.path(), "c.toml", "schema = 1\ncrate = \"c\"\n");
        let errors = load_dir(dir.path()).expect_err("bad profiles");
        let messages: Vec<_> = errors
            .iter()
            .map(|e| {
                let file = e.path.file_name().map(|f| f.to_string_lossy().into_owned());
                (file.unwrap_or_default(), e.location.map(|l| l.line))
            })
            .collect();
        assert_eq!(
            messages,
            [
                ("a.toml".to_owned(), Some(1)),
                ("b.toml".to_owned(), Some(3)),
                ("b.toml".to_owned(), Some(5)),
            ]
        );
    }

    #[test]
    fn duplicate_crates_are_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "foo-bar.toml",
            "schema = 1\ncrate = \"foo-bar\"\n",
        );
        write(
            dir.path(),
            "foo_bar.toml",
            "schema = 1\ncrate = \"foo_bar\"\n",
        );
        let errors = load_dir(dir.path()).expect_err("duplicate");
        assert_eq!(errors.len(), 1);
        assert!(matches!(
            *errors[0].kind,
            ErrorKind::DuplicateProfile { .. }
        ));
    }

    #[test]
    fn the_file_of_a_crate_is_the_one_the_loader_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "foo_bar.toml",
            "schema = 1\ncrate = \"foo_bar\"\n",
        );
        assert_eq!(
            file_for(dir.path(), "foo-bar").expect("find"),
            dir.path().join("foo_bar.toml")
        );
        assert_eq!(
            file_for(dir.path(), "foo_bar").expect("find"),
            dir.path().join("foo_bar.toml")
        );
        assert_eq!(
            file_for(dir.path(), "qux-sys").expect("find"),
            dir.path().join("qux-sys.toml")
        );
        assert_eq!(
            file_for(&dir.path().join("missing"), "qux").expect("no dir"),
            dir.path().join("missing/qux.toml")
        );
    }

    #[test]
    fn rules_for_a_crate_instance() {
        let profile = |text: &str| parse_builtin(text, "foo-bar.toml").expect("profile");
        let set = ProfileSet::new(
            vec![profile(
                "schema = 1\ncrate = \"foo-bar\"\nversions = [\"^1\"]\n[build-script]\nexec = [\"git\"]\n",
            )],
            Vec::new(),
        );
        let one = CrateRef::new("foo_bar", Some("1.2.0"));
        let m = set.rules_for(&one, Role::BuildScript).expect("profile");
        assert!(m.covers && m.rules.is_some() && m.covering_rules().is_some());
        assert!(
            set.rules_for(&one, Role::ProcMacro)
                .expect("profile")
                .rules
                .is_none()
        );
        let two = CrateRef::new("foo-bar", Some("2.0.0"));
        let m = set.rules_for(&two, Role::BuildScript).expect("profile");
        assert!(!m.covers && m.rules.is_some() && m.covering_rules().is_none());
        assert!(
            set.rules_for(&CrateRef::new("other", None::<&str>), Role::BuildScript)
                .is_none()
        );
    }

    #[test]
    fn user_profiles_win() {
        let profile = |name: &'static str, text: &str| parse_builtin(text, name).expect(name);
        let user = profile("user/foo_bar.toml", "schema = 1\ncrate = \"foo_bar\"\n");
        let shipped = vec![
            profile("shipped/foo-bar.toml", "schema = 1\ncrate = \"foo-bar\"\n"),
            profile("shipped/cc.toml", "schema = 1\ncrate = \"cc\"\n"),
        ];
        let set = ProfileSet::new(vec![user], shipped);
        assert_eq!(set.len(), 2);
        let found = set.get("foo-bar").expect("foo-bar");
        assert_eq!(found.source, ProfileSource::BuiltIn("user/foo_bar.toml"));
        assert!(set.get("foo_bar").is_some());
        assert_eq!(
            set.get("cc").map(|p| &p.source),
            Some(&ProfileSource::BuiltIn("shipped/cc.toml"))
        );
        assert!(set.get("libc").is_none());
        assert!(!set.is_empty());
        assert_eq!(set.iter().count(), 2);
    }
}
