//! Reading and parsing htpasswd files, and noticing when they change.
//!
//! The format follows registry:2: one `user:hash` entry per line, surrounding
//! whitespace ignored, blank lines and lines starting with `#` skipped. Only
//! bcrypt hashes (`$2y$`, `$2a$`, `$2b$`) are accepted; anything else is a
//! load error that names the line, instead of registry:2's silent "user can
//! never log in".

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use bcrypt::{HashParts, Version};

use super::{DEFAULT_COST, HtpasswdError};
use crate::identity::UserName;

/// Lowest and highest cost bcrypt (and `htpasswd -C`) accept.
pub(super) const COST_RANGE: std::ops::RangeInclusive<u32> = 4..=31;

/// One user's entry.
pub(super) struct Entry {
    pub(super) name: UserName,
    /// A bcrypt hash, already checked to be well-formed with a valid cost.
    pub(super) hash: String,
}

/// The parsed contents of one version of the file.
pub(super) struct Entries {
    pub(super) users: HashMap<String, Entry>,
    /// A hash of a random password at the highest cost in the file, checked
    /// for unknown users so that they take as long as known ones.
    pub(super) dummy_hash: String,
}

/// What identifies one version of the file on disk. If any field differs
/// the file was rewritten (in place or by rename) and must be re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileStamp {
    Present {
        dev: u64,
        ino: u64,
        len: u64,
        mtime: (i64, i64),
        ctime: (i64, i64),
    },
    /// `stat` failed (file deleted, permissions changed, ...).
    Unavailable,
}

impl FileStamp {
    fn of(meta: &Metadata) -> Self {
        Self::Present {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Stats `path` (following symlinks, so a re-pointed link counts as a change).
    pub(super) fn current(path: &Path) -> Self {
        std::fs::metadata(path).map_or(Self::Unavailable, |m| Self::of(&m))
    }
}

/// Reads and parses the file. The returned stamp is taken from the open file
/// *before* reading, so if the file is modified while we read it, the next
/// stamp comparison sees a difference and reads it again.
pub(super) fn read(path: &Path) -> Result<(Entries, FileStamp), HtpasswdError> {
    let read_err = |source| HtpasswdError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let stamp = FileStamp::of(&file.metadata().map_err(read_err)?);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(read_err)?;
    Ok((parse(path, &bytes)?, stamp))
}

/// Parses file contents; `path` is only used in error messages.
pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Entries, HtpasswdError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut users: HashMap<String, (usize, Entry)> = HashMap::new();
    let mut max_cost = None::<u32>;

    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let malformed = |reason: String| HtpasswdError::Malformed {
            path: path.to_owned(),
            line,
            reason,
        };
        let text = std::str::from_utf8(raw)
            .map_err(|_| malformed("the line is not valid UTF-8".to_owned()))?
            .trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let Some((user, rest)) = text.split_once(':') else {
            return Err(malformed(
                "expected `user:bcrypt-hash`, found no ':'".to_owned(),
            ));
        };
        let name = UserName::new(user).map_err(|e| malformed(format!("invalid user name: {e}")))?;
        // Apache ignores anything after a second ':' (a bcrypt hash never
        // contains one), so we do too.
        let hash = rest.split(':').next().unwrap_or_default();
        let cost = check_hash(hash).map_err(|problem| match problem {
            HashProblem::Unsupported(scheme) => HtpasswdError::UnsupportedHash {
                path: path.to_owned(),
                line,
                user: name.to_string(),
                scheme,
            },
            HashProblem::Malformed(reason) => malformed(format!("user {name:?}: {reason}")),
        })?;
        max_cost = Some(max_cost.map_or(cost, |c| c.max(cost)));

        let entry = Entry {
            name,
            hash: hash.to_owned(),
        };
        // Like registry:2 (which fills a map line by line), the last entry
        // for a user wins.
        if let Some((earlier, _)) = users.insert(user.to_owned(), (line, entry)) {
            tracing::warn!(
                path = %path.display(),
                user,
                earlier_line = earlier,
                line,
                "htpasswd file lists the user twice; the later line wins"
            );
        }
    }

    Ok(Entries {
        users: users.into_iter().map(|(k, (_, e))| (k, e)).collect(),
        dummy_hash: dummy_hash(max_cost.unwrap_or(DEFAULT_COST)),
    })
}

enum HashProblem {
    /// A recognised non-bcrypt scheme (name of the scheme).
    Unsupported(&'static str),
    /// Looks like bcrypt but is broken.
    Malformed(String),
}

/// Checks that `hash` is a usable bcrypt hash and returns its cost.
fn check_hash(hash: &str) -> Result<u32, HashProblem> {
    const UNSUPPORTED: &[(&str, &str)] = &[
        ("$apr1$", "Apache MD5 ($apr1$, htpasswd -m)"),
        ("{SHA}", "SHA-1 ({SHA}, htpasswd -s)"),
        ("$2x$", "bcrypt $2x$ (legacy, buggy variant)"),
        ("$1$", "MD5-crypt ($1$)"),
        ("$5$", "SHA-256-crypt ($5$)"),
        ("$6$", "SHA-512-crypt ($6$, htpasswd -5/-2)"),
        ("$y$", "yescrypt ($y$)"),
    ];
    if hash.is_empty() {
        return Err(HashProblem::Malformed("the password hash is empty".into()));
    }
    if let Some((_, scheme)) = UNSUPPORTED.iter().find(|(p, _)| hash.starts_with(p)) {
        return Err(HashProblem::Unsupported(scheme));
    }
    if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
        return Err(HashProblem::Unsupported(
            "crypt(3) DES or plain text (htpasswd -d/-p)",
        ));
    }
    let parts: HashParts = hash.parse().map_err(|e: bcrypt::BcryptError| {
        HashProblem::Malformed(format!("malformed bcrypt hash ({e})"))
    })?;
    let cost = parts.get_cost();
    if !COST_RANGE.contains(&cost) {
        return Err(HashProblem::Malformed(format!(
            "bcrypt cost {cost} is outside the allowed range 4..=31"
        )));
    }
    Ok(cost)
}

