//! The hash chain: how a line is sealed, and how a run of lines is checked.
//!
//! A sealed line is a JSON object whose first key is `seq` and whose last
//! two keys are `prev` (the previous line's hash) and `hash`:
//!
//! ```text
//! {"seq":7,"time":"…",…,"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! `hash` is SHA-256 of the line's bytes up to (not including) `,"hash":`,
//! so it covers `seq`, every field and `prev`. Editing any byte changes the
//! line's hash; deleting, inserting or reordering lines breaks the `prev`
//! links or the `seq` run. The tail has a fixed shape, so checking a line
//! needs no JSON parser: one hash and two comparisons.

use sha2::{Digest, Sha256};

/// The `prev` of the very first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const PREV_KEY: &[u8] = b",\"prev\":\"";
const HASH_KEY: &[u8] = b"\",\"hash\":\"";
/// `,"prev":"<64>","hash":"<64>"}`
const TAIL_LEN: usize = PREV_KEY.len() + 64 + HASH_KEY.len() + 64 + 2;

/// Where the chain stands: the last line's number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

impl Head {
    /// Seals `body` (a JSON object that starts with `{"seq":` and the
    /// next number, as [`crate::Record::body`] writes it) onto the chain and
    /// returns the line, without its newline.
    #[must_use]
    pub fn seal(&mut self, body: &str) -> String {
        debug_assert!(body.starts_with("{\"seq\":") && body.ends_with('}'));
        let mut line = String::with_capacity(body.len() + TAIL_LEN);
        line.push_str(&body[..body.len() - 1]);
        self.close(&mut line, 0);
        line
    }

    /// Seals a line numbered with the chain's next `seq` onto the end of
    /// `out`, with its newline: `fields` are the object's members after
    /// `seq`, without braces (what [`crate::Record::fields`] returns). The
    /// writer's way: no line is allocated of its own.
    pub fn seal_into(&mut self, fields: &str, out: &mut String) {
        use std::fmt::Write as _;
        let start = out.len();
        out.reserve(fields.len() + TAIL_LEN + 24);
        let _ = write!(out, "{{\"seq\":{}", self.seq + 1);
        if !fields.is_empty() {
            out.push(',');
            out.push_str(fields);
        }
        self.close(out, start);
        out.push('\n');
    }

    /// Ends the open line `out[start..]` with `prev` and its hash and moves
    /// the head onto it.
    fn close(&mut self, out: &mut String, start: usize) {
        out.push_str(",\"prev\":\"");
        out.push_str(&self.hash);
        let hash = hex::encode(Sha256::digest(&out.as_bytes()[start..]));
        out.push_str("\",\"hash\":\"");
        out.push_str(&hash);
        out.push_str("\"}");
        self.seq += 1;
        self.hash = hash;
    }
}

/// The parts of a sealed line that the chain checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<'a> {
    pub seq: u64,
    pub prev: &'a str,
    pub hash: &'a str,
    /// Whether `hash` is the hash of the line's sealed part.
    pub intact: bool,
}

/// Reads a sealed line's links, or `None` when it does not have the shape
/// of one (truncated, or not written by portcullis).
#[must_use]
pub fn link(line: &[u8]) -> Option<Link<'_>> {
    let n = line.len();
    if n < TAIL_LEN + 9 || !line.ends_with(b"\"}") {
        return None;
    }
    let tail = &line[n - TAIL_LEN..];
    let (prev_key, rest) = tail.split_at(PREV_KEY.len());
    let (prev, rest) = rest.split_at(64);
    let (hash_key, rest) = rest.split_at(HASH_KEY.len());
    let (hash, _) = rest.split_at(64);
    if prev_key != PREV_KEY || hash_key != HASH_KEY || !is_hex(prev) || !is_hex(hash) {
        return None;
    }
    let digits = line.strip_prefix(b"{\"seq\":")?;
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 19 || digits.get(len) != Some(&b',') {
        return None;
    }
    let seq = std::str::from_utf8(&digits[..len]).ok()?.parse().ok()?;
    let sealed = &line[..n - HASH_KEY.len() - 64 - 2];
    let intact = hex::encode(Sha256::digest(sealed)).as_bytes() == hash;
    Some(Link {
        seq,
        prev: std::str::from_utf8(prev).ok()?,
        hash: std::str::from_utf8(hash).ok()?,
        intact,
    })
}

