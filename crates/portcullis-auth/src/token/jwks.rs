//! Key sets: the signing key plus verify-only keys, published as a JWKS
//! (`auth.token.jwks` in distribution 3.x) or a PEM bundle
//! (`auth.token.rootcertbundle`), and JWKS parsing for verifiers.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use tracing::warn;

use super::keys::{SigningKey, VerifyKey, parse_cert};
use super::public::PublicKey;
use super::{TokenError, Verifier};

/// The key that signs new tokens, plus keys whose tokens are still accepted
/// (for example the previous signing key during a rotation).
#[derive(Debug, Clone)]
pub struct KeySet {
    signing: SigningKey,
    verify_only: Vec<VerifyKey>,
}

impl KeySet {
    /// A key set. `verify_only` may be empty.
    #[must_use]
    pub const fn new(signing: SigningKey, verify_only: Vec<VerifyKey>) -> Self {
        Self {
            signing,
            verify_only,
        }
    }

    /// The key that signs new tokens.
    #[must_use]
    pub const fn signing(&self) -> &SigningKey {
        &self.signing
    }

    /// The verify-only keys.
    #[must_use]
    pub fn verify_only(&self) -> &[VerifyKey] {
        &self.verify_only
    }

    /// Every public key of the set, signing key first, without duplicates:
    /// what a [`Verifier`] for this set's tokens trusts.
    #[must_use]
    pub fn verify_keys(&self) -> Vec<VerifyKey> {
        let mut keys = vec![self.signing.verify_key()];
        for key in &self.verify_only {
            if !keys
                .iter()
                .any(|k| k.public == key.public && k.cert_der == key.cert_der)
            {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// The public keys as a JWKS: `{"keys":[{kty, crv/x/y | n/e | crv/x, kid,
    /// alg, use: "sig", x5c}]}`. `x5c` is present for keys with a
    /// certificate (the signing key's whole chain).
    #[must_use]
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .verify_keys()
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let chain: Vec<&[u8]> = if i == 0 {
                    self.signing.chain_der().iter().map(Vec::as_slice).collect()
                } else {
                    key.cert_der().into_iter().collect()
                };
                jwk_of(key, &chain)
            })
            .collect();
        json!({ "keys": keys })
    }

    /// The certificates of every key that has one, as concatenated PEM: the
    /// file distribution's `auth.token.rootcertbundle` names.
    ///
    /// distribution 2.8 refuses to start if this bundle holds an Ed25519
    /// certificate; give 2.8 a key set without EdDSA keys.
    #[must_use]
    pub fn bundle_pem(&self) -> String {
        self.verify_keys()
            .iter()
            .filter_map(VerifyKey::cert_pem)
            .collect()
    }
}

fn jwk_of(key: &VerifyKey, chain: &[&[u8]]) -> Value {
    let mut members = key.public.jwk_members();
    members.insert("kid".into(), key.kid().into());
    members.insert("alg".into(), key.algorithm().as_str().into());
    members.insert("use".into(), "sig".into());
    if !chain.is_empty() {
        let x5c: Vec<Value> = chain.iter().map(|d| STANDARD.encode(d).into()).collect();
        members.insert("x5c".into(), Value::Array(x5c));
    }
    Value::Object(members)
}

impl Verifier {
    /// The signature keys of a JWKS document (`{"keys":[...]}`).
    ///
    /// Keys that are not for us are skipped with a warning: `use` other than
    /// `sig`, key types other than EC P-256, RSA and Ed25519 (including
    /// symmetric `oct` keys, which are never trusted), and an `alg` other
    /// than the key type's one. A key without `kid` gets its RFC 7638
    /// thumbprint. Private members are ignored. If a key has `x5c`, its
    /// first certificate must hold the same key.
    ///
    /// # Errors
    /// [`TokenError::Key`] if the document is not a JWKS, a key is broken
    /// (bad base64, wrong lengths, `x5c` that does not match), or no usable
    /// key remains.
    pub fn from_jwks_json(json: &str) -> Result<Vec<VerifyKey>, TokenError> {
        let doc: Value = serde_json::from_str(json)
            .map_err(|e| TokenError::Key(format!("JWKS is not valid JSON: {e}")))?;
        let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
            return Err(TokenError::Key(
                "JWKS has no \"keys\" array (expected {\"keys\": [...]})".into(),
            ));
        };
        let mut keys = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let n = i + 1;
            let Some(obj) = entry.as_object() else {
                return Err(TokenError::Key(format!("JWKS key {n} is not an object")));
            };
            match verify_key_from_jwk(obj) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(m) => return Err(TokenError::Key(format!("JWKS key {n}: {m}"))),
            }
        }
        if keys.is_empty() {
            return Err(TokenError::Key(
                "JWKS holds no usable signature key (ES256 on P-256, RS256 or EdDSA)".into(),
            ));
        }
        Ok(keys)
    }
}

