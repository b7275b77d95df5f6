//! Decoding the process family (exec; fork and exit are fixed records decoded in place).

use super::*;

pub(super) fn decode_exec(bytes: &[u8]) -> Result<Exec, DecodeError> {
    let r = fixed::<ExecRecord>(bytes, kind::EXEC)?;
    let mut rest = &bytes[size_of::<ExecRecord>()..];
    let filename = take(&mut rest, r.filename_len, kind::EXEC, bytes.len())?;
    let resolved = take(&mut rest, r.resolved_len, kind::EXEC, bytes.len())?;
    let cwd = take(&mut rest, r.cwd_len, kind::EXEC, bytes.len())?;
    let argv = take(&mut rest, r.argv_len, kind::EXEC, bytes.len())?;
    let env_block = take(&mut rest, r.env_len, kind::EXEC, bytes.len())?;

    // Only the kept variables survive; the rest of the environment is dropped here.
    let mut env = std::collections::BTreeMap::new();
    for var in strings(env_block) {
        if let Some(eq) = var.iter().position(|&b| b == b'=')
            && let Ok(name) = std::str::from_utf8(&var[..eq])
            && KEPT_VARIABLES.contains(&name)
        {
            env.insert(name.to_owned(), text(&var[eq + 1..]));
        }
    }
    let path = text(filename);
    let exe = (r.flags & flag::RESOLVED_IS_TARGET != 0 && !resolved.is_empty())
        .then(|| text(resolved))
        .filter(|exe| exe != &path);
    Ok(Exec {
        path,
        exe,
        cwd: (!cwd.is_empty()).then(|| text(cwd)),
        argv: if argv.is_empty() {
            Vec::new()
        } else {
            strings(argv).map(text).collect()
        },
        argv_truncated: r.flags & flag::ARGV_TRUNCATED != 0,
        env,
        env_truncated: r.flags & flag::ENV_TRUNCATED != 0,
        deleted: r.flags & flag::EXE_DELETED != 0,
        guard_root: r.flags & flag::GUARD_ROOT != 0,
        digest: None,
    })
}
