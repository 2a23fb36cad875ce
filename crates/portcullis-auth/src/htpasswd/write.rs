//! Creating and updating htpasswd files, and generating passwords.
//!
//! Updates are atomic: the new contents go to a temporary file in the same
//! directory, which is then renamed over the old one, so a registry reading
//! the file concurrently sees either the old or the new version, never half
//! of one. Concurrent *writers* are not coordinated; the last rename wins.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use bcrypt::Version;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret as _, SecretString};
use tracing::instrument;

use super::HtpasswdError;
use super::scheme::COST_RANGE;
use crate::identity::UserName;

/// Length of [`generate_password`]'s output: 32 characters from a
/// 62-character alphabet is about 190 bits.
pub const GENERATED_PASSWORD_LEN: usize = 32;

/// Mode of a newly created file: it holds password hashes.
const NEW_FILE_MODE: u32 = 0o600;

/// Adds `name` with a bcrypt hash of `password` (`$2y$`, like `htpasswd -B`),
/// or replaces the user's existing entry in place. Other lines, comments
/// included, are kept byte for byte. A missing file is created with mode
/// 0600; an existing file keeps its mode. If `path` is a symlink, its target
/// is updated.
///
/// Blocking: hashing at cost 12 takes about 250 ms.
///
/// # Errors
/// An invalid `cost`, a name that would not read back unchanged (leading or
/// trailing whitespace, a leading `#`), or an I/O error.
#[instrument(skip_all, fields(path = %path.display(), user = %name))]
pub fn add_user(
    path: &Path,
    name: &UserName,
    password: &SecretString,
    cost: u32,
) -> Result<(), HtpasswdError> {
    if !COST_RANGE.contains(&cost) {
        return Err(HtpasswdError::InvalidCost(cost));
    }
    check_representable(name)?;
    let target = resolve_symlink(path)?;
    let read_err = |source| HtpasswdError::Read {
        path: target.clone(),
        source,
    };
    let (existing, mode) = match fs::read(&target) {
        Ok(bytes) => {
            let mode = fs::metadata(&target)
                .map_err(read_err)?
                .permissions()
                .mode()
                & 0o777;
            (bytes, mode)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), NEW_FILE_MODE),
        Err(e) => return Err(read_err(e)),
    };

    let hash = bcrypt::hash_with_result(password.expose_secret().as_bytes(), cost)
        .map_err(|e| HtpasswdError::Hash(e.to_string()))?
        .format_for_version(Version::TwoY);
    let line = format!("{name}:{hash}");
    let contents = with_user_line(&existing, name.as_str(), line.as_bytes());
    write_atomically(&target, &contents, mode)?;
    tracing::info!("stored user in htpasswd file");
    Ok(())
}

/// A random password for a generated account: [`GENERATED_PASSWORD_LEN`]
/// ASCII letters and digits (URL-safe, and safe to paste into a shell or a
/// `docker login` prompt).
#[must_use]
pub fn generate_password() -> SecretString {
    let password: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(GENERATED_PASSWORD_LEN)
        .map(char::from)
        .collect();
    SecretString::from(password)
}

/// Rejects names that are valid but would be read back differently:
/// the parser trims lines and skips lines starting with `#`.
fn check_representable(name: &UserName) -> Result<(), HtpasswdError> {
    let s = name.as_str();
    let reason = if s.trim() != s {
        "it starts or ends with whitespace, which is trimmed when the file is read"
    } else if s.starts_with('#') {
        "it starts with '#', which marks a comment line"
    } else {
        return Ok(());
    };
    Err(HtpasswdError::UnrepresentableUserName {
        name: s.to_owned(),
        reason,
    })
}

/// Follows symlinks (even to a target that does not exist yet) so that the
/// rename replaces the target, not the link.
fn resolve_symlink(path: &Path) -> Result<PathBuf, HtpasswdError> {
    // Linux gives up after 40 links; so do we.
    const MAX_LINKS: usize = 40;
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current).map_err(|source| HtpasswdError::Read {
                    path: current.clone(),
                    source,
                })?;
                // A relative target is relative to the link's directory.
                current = match current.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(HtpasswdError::Read {
        path: path.to_owned(),
        source: io::Error::other("too many levels of symbolic links"),
    })
}

/// The user named by an htpasswd line, read the way the parser reads it.
fn line_user(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?.trim();
    if text.starts_with('#') {
        return None;
    }
    text.split_once(':').map(|(user, _)| user)
}

/// `existing` with the first entry for `user` replaced by `new_line` and any
/// later entries for `user` removed (they would override it), or with
/// `new_line` appended if there was none.
fn with_user_line(existing: &[u8], user: &str, new_line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(existing.len() + new_line.len() + 1);
    let mut replaced = false;
    if !existing.is_empty() {
        let body = existing.strip_suffix(b"\n").unwrap_or(existing);
        for line in body.split(|&b| b == b'\n') {
            if line_user(line) == Some(user) {
                if replaced {
                    continue;
                }
                out.extend_from_slice(new_line);
                replaced = true;
            } else {
                out.extend_from_slice(line);
            }
            out.push(b'\n');
        }
    }
    if !replaced {
        out.extend_from_slice(new_line);
        out.push(b'\n');
    }
    out
}

/// Replaces `target` with `contents` via a temporary file and a rename.
fn write_atomically(target: &Path, contents: &[u8], mode: u32) -> Result<(), HtpasswdError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| HtpasswdError::Write { path, source }
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = target.file_name().ok_or_else(|| {
        write_err(target)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not name a file",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        file_name.to_string_lossy(),
        rand::random::<u64>()
    ));

    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(NEW_FILE_MODE)
            .open(&tmp)?;
        // `mode` above is filtered by the umask; set the exact mode.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, target)
    })();
    if let Err(e) = result {
        // Best effort: the temporary file may not even exist.
        let _ = fs::remove_file(&tmp);
        return Err(write_err(target)(e));
    }
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_first_entry_and_drops_duplicates() {
        let existing = b"# c\nalice:old\r\nbob:b\n  alice:older\n\nalicex:z";
        let out = with_user_line(existing, "alice", b"alice:new");
        assert_eq!(out, b"# c\nalice:new\nbob:b\n\nalicex:z\n");
    }

    #[test]
    fn appends_when_absent() {
        assert_eq!(with_user_line(b"", "a", b"a:h"), b"a:h\n");
        assert_eq!(with_user_line(b"b:x", "a", b"a:h"), b"b:x\na:h\n");
        assert_eq!(with_user_line(b"b:x\n\n", "a", b"a:h"), b"b:x\n\na:h\n");
        assert_eq!(
            with_user_line(b"#a:commented\n", "a", b"a:h"),
            b"#a:commented\na:h\n"
        );
    }

    #[test]
    fn generated_password_is_long_and_url_safe() {
        let a = generate_password();
        let b = generate_password();
        for p in [&a, &b] {
            let s = p.expose_secret();
            assert!(s.len() >= 24);
            assert_eq!(s.len(), GENERATED_PASSWORD_LEN);
            assert!(s.bytes().all(|c| c.is_ascii_alphanumeric()), "{s}");
        }
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn rejects_names_that_do_not_round_trip() {
        for bad in [" alice", "alice ", "#alice"] {
            let name = UserName::new(bad).unwrap();
            assert!(matches!(
                check_representable(&name),
                Err(HtpasswdError::UnrepresentableUserName { .. })
            ));
        }
        assert!(check_representable(&UserName::new("al#ice").unwrap()).is_ok());
    }
}
