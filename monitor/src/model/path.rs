//! Path handling the model and decode share.
use std::path::{Component, Path, PathBuf};

/// Lexical normalization (`.` and `..` removed) of an absolute path. Only used for paths whose
/// open failed, where there is no file for the kernel to resolve.
pub fn normalize(path: &Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_resolved_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), "/a/c");
        assert_eq!(normalize(Path::new("/../..")), "/");
        assert_eq!(
            normalize(Path::new("/home/u/proj/../.ssh/id_rsa")),
            "/home/u/.ssh/id_rsa"
        );
    }
}
