//! The digest of a program image (an executable, or a proc-macro library rustc mapped), as the
//! events and reports carry it. Computed by `crate::digest` off the event path; `replay` reads it
//! back from the stream and never hashes again.
use serde::{Deserialize, Serialize};

/// What is known of the content of the image an event names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ImageDigest {
    /// The file was hashed, and it is the file the kernel ran or mapped, unchanged since.
    Hashed {
        /// SHA-256 of the whole file, lowercase hex.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The file changed (was written, replaced, renamed or deleted) after it ran and before it
    /// could be hashed: no digest is given rather than a wrong one.
    Changed {
        /// What changed, for the reader.
        detail: String,
    },
    /// The file could not be hashed (unreadable, gone, or hashing fell behind).
    Unavailable {
        /// Why.
        detail: String,
    },
}

/// The detail of a file that changed between running and hashing (docs/reports.md).
pub const CHANGED_BEFORE_HASHING: &str = "changed before it could be hashed";

impl ImageDigest {
    /// The SHA-256, when hashed.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            ImageDigest::Hashed { sha256, .. } => Some(sha256),
            _ => None,
        }
    }

    /// `sha256:<hex>`, or why there is none (`changed before it could be hashed: ...`).
    pub fn describe(&self) -> String {
        match self {
            ImageDigest::Hashed { sha256, .. } => format!("sha256:{sha256}"),
            ImageDigest::Changed { detail } => format!("{CHANGED_BEFORE_HASHING} ({detail})"),
            ImageDigest::Unavailable { detail } => format!("not hashed ({detail})"),
        }
    }
}
