//! Registry access tokens: signing keys, JWT issue and verify, JWKS.
//!
//! This module implements the token half of the Docker token authentication
//! spec: a token service signs a JWT whose `access` claim lists what the
//! bearer may do, and a registry verifies it. Both halves must interoperate
//! with CNCF distribution (`registry:2`, 2.8 and 3.x), so that registry:2 can
//! verify tokens that portcullis issues and portcullis can verify tokens from
//! an issuer configured the way distribution configures one.
//!
//! - [`SigningKey`]: a private key and its self-signed certificate
//!   ([`SigningKey::generate`], [`SigningKey::load_pem`]).
//! - [`KeySet`]: the signing key plus verify-only keys (previous keys during a
//!   rotation); publishes [`KeySet::jwks`] and [`KeySet::bundle_pem`].
//! - [`issue`] signs [`Claims`]; [`Verifier::verify`] checks a token.
//! - [`decode_unverified`] reads a token without checking it, for `doctor`.
//!
//! # What distribution does, and what portcullis does for it
//!
//! Found by reading distribution's `registry/auth/token` (2.8 and 3.x), libtrust
//! and the Debian `docker-registry` 2.8.2 binary:
//!
//! - **2.8** parses the JWT itself. Its `aud` claim is a plain Go `string`, so a
//!   token whose `aud` is a JSON array fails to parse ("malformed token").
//!   portcullis therefore serializes a single audience as a string
//!   ([`Audience`]). 3.x accepts a string or an array.
//! - Both check `iss` (must equal `auth.token.issuer`), `aud` (must contain
//!   `auth.token.service`), `exp` and `nbf` with a fixed 60 s leeway. `nbf` and
//!   `exp` default to 0 when absent, so `exp` is effectively required and
//!   `nbf` is not; `iat` and `jti` are never checked. portcullis always writes
//!   `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti` and `access`.
//! - `access` is a list of `{"type","name","actions"}`; 3.x also reads an
//!   optional `class`, which portcullis neither writes nor keeps.
//! - Key selection, in order: `x5c` (the chain must verify with Go's
//!   `x509.Certificate.Verify` against the `rootcertbundle` pool, with
//!   `ExtKeyUsageAny`: a self-signed certificate that is itself in the bundle
//!   passes as a one-element chain; Go checks every certificate's validity
//!   period, requires intermediates to be CAs, and does not look at key usage
//!   for this); then an embedded `jwk` (trusted only if it is a trusted key);
//!   then `kid`, looked up among trusted keys. 2.8 keys the bundle's
//!   certificates by libtrust key ID ([`libtrust_kid`]); 3.x keys them by a
//!   JWK thumbprint and keys `auth.token.jwks` entries by their `kid`.
//! - 2.8 verifies with libtrust, which knows ECDSA (ES256/384/512) and RSA
//!   (RS256/384/512) keys only: **EdDSA tokens cannot be verified by 2.8**,
//!   and 2.8 refuses to start ("public key type ed25519.PublicKey is not
//!   supported") when `rootcertbundle` holds an Ed25519 certificate. 3.x
//!   (go-jose) accepts EdDSA.
//! - 3.x with only `auth.token.jwks` (no `rootcertbundle`) rejects any token
//!   that carries `x5c`, because the chain is checked against an empty pool
//!   before `kid` is considered. For that setup issue tokens with
//!   [`IssueOptions::include_x5c`] set to false.
//! - 3.x's thumbprint for bundle certificates hashes the curve's generator
//!   point instead of the key for EC keys (so every P-256 key gets the same
//!   ID) and misspells `OKP` for Ed25519. portcullis's own tokens never depend
//!   on it (they carry `x5c`), and its verifier also accepts that value as a
//!   `kid`, trying every trusted key it names.
//!
//! portcullis's tokens carry `alg`, `typ: "JWT"`, `kid` (libtrust format) and
//! `x5c` (the certificate chain, standard base64 DER), which both versions
//! accept with `rootcertbundle` set to [`KeySet::bundle_pem`]. Checked by hand
//! against Debian's `docker-registry` 2.8.2: ES256 and RS256 tokens from
//! [`SigningKey::generate`] are accepted both with `x5c` and with `kid` only;
//! EdDSA tokens are refused. (The end-to-end tests exercise this.)
//!
//! # Verification rules (fail closed)
//!
//! See [`Verifier::verify`]. HMAC (`HS*`) and `none` are never verified,
//! whatever the configuration: an HMAC "secret" would be a public key.

mod claims;
mod jwks;
mod jwt;
mod keys;
mod kid;
mod pem_io;
mod public;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use claims::{
    Audience, Claims, ResourceAccess, UnverifiedClaims, UnverifiedHeader, UnverifiedToken,
};
pub use jwks::KeySet;
pub use jwt::{IssueOptions, decode_unverified, issue, issue_with};
pub use keys::{GENERATED_VALIDITY, RSA_BITS, SigningKey, VerifyKey};
pub use kid::{jwk_thumbprint, libtrust_kid};
pub use verify::{DEFAULT_LEEWAY, MAX_TOKEN_LEN, Verifier};

/// A JWS signature algorithm that portcullis signs and verifies with.
///
/// Only asymmetric algorithms exist here: HMAC and `none` cannot be
/// expressed, so they cannot be allowed by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256 (the default; what distribution's docs use).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519. distribution 2.8 cannot verify it; 3.x can.
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm, the default allow-list of a [`Verifier`].
    pub const ALL: [Self; 3] = [Self::Es256, Self::Rs256, Self::EdDsa];

    /// The JOSE name (`"ES256"`, `"RS256"`, `"EdDSA"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(crate) const fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = TokenError;

    /// Parses a JOSE algorithm name. Names are case-sensitive, as in RFC 7518.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Self::Es256),
            "RS256" => Ok(Self::Rs256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(TokenError::UnsupportedAlgorithm(truncate(other, 32))),
        }
    }
}

/// Why a token or key was rejected.
///
/// Messages never contain the token or key material. `Key` errors name the
/// file involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not a well-formed compact JWS/JWT (bad base64, bad JSON,
    /// missing or mistyped claims, ...).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token is longer than [`MAX_TOKEN_LEN`] bytes.
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    /// `alg` is `none`, HMAC, or not in the verifier's allow-list.
    #[error("unsupported or disallowed token algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No trusted key matches the token's `kid` (or the token names no key).
    #[error("token is signed by an unknown key")]
    UnknownKey,
    /// The token's `x5c` certificate chain does not lead to a trusted
    /// certificate, or a certificate in it is outside its validity period.
    #[error("token certificate chain is not trusted")]
    UntrustedChain,
    /// The signature does not verify with the selected key (or the key's
    /// type does not match `alg`).
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("token was issued by an untrusted issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience (service).
    #[error("token is intended for another audience")]
    WrongAudience,
    /// A key or certificate could not be generated, read, parsed or written.
    #[error("{0}")]
    Key(String),
}

/// Shortens untrusted text before it goes into an error message.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
