//! Compact JWS: signing tokens, and splitting and decoding them (strictly)
//! before verification.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use tracing::instrument;

use super::claims::{Claims, UnverifiedClaims, UnverifiedHeader, UnverifiedToken};
use super::keys::SigningKey;
use super::verify::MAX_TOKEN_LEN;
use super::{Algorithm, TokenError};

/// How the JWS header is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueOptions {
    /// Put the certificate chain in `x5c` (the default). Turn it off only for
    /// distribution 3.x configured with `auth.token.jwks` and no
    /// `rootcertbundle`, which rejects any token that carries `x5c`.
    pub include_x5c: bool,
}

impl Default for IssueOptions {
    fn default() -> Self {
        Self { include_x5c: true }
    }
}

/// Signs `claims` with `key`. The header holds `alg`, `typ: "JWT"`, `kid`
/// (libtrust format) and `x5c` (the certificate chain, standard base64 DER).
///
/// # Errors
/// [`TokenError::Key`] if signing fails (which means the key is broken).
#[instrument(skip_all)]
pub fn issue(key: &SigningKey, claims: &Claims) -> Result<String, TokenError> {
    issue_with(key, claims, IssueOptions::default())
}

/// [`issue`] with explicit [`IssueOptions`].
///
/// # Errors
/// [`TokenError::Key`] if signing fails (which means the key is broken).
#[instrument(skip_all)]
pub fn issue_with(
    key: &SigningKey,
    claims: &Claims,
    options: IssueOptions,
) -> Result<String, TokenError> {
    let alg = key.algorithm();
    let mut header = Header::new(alg.jwt());
    header.typ = Some("JWT".to_owned());
    header.kid = Some(key.kid().to_owned());
    if options.include_x5c {
        header.x5c = Some(key.chain_der().iter().map(|d| STANDARD.encode(d)).collect());
    }
    let encoding_key = match alg {
        Algorithm::Es256 => EncodingKey::from_ec_der(key.jws_der()),
        Algorithm::Rs256 => EncodingKey::from_rsa_der(key.jws_der()),
        Algorithm::EdDsa => EncodingKey::from_ed_der(key.jws_der()),
    };
    jsonwebtoken::encode(&header, claims, &encoding_key)
        .map_err(|e| TokenError::Key(format!("cannot sign token with key {}: {e}", key.kid())))
}

/// A token split into its three parts, each base64url-decoded.
pub(crate) struct RawToken<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    /// The third part, still base64url (what `jsonwebtoken` verifies).
    pub(crate) signature_b64: &'a str,
    pub(crate) header_json: Vec<u8>,
    pub(crate) payload_json: Vec<u8>,
}

impl<'a> RawToken<'a> {
    /// Checks size and shape and decodes the three parts. Decoding is strict:
    /// base64url without padding, canonical trailing bits.
    pub(crate) fn split(token: &'a str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "a token has three parts separated by '.'".into(),
            ));
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed(format!("the {what} is not valid base64url")))
        };
        let header_json = decode(header, "header")?;
        let payload_json = decode(payload, "payload")?;
        // Decoded only to validate it; jsonwebtoken decodes it again. An
        // empty signature passes here so that `alg: none` is reported as
        // such; it can never verify.
        decode(signature, "signature")?;
        Ok(Self {
            signing_input: &token[..header.len() + 1 + payload.len()],
            signature_b64: signature,
            header_json,
            payload_json,
        })
    }

    pub(crate) fn header(&self) -> Result<UnverifiedHeader, TokenError> {
        serde_json::from_slice(&self.header_json)
            .map_err(|e| TokenError::Malformed(format!("header: {}", json_reason(&e))))
    }
}

/// Reads a token's header and claims WITHOUT verifying anything, for
/// diagnostics. Never use the result to make an access decision.
///
/// A token with an empty signature part (`header.payload.`, as `alg: none`
/// tokens have) is accepted here, so that `doctor` can describe it.
///
/// # Errors
/// [`TokenError::TooLarge`] or [`TokenError::Malformed`].
pub fn decode_unverified(token: &str) -> Result<UnverifiedToken, TokenError> {
    let raw = RawToken::split(token)?;
    let header = raw.header()?;
    let claims: UnverifiedClaims = serde_json::from_slice(&raw.payload_json)
        .map_err(|e| TokenError::Malformed(format!("claims: {}", json_reason(&e))))?;
    Ok(UnverifiedToken { header, claims })
}

/// Parses verified claims.
pub(crate) fn parse_claims(payload_json: &[u8]) -> Result<Claims, TokenError> {
    serde_json::from_slice(payload_json)
        .map_err(|e| TokenError::Malformed(format!("claims: {}", json_reason(&e))))
}

/// A JSON error's message without the input it quotes (serde_json includes
/// fragments of values, which come from the token).
fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => "not valid JSON".into(),
        Category::Data => {
            let msg = e.to_string();
            // Field names in these messages are ours, not the token's.
            let ours = ["missing field `", "duplicate field `", "aud must be"];
            if ours.iter().any(|p| msg.starts_with(p)) {
                super::truncate(msg.split(" at line ").next().unwrap_or_default(), 80)
            } else {
                "a member has the wrong type or value".into()
            }
        }
    }
}