fn is_hex(b: &[u8]) -> bool {
    b.iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Not a sealed line at all (cut short, or foreign text).
    Malformed,
    /// The line's content does not match its own hash: it was edited.
    Edited,
    /// `missing` lines are gone before this one.
    Deleted { missing: u64 },
    /// The line's number is not the next one: moved or copied here.
    OutOfOrder { expected: u64, found: u64 },
    /// The number is right but the link to the line before is not: the
    /// line was replaced, or one was inserted and renumbered.
    Relinked,
    /// The head anchor names a later line than the last one here: the
    /// last lines were deleted.
    Truncated { head_seq: u64, last_seq: u64 },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => f.write_str(
                "not a sealed audit line (cut short, or text that portcullis did not write)",
            ),
            Self::Edited => f.write_str("edited: its content does not match its hash"),
            Self::Deleted { missing: 1 } => f.write_str("the line before it was deleted"),
            Self::Deleted { missing } => write!(f, "the {missing} lines before it were deleted"),
            Self::OutOfOrder { expected, found } => write!(
                f,
                "out of order or inserted: line number {found} where {expected} was due"
            ),
            Self::Relinked => f.write_str(
                "does not follow the line before it (that line was replaced, or this one inserted)",
            ),
            Self::Truncated { head_seq, last_seq } => write!(
                f,
                "the last lines were deleted: the head anchor names line {head_seq}, the log ends at {last_seq}"
            ),
        }
    }
}

/// Checks lines in order, one at a time.
#[derive(Debug, Default)]
pub struct Verifier {
    head: Option<Head>,
    lines: u64,
}

impl Verifier {
    /// Starts at the genesis, or (with `expect_genesis` false) at whatever
    /// the first line links to: logs whose oldest files retention removed.
    #[must_use]
    pub fn new(expect_genesis: bool) -> Self {
        Self {
            head: expect_genesis.then(Head::default),
            lines: 0,
        }
    }

    /// The first line's number, once one was read, when it did not start
    /// at the genesis.
    #[must_use]
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// How many lines were checked.
    #[must_use]
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Checks the next line.
    ///
    /// # Errors
    /// The first fault found in it.
    pub fn next_line(&mut self, line: &[u8]) -> Result<(), Fault> {
        self.lines += 1;
        let l = link(line).ok_or(Fault::Malformed)?;
        if !l.intact {
            return Err(Fault::Edited);
        }
        if let Some(h) = &self.head {
            let expected = h.seq + 1;
            if l.seq > expected {
                return Err(Fault::Deleted {
                    missing: l.seq - expected,
                });
            }
            if l.seq < expected {
                return Err(Fault::OutOfOrder {
                    expected,
                    found: l.seq,
                });
            }
            if l.prev != h.hash {
                return Err(Fault::Relinked);
            }
        }
        self.head = Some(Head {
            seq: l.seq,
            hash: l.hash.to_owned(),
        });
        Ok(())
    }

