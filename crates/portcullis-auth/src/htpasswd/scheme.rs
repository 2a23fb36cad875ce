//! The password hash schemes an htpasswd line may use, and why a line's hash
//! cannot be used.
//!
//! Accepted: bcrypt (`$2y$`, `$2a$`, `$2b$`; `htpasswd -B`), SHA-256 and
//! SHA-512 crypt (`$5$`, `$6$`, with an optional `rounds=`; `htpasswd -2/-5`
//! in newer Apache, `mkpasswd`, `openssl passwd -5/-6`) and Apache's MD5
//! (`$apr1$`; `htpasswd -m`, which is weak and gets a warning). Refused, so
//! the user is disabled: plain text, DES crypt, `{SHA}` (SHA-1), MD5 crypt
//! (`$1$`), yescrypt and the buggy `$2x$` bcrypt.

use std::fmt;

use bcrypt::HashParts;
use md5::{Digest as _, Md5};

/// Lowest and highest cost bcrypt (and `htpasswd -C`) accept.
pub(super) const COST_RANGE: std::ops::RangeInclusive<u32> = 4..=31;

/// The rounds SHA-crypt accepts (glibc's bounds) and uses without `rounds=`.
const SHA_ROUNDS: std::ops::RangeInclusive<u32> = 1_000..=999_999_999;
const SHA_DEFAULT_ROUNDS: u32 = 5_000;

/// The salt of SHA-crypt dummies (see [`Hash::dummy`]); they never match.
const DUMMY_SALT: &[u8] = b"portcullisdummy";

/// The alphabet of crypt(3)'s base 64, used by APR1.
const CRYPT_B64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A usable password hash scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// bcrypt, `htpasswd -B`.
    Bcrypt,
    /// SHA-256 crypt, `$5$`.
    Sha256Crypt,
    /// SHA-512 crypt, `$6$`.
    Sha512Crypt,
    /// Apache's MD5, `$apr1$`, `htpasswd -m`: accepted, but weak.
    Apr1,
}

impl Scheme {
    /// Human-readable name, with the prefix and the command that writes it.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Bcrypt => "bcrypt (htpasswd -B)",
            Self::Sha256Crypt => "SHA-256 crypt ($5$, htpasswd -2)",
            Self::Sha512Crypt => "SHA-512 crypt ($6$, htpasswd -5)",
            Self::Apr1 => "Apache MD5 ($apr1$, htpasswd -m)",
        }
    }
}

/// Why a line's password hash cannot be used; the user it names is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unusable {
    /// A recognised scheme that portcullis refuses (its name).
    Refused(&'static str),
    /// The line looks like an accepted scheme but is broken.
    Malformed {
        /// The scheme it looks like.
        scheme: Scheme,
        /// What is wrong.
        reason: String,
    },
    /// Nothing after the `:`.
    Empty,
    /// The hash is not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(scheme) => write!(f, "uses {scheme}, which portcullis refuses"),
            Self::Malformed { scheme, reason } => {
                write!(f, "has a malformed {} hash ({reason})", scheme.describe())
            }
            Self::Empty => f.write_str("has an empty password hash"),
            Self::NotUtf8 => f.write_str("has a password hash that is not valid UTF-8"),
        }
    }
}

/// A parsed, usable hash.
#[derive(Clone)]
pub(super) struct Hash {
    scheme: Scheme,
    /// The full hash as written in the file.
    text: String,
    /// bcrypt cost or SHA-crypt rounds (1000 for APR1): how expensive a
    /// verification is, compared within one scheme.
    cost: u32,
}

