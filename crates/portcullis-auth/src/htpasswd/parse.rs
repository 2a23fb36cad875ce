//! Reading and parsing htpasswd files, and noticing when they change.
//!
//! The format follows registry:2: one `user:hash` entry per line, surrounding
//! whitespace ignored, blank lines and lines starting with `#` skipped. The
//! accepted hash schemes are in [`super::scheme`]. A line that cannot be
//! used disables only the user it names (or, naming nobody, is skipped), with
//! a [`HtpasswdWarning`]; it never stops the other users from loading.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use super::scheme::{Hash, Scheme, Unusable};
use super::warn::{DisabledUser, HtpasswdWarning, LineProblem};
use super::{DEFAULT_COST, HtpasswdError};
use crate::identity::UserName;

/// One user's usable entry.
pub(super) struct Entry {
    pub(super) name: UserName,
    pub(super) hash: Hash,
}

/// The parsed contents of one version of the file.
pub(super) struct Entries {
    pub(super) users: HashMap<String, Entry>,
    /// Users whose (last) line cannot be used, and why.
    pub(super) disabled: HashMap<String, DisabledUser>,
    /// Every problem found, in line order.
    pub(super) warnings: Vec<HtpasswdWarning>,
    /// A hash of a random password in the file's most common scheme, at the
    /// highest cost used with it, checked for unknown and disabled users so
    /// that they take as long as known ones.
    pub(super) dummy: Hash,
    /// The last line is unusable and has no newline: most likely the file
    /// is being written right now.
    pub(super) incomplete: bool,
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
    Ok((parse(path, &bytes), stamp))
}

/// What one non-blank, non-comment line holds.
enum Line {
    User(Entry),
    Disabled(UserName, Unusable),
    Skipped(String),
}

fn parse_line(raw: &[u8]) -> Option<Line> {
    let (user, rest) = match raw.iter().position(|&b| b == b':') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    let Ok(user) = std::str::from_utf8(user) else {
        return Some(Line::Skipped("the line is not valid UTF-8".to_owned()));
    };
    if (user.is_empty() && rest.is_none()) || user.starts_with('#') {
        return None;
    }
    let Some(rest) = rest else {
        return Some(Line::Skipped(
            "expected `user:hash`, found no ':'".to_owned(),
        ));
    };
    let name = match UserName::new(user) {
        Ok(name) => name,
        Err(e) => return Some(Line::Skipped(format!("invalid user name: {e}"))),
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return Some(Line::Disabled(name, Unusable::NotUtf8));
    };
    // Apache ignores anything after a second ':' (no accepted hash contains
    // one), so we do too.
    let hash = rest.trim_end().split(':').next().unwrap_or_default();
    Some(match Hash::parse(hash) {
        Ok(hash) => Line::User(Entry { name, hash }),
        Err(why) => Line::Disabled(name, why),
    })
}