    /// Checks the end against a head anchor written by the sink.
    ///
    /// # Errors
    /// [`Fault::Truncated`] when the anchor is ahead of the last line, or
    /// [`Fault::Relinked`] when the anchor's line is not the one here.
    pub fn finish(&self, anchor: &Head) -> Result<(), Fault> {
        let last = self.head.clone().unwrap_or_default();
        if anchor.seq > last.seq {
            return Err(Fault::Truncated {
                head_seq: anchor.seq,
                last_seq: last.seq,
            });
        }
        if anchor.seq == last.seq && anchor.hash != last.hash {
            return Err(Fault::Relinked);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(seq: u64, text: &str) -> String {
        format!(r#"{{"seq":{seq},"event":"{text}"}}"#)
    }

    fn chain(n: u64) -> Vec<String> {
        let mut h = Head::default();
        (1..=n).map(|i| h.seal(&body(i, "x"))).collect()
    }

    fn check(lines: &[String]) -> Result<(), (usize, Fault)> {
        let mut v = Verifier::new(true);
        for (i, l) in lines.iter().enumerate() {
            v.next_line(l.as_bytes()).map_err(|f| (i + 1, f))?;
        }
        Ok(())
    }

    #[test]
    fn a_sealed_chain_verifies_and_every_line_parses_as_json() {
        let lines = chain(5);
        assert_eq!(check(&lines), Ok(()));
        for l in &lines {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert_eq!(v["hash"].as_str().map(str::len), Some(64));
        }
        let first = link(lines[0].as_bytes()).expect("link");
        assert_eq!((first.seq, first.prev), (1, GENESIS));
    }

    #[test]
    fn one_byte_edited_anywhere_is_caught_at_that_line() {
        let lines = chain(5);
        for i in 0..lines.len() {
            let mut bad = lines.clone();
            bad[i] = bad[i].replacen("\"x\"", "\"y\"", 1);
            assert_eq!(check(&bad), Err((i + 1, Fault::Edited)), "line {}", i + 1);
        }
        // An edit inside the hash itself is caught too.
        let mut bad = lines.clone();
        let n = bad[2].len();
        bad[2].replace_range(n - 3..n - 2, "z");
        assert!(check(&bad).is_err());
    }

    #[test]
    fn deleted_inserted_and_reordered_lines_are_named() {
        let lines = chain(6);
        let mut deleted = lines.clone();
        deleted.remove(2);
        assert_eq!(check(&deleted), Err((3, Fault::Deleted { missing: 1 })));

        let mut reordered = lines.clone();
        reordered.swap(1, 3);
        assert_eq!(check(&reordered), Err((2, Fault::Deleted { missing: 2 })));

        let mut inserted = lines.clone();
        inserted.insert(3, lines[1].clone());
        assert_eq!(
            check(&inserted),
            Err((
                4,
                Fault::OutOfOrder {
                    expected: 4,
                    found: 2
                }
            ))
        );

        // A forged line with the right number but sealed on another chain.
        let mut other = Head::default();
        let forged = (1..=3)
            .map(|i| other.seal(&body(i, "forged")))
            .last()
            .expect("line");
        let mut replaced = lines.clone();
        replaced[2] = forged;
        assert_eq!(check(&replaced), Err((3, Fault::Relinked)));
    }

    #[test]
    fn cut_and_foreign_lines_are_malformed() {
        let lines = chain(2);
        let cut = &lines[1][..lines[1].len() - 10];
        let mut v = Verifier::new(true);
        v.next_line(lines[0].as_bytes()).expect("first");
        assert_eq!(v.next_line(cut.as_bytes()), Err(Fault::Malformed));
        assert_eq!(v.next_line(b"hello"), Err(Fault::Malformed));
        assert_eq!(v.next_line(b""), Err(Fault::Malformed));
    }

    #[test]
    fn a_chain_may_start_late_and_the_anchor_catches_a_cut_tail() {
        let lines = chain(6);
        let mut v = Verifier::new(false);
        for l in &lines[3..] {
            v.next_line(l.as_bytes()).expect("late start");
        }
        let mut full = Head::default();
        for i in 1..=6 {
            let _ = full.seal(&body(i, "x"));
        }
        assert_eq!(v.finish(&full), Ok(()));
        let mut short = Verifier::new(true);
        for l in &lines[..4] {
            short.next_line(l.as_bytes()).expect("prefix");
        }
        assert_eq!(
            short.finish(&full),
            Err(Fault::Truncated {
                head_seq: 6,
                last_seq: 4
            })
        );
    }
}