/// Shows the scheme and cost, never the hash.
impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hash")
            .field("scheme", &self.scheme)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl Hash {
    /// Parses and checks `text`, the part of a line after the user's `:`.
    pub(super) fn parse(text: &str) -> Result<Self, Unusable> {
        const REFUSED: &[(&str, &str)] = &[
            ("{SHA}", "SHA-1 ({SHA}, htpasswd -s)"),
            ("$2x$", "bcrypt $2x$ (a legacy, buggy variant)"),
            ("$1$", "MD5 crypt ($1$)"),
            ("$y$", "yescrypt ($y$)"),
            ("$7$", "scrypt ($7$)"),
        ];
        if text.is_empty() {
            return Err(Unusable::Empty);
        }
        if let Some((_, scheme)) = REFUSED.iter().find(|(p, _)| text.starts_with(p)) {
            return Err(Unusable::Refused(scheme));
        }
        let (scheme, cost) = if ["$2y$", "$2a$", "$2b$"].iter().any(|p| text.starts_with(p)) {
            (Scheme::Bcrypt, bcrypt_cost(text)?)
        } else if let Some(rest) = text.strip_prefix("$5$") {
            (
                Scheme::Sha256Crypt,
                sha_rounds(Scheme::Sha256Crypt, rest, 43)?,
            )
        } else if let Some(rest) = text.strip_prefix("$6$") {
            (
                Scheme::Sha512Crypt,
                sha_rounds(Scheme::Sha512Crypt, rest, 86)?,
            )
        } else if let Some(rest) = text.strip_prefix("$apr1$") {
            check_apr1(rest)?;
            (Scheme::Apr1, 1_000)
        } else if text.starts_with('$') {
            return Err(Unusable::Refused("an unknown crypt scheme"));
        } else {
            return Err(Unusable::Refused(
                "crypt(3) DES or plain text (htpasswd -d/-p)",
            ));
        };
        Ok(Self {
            scheme,
            text: text.to_owned(),
            cost,
        })
    }

    pub(super) fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub(super) fn cost(&self) -> u32 {
        self.cost
    }

    pub(super) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `password` matches. Always does the scheme's full work.
    pub(super) fn verify(&self, password: &str) -> bool {
        match self.scheme {
            Scheme::Bcrypt => bcrypt::verify(password.as_bytes(), &self.text).unwrap_or(false),
            // A dummy: the same rounds of work, then no match.
            Scheme::Sha256Crypt if self.text.is_empty() => {
                let params = sha_crypt::Sha256Params::new(self.cost as usize);
                let _ =
                    params.map(|p| sha_crypt::sha256_crypt(password.as_bytes(), DUMMY_SALT, &p));
                false
            }
            Scheme::Sha512Crypt if self.text.is_empty() => {
                let params = sha_crypt::Sha512Params::new(self.cost as usize);
                let _ =
                    params.map(|p| sha_crypt::sha512_crypt(password.as_bytes(), DUMMY_SALT, &p));
                false
            }
            Scheme::Sha256Crypt => sha_crypt::sha256_check(password, &self.text).is_ok(),
            Scheme::Sha512Crypt => sha_crypt::sha512_check(password, &self.text).is_ok(),
            Scheme::Apr1 => {
                let rest = &self.text["$apr1$".len()..];
                let (salt, expected) = rest.split_once('$').unwrap_or((rest, ""));
                constant_time_eq(
                    apr1(password.as_bytes(), salt.as_bytes()).as_bytes(),
                    expected.as_bytes(),
                )
            }
        }
    }

    /// A hash of a random password in `scheme` that costs `cost` to verify
    /// (and never matches): checked for unknown and disabled users, so they
    /// take as long as real ones. Making it costs next to nothing, whatever
    /// `cost` is: bcrypt gets a cheap hash with the cost digits rewritten,
    /// SHA-crypt no text at all (see [`Self::verify`]).
    pub(super) fn dummy(scheme: Scheme, cost: u32) -> Self {
        let text = match scheme {
            Scheme::Bcrypt => dummy_bcrypt(cost),
            Scheme::Sha256Crypt | Scheme::Sha512Crypt => String::new(),
            Scheme::Apr1 => {
                let salt: String = (0..8)
                    .map(|_| char::from(CRYPT_B64[usize::from(rand::random::<u8>() % 64)]))
                    .collect();
                let password: [u8; 16] = rand::random();
                format!("$apr1${salt}${}", apr1(&password, salt.as_bytes()))
            }
        };
        Self { scheme, text, cost }
    }
}

