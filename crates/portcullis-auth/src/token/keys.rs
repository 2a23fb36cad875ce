//! Signing keys (private key plus certificate chain) and verify-only public
//! keys: generation, PEM files, and the checks that a key matches its
//! certificate.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, KeyUsagePurpose, SerialNumber};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretSlice};
use tracing::instrument;
use x509_parser::certificate::X509Certificate;

use super::pem_io::{certs_from_pem, pem_encode, private_key_from_pem, write_atomic};
use super::public::PublicKey;
use super::{Algorithm, TokenError};

/// RSA modulus size for [`SigningKey::generate`].
pub const RSA_BITS: usize = 3072;

/// Validity of a generated certificate: ten years.
pub const GENERATED_VALIDITY: Duration = Duration::from_secs(3653 * 24 * 60 * 60);

/// How far before "now" a generated certificate's validity starts, so that
/// a verifier whose clock is a little behind accepts it at once.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Longest certificate chain read from a certificate file or a token.
pub(crate) const MAX_CHAIN_LEN: usize = 5;

/// A private key with its certificate, used to sign tokens.
///
/// The private key is held in a [`SecretSlice`], and `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    public: PublicKey,
    /// DER certificates: the leaf (whose key this is) first, then any
    /// intermediates, as they go into the `x5c` header.
    chain: Vec<Vec<u8>>,
    not_after: SystemTime,
    /// PKCS#8 DER, as written to the key file.
    pkcs8: SecretSlice<u8>,
    /// The DER that `jsonwebtoken` signs with: PKCS#8 for ECDSA and Ed25519,
    /// PKCS#1 for RSA.
    jws_der: SecretSlice<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("not_after", &self.not_after)
            .field("private_key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// Why [`SigningKey::from_parts`] failed, so callers can name the right file.
#[derive(Debug)]
pub(crate) enum PartsError {
    Cert(String),
    Key(String),
    Mismatch,
}

impl SigningKey {
    /// Generates a key for `alg` (RSA keys have [`RSA_BITS`] bits) and a
    /// self-signed certificate for it with subject `CN=common_name`, valid
    /// from an hour ago for ten years.
    ///
    /// # Errors
    /// [`TokenError::Key`] if key or certificate generation fails.
    #[instrument(skip_all, fields(alg = %alg))]
    pub fn generate(alg: Algorithm, common_name: &str) -> Result<Self, TokenError> {
        let now = SystemTime::now();
        let not_before = now.checked_sub(BACKDATE).unwrap_or(now);
        Self::generate_valid_between(alg, common_name, not_before, now + GENERATED_VALIDITY)
    }

    /// Like [`SigningKey::generate`] with [`Algorithm::Rs256`], with a chosen
    /// modulus size (2048, 3072 or 4096 bits).
    ///
    /// # Errors
    /// [`TokenError::Key`] for another size, or if generation fails.
    #[instrument(skip_all)]
    pub fn generate_rsa(common_name: &str, bits: usize) -> Result<Self, TokenError> {
        if ![2048, 3072, 4096].contains(&bits) {
            return Err(TokenError::Key(format!(
                "RSA keys must have 2048, 3072 or 4096 bits, not {bits}"
            )));
        }
        let now = SystemTime::now();
        let not_before = now.checked_sub(BACKDATE).unwrap_or(now);
        let key_pair = generate_rsa_key_pair(bits)?;
        Self::self_signed(&key_pair, common_name, not_before, now + GENERATED_VALIDITY)
    }

    /// Like [`SigningKey::generate`], with an explicit validity period.
    ///
    /// # Errors
    /// [`TokenError::Key`] if key or certificate generation fails.
    #[instrument(skip_all, fields(alg = %alg))]
    pub fn generate_valid_between(
        alg: Algorithm,
        common_name: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Self, TokenError> {
        let key_pair = match alg {
            Algorithm::Rs256 => generate_rsa_key_pair(RSA_BITS)?,
            Algorithm::Es256 => generate_key_pair(&rcgen::PKCS_ECDSA_P256_SHA256, alg)?,
            Algorithm::EdDsa => generate_key_pair(&rcgen::PKCS_ED25519, alg)?,
        };
        Self::self_signed(&key_pair, common_name, not_before, not_after)
    }

    pub(crate) fn self_signed(
        key_pair: &KeyPair,
        common_name: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Self, TokenError> {
        let params = certificate_params(common_name, not_before, not_after)?;
        let cert = params
            .self_signed(key_pair)
            .map_err(|e| TokenError::Key(format!("cannot create certificate: {e}")))?;
        let pkcs8 = key_pair.serialize_der();
        Self::from_parts(pkcs8, vec![cert.der().to_vec()]).map_err(|e| match e {
            PartsError::Cert(m) | PartsError::Key(m) => {
                TokenError::Key(format!("generated key is unusable: {m}"))
            }
            PartsError::Mismatch => TokenError::Key("generated key does not match".into()),
        })
    }

    /// Builds a key from PKCS#8 DER and a DER certificate chain (leaf first),
    /// checking that the private key belongs to the leaf certificate.
    pub(crate) fn from_parts(pkcs8: Vec<u8>, chain: Vec<Vec<u8>>) -> Result<Self, PartsError> {
        let pkcs8: SecretSlice<u8> = pkcs8.into();
        let Some(leaf_der) = chain.first() else {
            return Err(PartsError::Cert("no certificate found".into()));
        };
        if chain.len() > MAX_CHAIN_LEN {
            return Err(PartsError::Cert(format!(
                "more than {MAX_CHAIN_LEN} certificates in the chain"
            )));
        }
        for der in &chain[1..] {
            parse_cert(der).map_err(PartsError::Cert)?;
        }
        let leaf = parse_cert(leaf_der).map_err(PartsError::Cert)?;
        let public = PublicKey::from_spki(leaf.public_key()).map_err(PartsError::Cert)?;
        let not_after = system_time(leaf.validity().not_after.timestamp());

        let (private_public, jws_der) = inspect_private_key(pkcs8.expose_secret())?;
        if private_public != public {
            return Err(PartsError::Mismatch);
        }
        Ok(Self {
            alg: public.algorithm(),
            kid: public.libtrust_kid(),
            public,
            chain,
            not_after,
            pkcs8,
            jws_der,
        })
    }

    /// Reads a private key and its certificate from PEM files.
    ///
    /// The key file may hold a PKCS#8 key (`BEGIN PRIVATE KEY`, what
    /// [`SigningKey::write_pem`] and `openssl genpkey` write) or a PKCS#1 RSA
    /// key (`BEGIN RSA PRIVATE KEY`). The certificate file holds the
    /// certificate first, then optionally its intermediates (they are sent
    /// in `x5c`).
    ///
    /// # Errors
    /// [`TokenError::Key`], naming the file, if a file cannot be read or
    /// parsed, the key type is unsupported, or the key does not match the
    /// certificate.
    #[instrument(skip_all)]
    pub fn load_pem(key_path: &Path, cert_path: &Path) -> Result<Self, TokenError> {
        let key_name = key_path.display();
        let cert_name = cert_path.display();
        let key_text = Zeroizing::new(std::fs::read(key_path).map_err(|e| {
            TokenError::Key(format!("cannot read token signing key {key_name}: {e}"))
        })?);
        let cert_text = std::fs::read(cert_path).map_err(|e| {
            TokenError::Key(format!("cannot read token certificate {cert_name}: {e}"))
        })?;
        let pkcs8 = private_key_from_pem(&key_text)
            .map_err(|m| TokenError::Key(format!("token signing key {key_name}: {m}")))?;
        let chain = certs_from_pem(&cert_text)
            .map_err(|m| TokenError::Key(format!("token certificate {cert_name}: {m}")))?;
        Self::from_parts(pkcs8, chain).map_err(|e| {
            TokenError::Key(match e {
                PartsError::Cert(m) => format!("token certificate {cert_name}: {m}"),
                PartsError::Key(m) => format!("token signing key {key_name}: {m}"),
                PartsError::Mismatch => format!(
                    "token signing key {key_name} does not match the certificate {cert_name} \
                     (they are from different key pairs)"
                ),
            })
        })
    }

    /// Writes the private key (PKCS#8 PEM, mode 0600) and the certificate
    /// chain (PEM, mode 0644). Each file is replaced atomically: it is written
    /// to a temporary file in the same directory, synced, then renamed.
    ///
    /// # Errors
    /// [`TokenError::Key`], naming the file, if a file cannot be written.
    #[instrument(skip_all)]
    pub fn write_pem(&self, key_path: &Path, cert_path: &Path) -> Result<(), TokenError> {
        let key_pem = pem_encode("PRIVATE KEY", self.pkcs8.expose_secret());
        write_atomic(key_path, key_pem.as_bytes(), 0o600).map_err(|e| {
            TokenError::Key(format!(
                "cannot write token signing key {}: {e}",
                key_path.display()
            ))
        })?;
        write_atomic(cert_path, self.cert_pem().as_bytes(), 0o644).map_err(|e| {
            TokenError::Key(format!(
                "cannot write token certificate {}: {e}",
                cert_path.display()
            ))
        })
    }

    /// The key ID in libtrust format (what goes into the token's `kid`).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The certificate chain as PEM (the certificate, then intermediates).
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.chain
            .iter()
            .map(|der| pem_encode("CERTIFICATE", der).to_string())
            .collect()
    }

    /// The certificate's expiry. Tokens signed after it are rejected by
    /// verifiers that check `x5c`, distribution included.
    #[must_use]
    pub const fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The DER certificate chain, leaf first.
    #[must_use]
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The public half, for a [`super::Verifier`] or a [`super::KeySet`].
    #[must_use]
    pub fn verify_key(&self) -> VerifyKey {
        VerifyKey {
            public: self.public.clone(),
            kid: self.kid.clone(),
            cert_der: self.chain.first().cloned(),
        }
    }

    pub(crate) fn jws_der(&self) -> &[u8] {
        self.jws_der.expose_secret()
    }
}

/// A public key trusted to verify tokens, with its key ID and, when it came
/// from a certificate, the certificate.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    pub(crate) public: PublicKey,
    pub(crate) kid: String,
    pub(crate) cert_der: Option<Vec<u8>>,
}

impl VerifyKey {
    /// A key from a DER certificate. Its `kid` is the libtrust key ID.
    ///
    /// # Errors
    /// [`TokenError::Key`] if the certificate cannot be parsed or its key
    /// type is unsupported.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, TokenError> {
        let cert = parse_cert(der).map_err(TokenError::Key)?;
        let public = PublicKey::from_spki(cert.public_key()).map_err(TokenError::Key)?;
        Ok(Self {
            kid: public.libtrust_kid(),
            public,
            cert_der: Some(der.to_vec()),
        })
    }

    /// Every certificate in a PEM file (a single certificate or a bundle).
    ///
    /// # Errors
    /// [`TokenError::Key`], naming the file, if it cannot be read, holds no
    /// certificate, or a certificate is unusable.
    pub fn load_cert_pem(path: &Path) -> Result<Vec<Self>, TokenError> {
        let text = std::fs::read(path).map_err(|e| {
            TokenError::Key(format!(
                "cannot read certificate file {}: {e}",
                path.display()
            ))
        })?;
        certs_to_keys(&text).map_err(|m| TokenError::Key(format!("{}: {m}", path.display())))
    }

    /// The key ID: libtrust format for certificates, the JWK's `kid` (or its
    /// RFC 7638 thumbprint when it had none) for JWKS keys.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key verifies.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The DER certificate, if the key came with one.
    #[must_use]
    pub fn cert_der(&self) -> Option<&[u8]> {
        self.cert_der.as_deref()
    }

    /// The certificate as PEM, if the key came with one.
    #[must_use]
    pub fn cert_pem(&self) -> Option<String> {
        self.cert_der
            .as_deref()
            .map(|der| pem_encode("CERTIFICATE", der).to_string())
    }

    pub(crate) const fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Whether a token's `kid` names this key. Keys from certificates answer
    /// to their libtrust ID (distribution 2.8), RFC 7638 thumbprint, and
    /// distribution 3.x's thumbprint; JWKS keys to their `kid` only.
    pub(crate) fn answers_to(&self, kid: &str) -> bool {
        if kid == self.kid {
            return true;
        }
        self.cert_der.is_some()
            && (kid == self.public.libtrust_kid()
                || kid == self.public.thumbprint()
                || self.public.distribution3_thumbprint().as_deref() == Some(kid))
    }
}

