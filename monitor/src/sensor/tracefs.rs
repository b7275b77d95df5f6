//! tracefs: finding (or mounting) it, and reading field offsets from tracepoint `format` files.
use std::path::{Path, PathBuf};

use super::SensorError;

const MOUNT_POINT: &str = "/sys/kernel/tracing";
const LEGACY: &str = "/sys/kernel/debug/tracing";

/// The tracefs directory, mounting tracefs at /sys/kernel/tracing when no mount is present.
pub fn ensure_mounted() -> Result<PathBuf, SensorError> {
    for dir in [MOUNT_POINT, LEGACY] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    nix::mount::mount(
        Some("nodev"),
        MOUNT_POINT,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|errno| {
        SensorError::Tracefs(format!("mounting tracefs at {MOUNT_POINT} failed: {errno}"))
    })?;
    if Path::new(MOUNT_POINT).join("events").is_dir() {
        Ok(PathBuf::from(MOUNT_POINT))
    } else {
        Err(SensorError::Tracefs(format!(
            "tracefs mounted at {MOUNT_POINT} has no events directory"
        )))
    }
}

/// Checks that a tracepoint exists.
pub fn has_tracepoint(tracefs: &Path, category: &str, name: &str) -> bool {
    tracefs
        .join("events")
        .join(category)
        .join(name)
        .join("id")
        .is_file()
}

/// Offset of `field` in the record of tracepoint `category/name`, or `None` if the tracepoint has
/// no such field.
pub fn field_offset(
    tracefs: &Path,
    category: &str,
    name: &str,
    field: &str,
) -> Result<Option<u32>, SensorError> {
    let path = tracefs
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let text = std::fs::read_to_string(&path).map_err(|e| SensorError::MissingHook {
        hook: format!("tracepoint {category}/{name}"),
        detail: format!("cannot read {}: {e}", path.display()),
    })?;
    Ok(parse_field_offset(&text, field))
}

/// Finds `offset:N` on the `field:` line whose declaration ends with `field`.
pub fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let ident = decl
            .rsplit(|c: char| c.is_whitespace() || c == '*')
            .next()?;
        let ident = ident.split('[').next()?;
        if ident != field {
            return None;
        }
        let offset = rest.trim().strip_prefix("offset:")?;
        offset.split(';').next()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: &str = "name: sched_process_exit\nID: 369\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n";

    #[test]
    fn finds_fields() {
        assert_eq!(parse_field_offset(EXIT, "group_dead"), Some(32));
        assert_eq!(parse_field_offset(EXIT, "comm"), Some(8));
        assert_eq!(parse_field_offset(EXIT, "pid"), Some(24));
        assert_eq!(parse_field_offset(EXIT, "prio"), None);
        let exec = "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n";
        assert_eq!(parse_field_offset(exec, "filename"), Some(8));
    }
}