/// The cost of a well-formed bcrypt hash.
fn bcrypt_cost(text: &str) -> Result<u32, Unusable> {
    let malformed = |reason: String| Unusable::Malformed {
        scheme: Scheme::Bcrypt,
        reason,
    };
    let parts: HashParts = text
        .parse()
        .map_err(|e: bcrypt::BcryptError| malformed(e.to_string()))?;
    let cost = parts.get_cost();
    if !COST_RANGE.contains(&cost) {
        return Err(malformed(format!(
            "cost {cost} is outside the allowed range 4..=31"
        )));
    }
    Ok(cost)
}

/// Checks `[rounds=N$]salt$hash` (after the `$5$`/`$6$`) and returns the rounds.
fn sha_rounds(scheme: Scheme, rest: &str, hash_len: usize) -> Result<u32, Unusable> {
    let malformed = |reason: String| Unusable::Malformed { scheme, reason };
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, rest) = r
                .split_once('$')
                .ok_or_else(|| malformed("no salt after rounds=".into()))?;
            let n: u32 = n
                .parse()
                .map_err(|_| malformed(format!("rounds={n} is not a number")))?;
            if !SHA_ROUNDS.contains(&n) {
                return Err(malformed(format!(
                    "rounds={n} is outside the allowed range 1000..=999999999"
                )));
            }
            (n, rest)
        }
        None => (SHA_DEFAULT_ROUNDS, rest),
    };
    let (salt, hash) = rest
        .split_once('$')
        .ok_or_else(|| malformed("expected `salt$hash`".into()))?;
    check_crypt_b64(salt, 1..=16, "salt").map_err(malformed)?;
    check_crypt_b64(hash, hash_len..=hash_len, "hash").map_err(malformed)?;
    Ok(rounds)
}

/// Checks `salt$hash` (after the `$apr1$`).
fn check_apr1(rest: &str) -> Result<(), Unusable> {
    let malformed = |reason: String| Unusable::Malformed {
        scheme: Scheme::Apr1,
        reason,
    };
    let (salt, hash) = rest
        .split_once('$')
        .ok_or_else(|| malformed("expected `salt$hash`".into()))?;
    check_crypt_b64(salt, 1..=8, "salt").map_err(malformed)?;
    check_crypt_b64(hash, 22..=22, "hash").map_err(malformed)
}

fn check_crypt_b64(
    field: &str,
    len: std::ops::RangeInclusive<usize>,
    what: &str,
) -> Result<(), String> {
    if !len.contains(&field.len()) {
        return Err(format!(
            "the {what} has {} characters, expected {}",
            field.len(),
            if len.start() == len.end() {
                len.start().to_string()
            } else {
                format!("{} to {}", len.start(), len.end())
            }
        ));
    }
    if !field.bytes().all(|b| CRYPT_B64.contains(&b)) {
        return Err(format!("the {what} has characters outside [./0-9A-Za-z]"));
    }
    Ok(())
}

/// A well-formed bcrypt hash of a random password that takes as long to
/// verify as a real hash of the given `cost`.
///
/// Verification time depends only on the cost field, so instead of paying
/// for a full-cost hash at every load we hash at the minimum cost and then
/// rewrite the cost digits: the result parses, and `verify` runs the full
/// `cost` rounds (and fails).
pub(super) fn dummy_bcrypt(cost: u32) -> String {
    let password: [u8; 32] = rand::random();
    let salt: [u8; 16] = rand::random();
    let min_cost = *COST_RANGE.start();
    let cheap = bcrypt::hash_with_salt(password, min_cost, salt)
        .expect("the minimum cost is always accepted")
        .format_for_version(bcrypt::Version::TwoY);
    // "$2y$04$" is 7 bytes; the rest is salt and hash.
    format!("$2y${cost:02}${}", &cheap[7..])
}