/// Parses file contents; `path` is only used in warnings.
pub(super) fn parse(path: &Path, bytes: &[u8]) -> Entries {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut users: HashMap<String, (usize, Entry)> = HashMap::new();
    let mut disabled: HashMap<String, (usize, DisabledUser)> = HashMap::new();
    let mut warnings = Vec::new();
    let mut incomplete = false;
    let segments: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = segments.len() - 1;

    for (index, raw) in segments.into_iter().enumerate() {
        let line = index + 1;
        let warning = |user: Option<&str>, problem| HtpasswdWarning {
            path: path.to_owned(),
            line,
            user: user.map(str::to_owned),
            problem,
        };
        let (user, problem) = match parse_line(raw.trim_ascii()) {
            None => continue,
            Some(Line::User(entry)) => {
                let user = entry.name.as_str().to_owned();
                let weak = (entry.hash.scheme() == Scheme::Apr1).then_some(Scheme::Apr1);
                disabled.remove(&user);
                if let Some((earlier_line, _)) = users.insert(user.clone(), (line, entry)) {
                    warnings.push(warning(
                        Some(&user),
                        LineProblem::Duplicate { earlier_line },
                    ));
                }
                if let Some(scheme) = weak {
                    warnings.push(warning(Some(&user), LineProblem::Weak(scheme)));
                }
                continue;
            }
            Some(Line::Disabled(name, why)) => (Some(name), LineProblem::Disabled(why)),
            Some(Line::Skipped(why)) => (None, LineProblem::Skipped(why)),
        };
        let refused = matches!(problem, LineProblem::Disabled(Unusable::Refused(_)));
        incomplete = index == last && !refused;
        let w = warning(user.as_ref().map(UserName::as_str), problem);
        if let Some(name) = user {
            let key = name.as_str().to_owned();
            let earlier_user = users.remove(&key).map(|(l, _)| l);
            let earlier = disabled
                .insert(key, (line, DisabledUser(w.clone())))
                .map(|(l, _)| l)
                .or(earlier_user);
            if let Some(earlier_line) = earlier {
                let duplicate = LineProblem::Duplicate { earlier_line };
                warnings.push(warning(Some(name.as_str()), duplicate));
            }
        }
        warnings.push(w);
    }
    warnings.sort_by_key(|w| w.line);

    let users: HashMap<String, Entry> = users.into_iter().map(|(k, (_, e))| (k, e)).collect();
    Entries {
        dummy: dummy_for(users.values().map(|e| &e.hash)),
        users,
        disabled: disabled.into_iter().map(|(k, (_, d))| (k, d)).collect(),
        warnings,
        incomplete,
    }
}