/// Parses every `CERTIFICATE` block of a PEM text into a [`VerifyKey`].
pub(crate) fn certs_to_keys(text: &[u8]) -> Result<Vec<VerifyKey>, String> {
    let ders = certs_from_pem(text)?;
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            VerifyKey::from_cert_der(der).map_err(|e| format!("certificate {}: {e}", i + 1))
        })
        .collect()
}

/// Parses one DER certificate, rejecting trailing bytes.
pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing data after the certificate".into()),
        Err(e) => Err(format!("not a valid X.509 certificate: {e}")),
    }
}

/// Seconds since the epoch to `SystemTime` (times before 1970 clamp to it).
pub(crate) fn system_time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// Identifies a PKCS#8 private key, returning its public key and the DER
/// that `jsonwebtoken` signs with.
fn inspect_private_key(pkcs8: &[u8]) -> Result<(PublicKey, SecretSlice<u8>), PartsError> {
    if let Ok(kp) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8) {
        let public =
            PublicKey::ed25519_from_bytes(kp.public_key().as_ref()).map_err(PartsError::Key)?;
        return Ok((public, pkcs8.to_vec().into()));
    }
    let rng = SystemRandom::new();
    if let Ok(kp) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng) {
        let public =
            PublicKey::p256_from_point(kp.public_key().as_ref()).map_err(PartsError::Key)?;
        return Ok((public, pkcs8.to_vec().into()));
    }
    match RsaKeyPair::from_pkcs8(pkcs8) {
        Ok(kp) => {
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            use rsa::pkcs8::DecodePrivateKey as _;
            use x509_parser::prelude::FromDer as _;
            let (_, rsa_public) =
                x509_parser::public_key::RSAPublicKey::from_der(kp.public().as_ref())
                    .map_err(|e| PartsError::Key(format!("cannot read RSA public key: {e}")))?;
            let public = PublicKey::rsa_from_components(rsa_public.modulus, rsa_public.exponent)
                .map_err(PartsError::Key)?;
            let convert =
                |e: &dyn std::fmt::Display| PartsError::Key(format!("cannot convert RSA key: {e}"));
            let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8)
                .map_err(|e| convert(&e))?
                .to_pkcs1_der()
                .map_err(|e| convert(&e))?;
            Ok((public, pkcs1.as_bytes().to_vec().into()))
        }
        Err(e) => Err(PartsError::Key(format!(
            "not a usable PKCS#8 private key ({e}); supported are ECDSA P-256, \
             RSA (2048 to 8192 bits) and Ed25519"
        ))),
    }
}

fn generate_key_pair(
    sig_alg: &'static rcgen::SignatureAlgorithm,
    alg: Algorithm,
) -> Result<KeyPair, TokenError> {
    KeyPair::generate_for(sig_alg)
        .map_err(|e| TokenError::Key(format!("cannot generate {alg} key: {e}")))
}

fn generate_rsa_key_pair(bits: usize) -> Result<KeyPair, TokenError> {
    // ring cannot generate RSA keys; the rsa crate can.
    use rsa::pkcs8::EncodePrivateKey as _;
    let err = |e: &dyn std::fmt::Display| TokenError::Key(format!("cannot generate RSA key: {e}"));
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(|e| err(&e))?;
    let der = key.to_pkcs8_der().map_err(|e| err(&e))?;
    KeyPair::try_from(der.as_bytes()).map_err(|e| err(&e))
}

fn certificate_params(
    common_name: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, TokenError> {
    let to_time = |t: SystemTime| {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
            .map_err(|e| TokenError::Key(format!("certificate validity out of range: {e}")))
    };
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = to_time(not_before)?;
    params.not_after = to_time(not_after)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // A random positive serial number, at most 16 bytes.
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f) | 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}