/// One JWK: `Ok(None)` when it is not a key portcullis verifies with.
fn verify_key_from_jwk(obj: &Map<String, Value>) -> Result<Option<VerifyKey>, String> {
    let kid = obj.get("kid").and_then(Value::as_str).unwrap_or("");
    let skip = |why: &str| {
        warn!(kid, "JWKS key skipped: {why}");
        Ok(None)
    };
    if let Some(use_) = obj.get("use")
        && use_ != "sig"
    {
        return skip("\"use\" is not \"sig\"");
    }
    let kty = obj.get("kty").and_then(Value::as_str).unwrap_or("");
    let crv = obj.get("crv").and_then(Value::as_str).unwrap_or("");
    let supported = matches!(
        (kty, crv),
        ("EC", "P-256") | ("RSA", _) | ("OKP", "Ed25519")
    );
    if !supported {
        return skip(&format!(
            "key type {kty:?} {crv:?} is not supported (only EC P-256, RSA and OKP Ed25519)"
        ));
    }
    let public = public_from_jwk(obj)?;
    if let Some(alg) = obj.get("alg").and_then(Value::as_str)
        && alg != public.algorithm().as_str()
    {
        return skip(&format!("algorithm {alg:?} is not supported"));
    }
    if ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .any(|m| obj.contains_key(*m))
    {
        warn!(
            kid,
            "JWKS key contains private key material; only its public part is used"
        );
    }
    let cert_der = match obj.get("x5c") {
        None | Some(Value::Null) => None,
        Some(Value::Array(chain)) if !chain.is_empty() => {
            let der = chain[0]
                .as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or("x5c[0] is not standard base64")?;
            let cert = parse_cert(&der).map_err(|m| format!("x5c[0]: {m}"))?;
            let cert_key =
                PublicKey::from_spki(cert.public_key()).map_err(|m| format!("x5c[0]: {m}"))?;
            if cert_key != public {
                return Err("the x5c certificate holds a different key than the JWK".into());
            }
            Some(der)
        }
        Some(_) => return Err("x5c must be a non-empty array of strings".into()),
    };
    let kid = if kid.is_empty() {
        public.thumbprint()
    } else {
        kid.to_owned()
    };
    Ok(Some(VerifyKey {
        public,
        kid,
        cert_der,
    }))
}

/// The public key of a JWK (`kty` EC P-256, RSA or OKP Ed25519).
pub(crate) fn public_from_jwk(obj: &Map<String, Value>) -> Result<PublicKey, String> {
    let member = |name: &str| -> Result<Vec<u8>, String> {
        let text = obj
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("member {name:?} is missing"))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("member {name:?} is not base64url"))
    };
    let kty = obj.get("kty").and_then(Value::as_str).unwrap_or("");
    let crv = obj.get("crv").and_then(Value::as_str).unwrap_or("");
    match (kty, crv) {
        ("EC", "P-256") => {
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes each".into());
            }
            let mut point = vec![4];
            point.extend(x);
            point.extend(y);
            PublicKey::p256_from_point(&point)
        }
        ("RSA", _) => PublicKey::rsa_from_components(&member("n")?, &member("e")?),
        ("OKP", "Ed25519") => PublicKey::ed25519_from_bytes(&member("x")?),
        _ => Err(format!("unsupported key type {kty:?} {crv:?}")),
    }
}