/// The dummy for a file: the scheme most users have (bcrypt on a tie or
/// when there are no users), at the highest cost any of them uses.
fn dummy_for<'a>(hashes: impl Iterator<Item = &'a Hash>) -> Hash {
    let mut by_scheme: HashMap<Scheme, (usize, u32)> = HashMap::new();
    for hash in hashes {
        let (count, cost) = by_scheme.entry(hash.scheme()).or_default();
        *count += 1;
        *cost = (*cost).max(hash.cost());
    }
    let (scheme, (_, cost)) = by_scheme
        .into_iter()
        .max_by_key(|(scheme, (count, _))| (*count, *scheme == Scheme::Bcrypt))
        .unwrap_or((Scheme::Bcrypt, (0, DEFAULT_COST)));
    Hash::dummy(scheme, cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/etc/htpasswd")
    }

    fn bcrypt(password: &str, cost: u32) -> String {
        bcrypt::hash(password, cost).unwrap()
    }

    #[test]
    fn skips_comments_blank_lines_and_whitespace() {
        let hash = bcrypt("pw", 4);
        let text = format!(
            "\u{feff}# comment\n\n   \n  alice:{hash}  \r\n\t# indented comment\nbob:{hash}:extra field\n"
        );
        let entries = parse(p(), text.as_bytes());
        assert_eq!(entries.users.len(), 2);
        assert_eq!(entries.users["alice"].hash.as_str(), hash);
        assert_eq!(entries.users["bob"].hash.as_str(), hash);
        assert!(entries.dummy.as_str().starts_with("$2y$04$"));
        assert!(entries.warnings.is_empty() && !entries.incomplete);
    }

    #[test]
    fn empty_file_uses_default_cost_for_dummy() {
        let entries = parse(p(), b"# nobody\n");
        assert!(entries.users.is_empty());
        assert!(entries.dummy.as_str().starts_with("$2y$12$"));
    }

    #[test]
    fn last_duplicate_wins_with_a_warning() {
        let first = bcrypt("one", 4);
        let second = bcrypt("two", 4);
        let text = format!("alice:{first}\nalice:{second}\n");
        let entries = parse(p(), text.as_bytes());
        assert_eq!(entries.users["alice"].hash.as_str(), second);
        assert_eq!(
            entries.warnings[0].problem,
            LineProblem::Duplicate { earlier_line: 1 }
        );

        // A later unusable line disables the user, and a later good line
        // enables them again.
        let text = format!("alice:{first}\nalice:plain\n");
        let entries = parse(p(), text.as_bytes());
        assert!(entries.users.is_empty());
        assert_eq!(entries.disabled["alice"].warning().line, 2);
        let text = format!("alice:plain\nalice:{first}\n");
        let entries = parse(p(), text.as_bytes());
        assert!(entries.disabled.is_empty());
        assert!(entries.users.contains_key("alice"));
    }

    #[test]
    fn dummy_follows_the_most_common_scheme_at_its_highest_cost() {
        let low = bcrypt("a", 4);
        let high = bcrypt("b", 5);
        let text = format!("a:{low}\nb:{high}\n");
        assert!(
            parse(p(), text.as_bytes())
                .dummy
                .as_str()
                .starts_with("$2y$05$")
        );

        let sha = |rounds| {
            sha_crypt::sha512_simple("pw", &sha_crypt::Sha512Params::new(rounds).unwrap()).unwrap()
        };
        let text = format!("a:{low}\nb:{}\nc:{}\n", sha(1000), sha(2000));
        let dummy = parse(p(), text.as_bytes()).dummy;
        assert_eq!((dummy.scheme(), dummy.cost()), (Scheme::Sha512Crypt, 2000));
    }

    #[test]
    fn unusable_lines_disable_only_their_user() {
        let hash = bcrypt("pw", 4);
        let text = format!(
            "alice:{hash}\n# ok\nno-colon-here\n:{hash}\nbob:$2y$05$tooshort\ncarol:\n\
             dave:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nerin:$apr1$Yi0aGyL0$6Ys/QXCmqcsNcAg3JsZY/1\n\
             frank:{hash}\n"
        );
        let entries = parse(p(), text.as_bytes());
        let mut users: Vec<_> = entries.users.keys().cloned().collect();
        users.sort();
        assert_eq!(users, ["alice", "erin", "frank"]);
        let mut disabled: Vec<_> = entries.disabled.keys().cloned().collect();
        disabled.sort();
        assert_eq!(disabled, ["bob", "carol", "dave"]);
        let lines: Vec<_> = entries.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8]);
        assert!(!entries.incomplete);
        for w in &entries.warnings {
            let msg = w.to_string();
            assert!(
                msg.contains("/etc/htpasswd") && msg.contains(&format!("line {}", w.line)),
                "{msg}"
            );
            assert!(msg.contains("htpasswd -B /etc/htpasswd"), "{msg}");
            assert!(!msg.contains(&hash), "{msg}");
            if let Some(user) = &w.user {
                assert!(msg.contains(user.as_str()), "{msg}");
            }
        }
        let dave = entries.disabled["dave"].to_string();
        assert_eq!(
            dave,
            "user dave's htpasswd line 7 uses SHA-1 ({SHA}, htpasswd -s), which portcullis \
             refuses; rehash it with `htpasswd -B /etc/htpasswd dave`"
        );
        assert!(entries.warnings[5].to_string().contains("weak"));
        assert!(entries.warnings[2].to_string().contains("malformed bcrypt"));

        let mut bytes = b"\xff\xfe:x\nok:".to_vec();
        bytes.extend_from_slice(hash.as_bytes());
        bytes.extend_from_slice(b"\nbad:\xff\n");
        let entries = parse(p(), &bytes);
        assert!(entries.users.contains_key("ok"));
        assert!(entries.warnings[0].to_string().contains("UTF-8"));
        assert!(entries.disabled["bad"].to_string().contains("UTF-8"));
    }

    #[test]
    fn a_cut_off_last_line_marks_the_file_incomplete() {
        let hash = bcrypt("pw", 4);
        let text = format!("alice:{hash}\nbob:{}", &hash[..20]);
        assert!(parse(p(), text.as_bytes()).incomplete);
        // The same line with its newline is complete, just broken.
        assert!(!parse(p(), format!("{text}\n").as_bytes()).incomplete);
        // A whole line in a refused scheme is not a write in progress.
        assert!(!parse(p(), b"bob:plaintext").incomplete);
    }
}
