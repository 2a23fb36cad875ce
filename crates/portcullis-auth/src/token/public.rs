//! Public keys of the three supported types: parsing from certificates and
//! JWKs, canonical DER, JWK members, thumbprints, and signature checks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::Algorithm;
use super::kid::{P256_GX, P256_GY, libtrust_kid, thumbprint_of_canonical_json};

/// Smallest RSA modulus accepted, in bits (ring refuses smaller ones anyway).
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// A public key that can verify one [`Algorithm`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Uncompressed SEC1 point: `04 || x || y`, 65 bytes.
    P256(Vec<u8>),
    /// Big-endian modulus and exponent, without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The 32-byte Ed25519 public key.
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.algorithm(),
            self.libtrust_kid()
        )
    }
}

impl PublicKey {
    /// Reads a certificate's `SubjectPublicKeyInfo`. Errors say why the key
    /// is unusable, in words for an operator.
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, String> {
        let bits: &[u8] = &spki.subject_public_key.data;
        let oid = &spki.algorithm.algorithm;
        if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            if curve.as_ref() != Some(&OID_EC_P256) {
                return Err("EC key is not on P-256; only P-256 (ES256) is supported".into());
            }
            return Self::p256_from_point(bits);
        }
        if *oid == OID_PKCS1_RSAENCRYPTION {
            let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err("RSA public key cannot be parsed".into());
            };
            return Self::rsa_from_components(rsa.modulus, rsa.exponent);
        }
        if *oid == OID_SIG_ED25519 {
            return Self::ed25519_from_bytes(bits);
        }
        Err(format!(
            "unsupported key type (OID {oid}); use an ECDSA P-256, RSA or Ed25519 key"
        ))
    }

    pub(crate) fn p256_from_point(point: &[u8]) -> Result<Self, String> {
        if point.len() != 65 || point[0] != 4 {
            return Err("P-256 public key is not an uncompressed point".into());
        }
        Ok(Self::P256(point.to_vec()))
    }

    pub(crate) fn rsa_from_components(n: &[u8], e: &[u8]) -> Result<Self, String> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
            ));
        }
        if e.is_empty() || e.len() > 4 {
            return Err("RSA public exponent is out of range".into());
        }
        Ok(Self::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    pub(crate) fn ed25519_from_bytes(x: &[u8]) -> Result<Self, String> {
        if x.len() != 32 {
            return Err("Ed25519 public key is not 32 bytes".into());
        }
        Ok(Self::Ed25519(x.to_vec()))
    }

    /// The one algorithm this key verifies.
    pub(crate) const fn algorithm(&self) -> Algorithm {
        match self {
            Self::P256(_) => Algorithm::Es256,
            Self::Rsa { .. } => Algorithm::Rs256,
            Self::Ed25519(_) => Algorithm::EdDsa,
        }
    }

    /// The canonical DER `SubjectPublicKeyInfo`, byte for byte what Go's
    /// `x509.MarshalPKIXPublicKey` produces (which libtrust hashes).
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        match self {
            Self::P256(point) => {
                // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING }
                let mut out = vec![
                    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
                ];
                out.extend_from_slice(point);
                out
            }
            Self::Ed25519(x) => {
                // SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING }
                let mut out = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                out.extend_from_slice(x);
                out
            }
            Self::Rsa { .. } => {
                // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { RSAPublicKey } }
                let alg_id = [
                    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
                    0x05, 0x00,
                ];
                let mut bit_string = vec![0x00];
                bit_string.extend(self.rsa_public_key_der());
                let mut body = alg_id.to_vec();
                body.extend(der_tlv(0x03, &bit_string));
                der_tlv(0x30, &body)
            }
        }
    }

    /// PKCS#1 `RSAPublicKey` DER (empty for other key types).
    pub(crate) fn rsa_public_key_der(&self) -> Vec<u8> {
        let Self::Rsa { n, e } = self else {
            return Vec::new();
        };
        let mut body = der_uint(n);
        body.extend(der_uint(e));
        der_tlv(0x30, &body)
    }

    /// The libtrust key ID (see [`libtrust_kid`]).
    pub(crate) fn libtrust_kid(&self) -> String {
        libtrust_kid(&self.spki_der())
    }

    /// The RFC 7638 thumbprint.
    pub(crate) fn thumbprint(&self) -> String {
        thumbprint_of_canonical_json(&self.canonical_jwk(false))
    }

    /// What distribution 3.x computes as the "thumbprint" of a bundle
    /// certificate's key (see the module docs), when it differs from the
    /// RFC 7638 one.
    pub(crate) fn distribution3_thumbprint(&self) -> Option<String> {
        match self {
            Self::Rsa { .. } => None,
            _ => Some(thumbprint_of_canonical_json(&self.canonical_jwk(true))),
        }
    }

    fn canonical_jwk(&self, distribution3: bool) -> String {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            Self::P256(point) => {
                let (x, y) = if distribution3 {
                    (&P256_GX[..], &P256_GY[..])
                } else {
                    (&point[1..33], &point[33..])
                };
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                )
            }
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Self::Ed25519(x) => {
                let kty = if distribution3 { "OTP" } else { "OKP" };
                format!(r#"{{"crv":"Ed25519","kty":"{kty}","x":"{}"}}"#, b64(x))
            }
        }
    }

    /// The public members of this key's JWK (`kty`, `crv`, `x`, `y`, `n`, `e`).
    pub(crate) fn jwk_members(&self) -> Map<String, Value> {
        let b64 = |b: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(b));
        let mut m = Map::new();
        match self {
            Self::P256(point) => {
                m.insert("kty".into(), "EC".into());
                m.insert("crv".into(), "P-256".into());
                m.insert("x".into(), b64(&point[1..33]));
                m.insert("y".into(), b64(&point[33..]));
            }
            Self::Rsa { n, e } => {
                m.insert("kty".into(), "RSA".into());
                m.insert("n".into(), b64(n));
                m.insert("e".into(), b64(e));
            }
            Self::Ed25519(x) => {
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), "Ed25519".into());
                m.insert("x".into(), b64(x));
            }
        }
        m
    }

    /// Checks a JWS signature (`signature_b64` is the third part of the
    /// token, `signing_input` the first two joined by `.`). The caller has
    /// already checked that `alg` is this key's algorithm.
    pub(crate) fn verify(&self, alg: Algorithm, signing_input: &[u8], signature_b64: &str) -> bool {
        if alg != self.algorithm() {
            return false;
        }
        let key = match self {
            Self::P256(point) => DecodingKey::from_ec_der(point),
            Self::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            Self::Ed25519(x) => DecodingKey::from_ed_der(x),
        };
        jsonwebtoken::crypto::verify(signature_b64, signing_input, &key, alg.jwt()).unwrap_or(false)
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// DER tag-length-value.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or_default());
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap_or_default());
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// DER INTEGER for a non-negative big-endian magnitude without leading zeros.
fn der_uint(magnitude: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    der_tlv(0x02, &content)
}
