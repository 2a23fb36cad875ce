//! JWTs made by hand for token tests: claims, signing keys the test holds
//! (with their PEM files and `x5c` chains), HS256 tokens (hostile ones
//! included), decoding a token's parts, and the clock they are checked
//! against. `token` re-exports all of it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_auth::token::{Algorithm, Audience, Claims, ResourceAccess, SigningKey};
use serde_json::Value;
use tempfile::TempDir;

use super::temp_dir;

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Sleeps until the clock reads at least `unix_secs` seconds.
pub fn sleep_until(unix_secs: u64) {
    let target = UNIX_EPOCH + Duration::from_secs(unix_secs);
    if let Ok(wait) = target.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
}

/// `{"type":"repository","name":NAME,"actions":ACTIONS}`.
pub fn repository(name: &str, actions: &[&str]) -> ResourceAccess {
    ResourceAccess {
        kind: "repository".to_owned(),
        name: name.to_owned(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
    }
}

/// Claims from `iss` for `aud` about `sub`, valid from a minute ago for
/// `lifetime`, granting `access`.
pub fn claims(
    iss: &str,
    aud: &str,
    sub: &str,
    access: Vec<ResourceAccess>,
    lifetime: u64,
) -> Claims {
    let now = now_secs();
    Claims {
        iss: iss.to_owned(),
        sub: sub.to_owned(),
        aud: Audience::one(aud),
        exp: now + lifetime,
        nbf: now - 60,
        iat: now,
        jti: format!("test-{}", hex::encode(super::random_bytes(8))),
        access,
    }
}

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Part `index` (0 header, 1 claims) of a JWT, decoded as JSON.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("token has no part {index}: {token}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("token part {index} is not base64url ({e})"));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("token part {index} is not JSON ({e})"))
}

/// A signing key that the test holds, with its PEM files on disk (for
/// `keys.signing`, `rootcertbundle`) and its private key at hand, so that
/// the test can sign headers of its own making.
pub struct TestKey {
    pub key: SigningKey,
    pub key_path: PathBuf,
    pub cert_path: PathBuf,
    pkcs8: Vec<u8>,
    _dir: TempDir,
}

impl TestKey {
    /// A new ES256 key with a self-signed certificate for `common_name`.
    pub fn generate(common_name: &str) -> Self {
        let key = SigningKey::generate(Algorithm::Es256, common_name).expect("generate key");
        let dir = temp_dir();
        let key_path = dir.path().join("signing.key");
        let cert_path = dir.path().join("signing.crt");
        key.write_pem(&key_path, &cert_path).expect("write key PEM");
        let pem = std::fs::read_to_string(&key_path).expect("read key PEM");
        let b64: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let pkcs8 = STANDARD.decode(b64.trim()).expect("key PEM is base64");
        Self {
            key,
            key_path,
            cert_path,
            pkcs8,
            _dir: dir,
        }
    }

    /// The certificate (PEM), a `rootcertbundle` that trusts this key.
    pub fn cert_pem(&self) -> String {
        self.key.cert_pem()
    }

    /// `x5c`: the certificate chain, standard base64 DER.
    pub fn x5c(&self) -> Vec<String> {
        self.key
            .chain_der()
            .iter()
            .map(|d| STANDARD.encode(d))
            .collect()
    }

    /// Its libtrust key ID.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// A token signed the way portcullis signs (`x5c` and `kid`).
    pub fn issue(&self, claims: &Claims) -> String {
        portcullis_auth::token::issue(&self.key, claims).expect("sign token")
    }

    /// `header.payload` as given, signed ES256 by this key, whatever the
    /// header says.
    pub fn sign_raw(&self, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(payload.to_string().as_bytes())
        );
        let key = jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8);
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::ES256)
                .expect("ES256 signature");
        format!("{input}.{signature}")
    }
}

/// `header.payload` signed HS256 with `secret`.
pub fn sign_hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .expect("HS256 signature");
    format!("{input}.{signature}")
}