/// Apache's MD5 (`$apr1$`): FreeBSD's MD5 crypt with the magic `$apr1$`,
/// returning the 22-character hash that follows `$apr1$salt$`. Only the
/// first 8 bytes of `salt` count, as in Apache.
fn apr1(password: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$apr1$";
    let salt = &salt[..salt.len().min(8)];

    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round % 2 == 1 {
            ctx.update(password);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round % 2 == 1 {
            ctx.update(digest);
        } else {
            ctx.update(password);
        }
        digest = ctx.finalize();
    }

    let d = digest;
    let mut out = String::with_capacity(22);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let v = (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]);
        push_crypt_b64(&mut out, v, 4);
    }
    push_crypt_b64(&mut out, u32::from(d[11]), 2);
    out
}

fn push_crypt_b64(out: &mut String, mut value: u32, chars: usize) {
    for _ in 0..chars {
        out.push(char::from(CRYPT_B64[(value & 0x3f) as usize]));
        value >>= 6;
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apr1_matches_known_vectors() {
        // From Apache's documentation and `openssl passwd -apr1 -salt`.
        assert_eq!(
            Hash::parse("$apr1$Yi0aGyL0$6Ys/QXCmqcsNcAg3JsZY/1")
                .unwrap()
                .scheme(),
            Scheme::Apr1
        );
        // `openssl passwd -apr1 -salt saltsalt password`
        assert_eq!(apr1(b"password", b"saltsalt"), "yAAkm4libquA.ZWLHbSBq/");
        // Only 8 salt bytes count.
        assert_eq!(
            apr1(b"password", b"saltsaltEXTRA"),
            apr1(b"password", b"saltsalt")
        );
    }

    #[test]
    fn dummies_never_match_and_parse_back() {
        for (scheme, cost) in [
            (Scheme::Bcrypt, 5),
            (Scheme::Sha256Crypt, 1000),
            (Scheme::Sha512Crypt, 1000),
            (Scheme::Apr1, 1000),
        ] {
            let d = Hash::dummy(scheme, cost);
            assert_eq!((d.scheme(), d.cost()), (scheme, cost));
            if matches!(scheme, Scheme::Bcrypt | Scheme::Apr1) {
                let parsed = Hash::parse(d.as_str()).unwrap();
                assert_eq!((parsed.scheme(), parsed.cost()), (scheme, cost));
            }
            assert!(!d.verify(""));
            assert!(!d.verify("password"));
        }
    }

    #[test]
    fn making_a_dummy_does_no_hashing_work() {
        // Verifying it would take minutes; making it must not.
        let d = Hash::dummy(Scheme::Sha512Crypt, 999_999_999);
        assert_eq!(d.cost(), 999_999_999);
        assert!(d.as_str().is_empty());
    }

    #[test]
    fn sha_crypt_rounds_are_read_and_checked() {
        let h =
            sha_crypt::sha512_simple("pw", &sha_crypt::Sha512Params::new(1234).unwrap()).unwrap();
        let parsed = Hash::parse(&h).unwrap();
        assert_eq!(parsed.cost(), 1234);
        assert!(parsed.verify("pw") && !parsed.verify("pW"));

        let salt_hash = "saltsalt$".to_owned() + &"a".repeat(86);
        for (text, needle) in [
            (format!("$6$rounds=999${salt_hash}"), "rounds=999"),
            (format!("$6$rounds=x${salt_hash}"), "not a number"),
            ("$6$saltonly".to_owned(), "salt$hash"),
            ("$6$salt$short".to_owned(), "86"),
            ("$5$salt$".to_owned() + &"!".repeat(43), "outside"),
        ] {
            let err = Hash::parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn refused_schemes_are_named() {
        for (text, needle) in [
            ("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
            ("rqXexS6ZhobKA", "DES"),
            ("plaintext", "plain text"),
            ("$1$salt$abc", "MD5 crypt"),
            ("$2x$05$abc", "$2x$"),
            ("$9$what", "unknown"),
        ] {
            let err = Hash::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains("refuses"), "{err}");
        }
        assert_eq!(Hash::parse("").unwrap_err(), Unusable::Empty);
        let err = Hash::parse("$2y$03$abc").unwrap_err().to_string();
        assert!(err.contains("malformed bcrypt"), "{err}");
    }
}