/// A well-formed bcrypt hash of a random password that takes as long to
/// verify as a real hash of the given `cost`.
///
/// Verification time depends only on the cost field, so instead of paying
/// for a full-cost hash at every load we hash at the minimum cost and then
/// rewrite the cost digits: the result parses, and `verify` runs the full
/// `cost` rounds (and fails).
pub(super) fn dummy_hash(cost: u32) -> String {
    let password: [u8; 32] = rand::random();
    let salt: [u8; 16] = rand::random();
    let min_cost = *COST_RANGE.start();
    let cheap = bcrypt::hash_with_salt(password, min_cost, salt)
        .expect("the minimum cost is always accepted")
        .format_for_version(Version::TwoY);
    // "$2y$04$" is 7 bytes; the rest is salt and hash.
    format!("$2y${cost:02}${}", &cheap[7..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/etc/htpasswd")
    }

    #[test]
    fn dummy_hash_has_the_requested_cost_and_never_matches() {
        let hash = dummy_hash(5);
        let parts: HashParts = hash.parse().unwrap();
        assert_eq!(parts.get_cost(), 5);
        assert!(hash.starts_with("$2y$05$"));
        assert!(!bcrypt::verify("", &hash).unwrap());
    }

    #[test]
    fn skips_comments_blank_lines_and_whitespace() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let text = format!(
            "\u{feff}# comment\n\n   \n  alice:{hash}  \r\n\t# indented comment\nbob:{hash}:extra field\n"
        );
        let entries = parse(p(), text.as_bytes()).unwrap();
        assert_eq!(entries.users.len(), 2);
        assert_eq!(entries.users["alice"].hash, hash);
        assert_eq!(entries.users["bob"].hash, hash);
        assert!(entries.dummy_hash.starts_with("$2y$04$"));
    }

    #[test]
    fn empty_file_uses_default_cost_for_dummy() {
        let entries = parse(p(), b"# nobody\n").unwrap();
        assert!(entries.users.is_empty());
        assert!(entries.dummy_hash.starts_with("$2y$12$"));
    }

    #[test]
    fn last_duplicate_wins() {
        let first = bcrypt::hash("one", 4).unwrap();
        let second = bcrypt::hash("two", 4).unwrap();
        let text = format!("alice:{first}\nalice:{second}\n");
        let entries = parse(p(), text.as_bytes()).unwrap();
        assert_eq!(entries.users["alice"].hash, second);
    }

    #[test]
    fn dummy_uses_highest_cost() {
        let low = bcrypt::hash("a", 4).unwrap();
        let high = bcrypt::hash("b", 5).unwrap();
        let text = format!("a:{low}\nb:{high}\n");
        assert!(
            parse(p(), text.as_bytes())
                .unwrap()
                .dummy_hash
                .starts_with("$2y$05$")
        );
    }

    fn error_for(text: &str) -> String {
        match parse(p(), text.as_bytes()) {
            Ok(_) => panic!("{text:?} parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn malformed_lines_are_named() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let msg = error_for(&format!("alice:{hash}\n# ok\nno-colon-here\n"));
        assert!(msg.contains("/etc/htpasswd"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(!msg.contains(&hash), "{msg}");

        let msg = error_for(&format!(":{hash}\n"));
        assert!(
            msg.contains("line 1") && msg.contains("user name is empty"),
            "{msg}"
        );

        let msg = error_for("\n\nbob:$2y$05$tooshort\n");
        assert!(
            msg.contains("line 3") && msg.contains("malformed bcrypt"),
            "{msg}"
        );

        let msg = error_for("bob:\n");
        assert!(msg.contains("empty"), "{msg}");

        let bad_cost = format!("$2y$03${}", &hash[7..]);
        let msg = error_for(&format!("bob:{bad_cost}\n"));
        assert!(msg.contains("cost 3"), "{msg}");

        let mut bytes = b"\xff\xfe:x\n".to_vec();
        bytes.extend_from_slice(b"x");
        let Err(e) = parse(p(), &bytes) else {
            panic!("invalid UTF-8 parsed")
        };
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn non_bcrypt_hashes_are_rejected_with_advice() {
        for (hash, scheme) in [
            ("$apr1$Yi0aGyL0$6Ys/QXCmqcsNcAg3JsZY/1", "$apr1$"),
            ("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "{SHA}"),
            ("rqXexS6ZhobKA", "crypt(3)"),
            ("plaintext", "plain text"),
            ("$6$salt$abc", "SHA-512"),
        ] {
            let msg = error_for(&format!("# header\ncarol:{hash}\n"));
            assert!(msg.contains("line 2"), "{msg}");
            assert!(msg.contains("carol"), "{msg}");
            assert!(msg.contains(scheme), "{msg}");
            assert!(msg.contains("htpasswd -B"), "{msg}");
            assert!(msg.contains("portcullis user add"), "{msg}");
            assert!(!msg.contains(hash), "{msg}");
        }
    }
}
