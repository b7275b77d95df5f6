//! Path handling the model and decode share.
use std::path::{Component, Path, PathBuf};

/// Lexical normalization (`.` and `..` removed) of an absolute path. Only used for paths whose
/// open failed, where there is no file for the kernel to resolve.
pub fn normalize(path: &Path) -> String {
    // Most paths are normal already (the reader decodes every failed open with this).
    if let Some(text) = path.to_str()
        && is_normal(text)
    {
        return text.to_owned();
    }
    walk(path)
}

/// The component walk behind [`normalize`].
fn walk(path: &Path) -> String {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// Absolute, without empty, `.` or `..` components and without a trailing slash: what
/// [`normalize`] would give back unchanged.
pub fn is_normal(path: &str) -> bool {
    path == "/"
        || path.strip_prefix('/').is_some_and(|rest| {
            rest.split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_come_back_unchanged_and_others_normalized() {
        for (input, normal) in [
            ("/", "/"),
            ("/a/b.c/..d/.e", "/a/b.c/..d/.e"),
            ("/a/b/", "/a/b"),
            ("//a//b", "/a/b"),
            ("/a/.", "/a"),
            ("/a/..", "/"),
            ("/a/b/../../..", "/"),
        ] {
            assert_eq!(normalize(Path::new(input)), normal, "{input}");
            assert_eq!(is_normal(input), input == normal, "{input}");
        }
    }

    #[test]
    fn dots_are_resolved_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), "/a/c");
        assert_eq!(normalize(Path::new("/../..")), "/");
        assert_eq!(
            normalize(Path::new("/home/u/proj/../.ssh/id_rsa")),
            "/home/u/.ssh/id_rsa"
        );
    }

    proptest::proptest! {
        /// The shortcut for normal paths gives what the component walk gives.
        #[test]
        fn the_shortcut_agrees_with_the_walk(parts in proptest::collection::vec(
            proptest::prop_oneof!["", ".", "..", "a", "b.c", "..d"], 0..6), trailing in proptest::bool::ANY) {
            let mut text = format!("/{}", parts.join("/"));
            if trailing {
                text.push('/');
            }
            proptest::prop_assert_eq!(normalize(Path::new(&text)), walk(Path::new(&text)));
        }
    }
}
