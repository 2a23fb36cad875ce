//! Token verification: the fail-closed checks a registry applies to a bearer
//! token, compatible with distribution's `auth.token`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tracing::{debug, instrument};
use x509_parser::certificate::X509Certificate;
use x509_parser::time::ASN1Time;

use super::claims::{Claims, UnverifiedHeader};
use super::jwks::public_from_jwk;
use super::jwt::{RawToken, parse_claims};
use super::keys::{MAX_CHAIN_LEN, VerifyKey, certs_to_keys, parse_cert};
use super::public::PublicKey;
use super::{Algorithm, TokenError, truncate};

/// Longest token accepted, in bytes; longer ones are rejected before any
/// parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Clock-skew allowance for `exp` and `nbf`, the same as distribution's.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Checks access tokens against trusted keys, an issuer and an audience.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<VerifyKey>,
    issuer: String,
    audience: String,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
}

impl Verifier {
    /// The keys of every certificate in a PEM bundle (distribution's
    /// `auth.token.rootcertbundle`). Blocks other than `CERTIFICATE` are
    /// ignored, as distribution does.
    ///
    /// # Errors
    /// [`TokenError::Key`] if the bundle holds no certificate or a
    /// certificate is invalid or has an unsupported key type.
    pub fn from_bundle_pem(pem: &str) -> Result<Vec<VerifyKey>, TokenError> {
        certs_to_keys(pem.as_bytes())
            .map_err(|m| TokenError::Key(format!("token root certificate bundle: {m}")))
    }

    /// [`Verifier::from_bundle_pem`] on a file; errors name the file.
    ///
    /// # Errors
    /// [`TokenError::Key`] if the file cannot be read or parsed.
    pub fn load_bundle_file(path: &Path) -> Result<Vec<VerifyKey>, TokenError> {
        VerifyKey::load_cert_pem(path)
    }

    /// [`Verifier::from_jwks_json`] on a file; errors name the file.
    ///
    /// # Errors
    /// [`TokenError::Key`] if the file cannot be read or parsed.
    pub fn load_jwks_file(path: &Path) -> Result<Vec<VerifyKey>, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            TokenError::Key(format!("cannot read JWKS file {}: {e}", path.display()))
        })?;
        Self::from_jwks_json(&text).map_err(|e| TokenError::Key(format!("{}: {e}", path.display())))
    }

    /// A verifier that accepts tokens signed by one of `keys` whose `iss` is
    /// `issuer` and whose `aud` contains `audience` (distribution's
    /// `auth.token.service`). An empty `algorithms` means [`Algorithm::ALL`].
    #[must_use]
    pub fn new(
        keys: Vec<VerifyKey>,
        issuer: String,
        audience: String,
        leeway: Duration,
        algorithms: Vec<Algorithm>,
    ) -> Self {
        let algorithms = if algorithms.is_empty() {
            Algorithm::ALL.to_vec()
        } else {
            algorithms
        };
        Self {
            keys,
            issuer,
            audience,
            leeway,
            algorithms,
        }
    }

    /// The trusted keys.
    #[must_use]
    pub fn keys(&self) -> &[VerifyKey] {
        &self.keys
    }

    /// The required issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The required audience.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies a compact JWT at time `now` and returns its claims.
    ///
    /// In order, failing at the first problem:
    /// 1. longer than [`MAX_TOKEN_LEN`]: [`TokenError::TooLarge`];
    /// 2. not three strict base64url parts, header not JSON:
    ///    [`TokenError::Malformed`];
    /// 3. `alg` is `none`, HMAC, unknown or not allowed:
    ///    [`TokenError::UnsupportedAlgorithm`]; a `crit` header: `Malformed`;
    /// 4. key selection. With `x5c`, the leaf must be byte-identical to a
    ///    trusted certificate or chain to one (through intermediates in
    ///    `x5c`, which must be CAs), with every signature checked and every
    ///    certificate within its validity period at `now`; otherwise
    ///    [`TokenError::UntrustedChain`]. Without `x5c`, an embedded `jwk`
    ///    must equal a trusted key; otherwise `kid` must name trusted keys
    ///    (certificates answer to their libtrust ID and JWK thumbprints, JWKS
    ///    keys to their `kid`); otherwise [`TokenError::UnknownKey`];
    /// 5. the key's type must match `alg` and the signature must verify:
    ///    [`TokenError::BadSignature`];
    /// 6. claims must parse (`iss`, `aud`, `exp`, `iat` required):
    ///    `Malformed`;
    /// 7. `iss` equals the issuer ([`TokenError::WrongIssuer`]), `aud`
    ///    contains the audience ([`TokenError::WrongAudience`]),
    ///    `exp + leeway > now` ([`TokenError::Expired`]), and
    ///    `nbf <= now + leeway` ([`TokenError::NotYetValid`]).
    ///
    /// # Errors
    /// The [`TokenError`] of the first failed check.
    #[instrument(skip_all)]
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        let raw = RawToken::split(token)?;
        let header = raw.header()?;
        let alg = self.allowed_algorithm(&header.alg)?;
        if header.crit.is_some() {
            return Err(TokenError::Malformed(
                "critical header extensions (crit) are not supported".into(),
            ));
        }
        let candidates = self.select_keys(&header, alg, now)?;
        let signed = candidates
            .iter()
            .any(|key| key.verify(alg, raw.signing_input.as_bytes(), raw.signature_b64));
        if !signed {
            return Err(TokenError::BadSignature);
        }
        let claims = parse_claims(&raw.payload_json)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    fn allowed_algorithm(&self, name: &str) -> Result<Algorithm, TokenError> {
        let alg: Algorithm = name.parse()?;
        if self.algorithms.contains(&alg) {
            Ok(alg)
        } else {
            Err(TokenError::UnsupportedAlgorithm(truncate(name, 32)))
        }
    }

    /// The keys the signature may be checked with (see [`Verifier::verify`]).
    fn select_keys(
        &self,
        header: &UnverifiedHeader,
        alg: Algorithm,
        now: SystemTime,
    ) -> Result<Vec<PublicKey>, TokenError> {
        let selected = if let Some(x5c) = &header.x5c {
            vec![self.verify_chain(x5c, now)?]
        } else if let Some(jwk) = &header.jwk {
            let embedded = jwk
                .as_object()
                .and_then(|obj| public_from_jwk(obj).ok())
                .ok_or(TokenError::UnknownKey)?;
            let trusted = self.keys.iter().find(|k| k.public == embedded);
            vec![trusted.ok_or(TokenError::UnknownKey)?.public.clone()]
        } else if let Some(kid) = &header.kid {
            let named: Vec<PublicKey> = self
                .keys
                .iter()
                .filter(|k| k.answers_to(kid))
                .map(|k| k.public.clone())
                .collect();
            if named.is_empty() {
                return Err(TokenError::UnknownKey);
            }
            named
        } else {
            return Err(TokenError::UnknownKey);
        };
        let matching: Vec<PublicKey> = selected
            .into_iter()
            .filter(|k| k.algorithm() == alg)
            .collect();
        if matching.is_empty() {
            debug!("the token's key cannot make {alg} signatures");
            return Err(TokenError::BadSignature);
        }
        Ok(matching)
    }

    /// Checks an `x5c` chain against the trusted certificates and returns
    /// the leaf's key.
    fn verify_chain(&self, x5c: &[String], now: SystemTime) -> Result<PublicKey, TokenError> {
        if x5c.is_empty() || x5c.len() > MAX_CHAIN_LEN {
            return Err(TokenError::Malformed(format!(
                "x5c must hold 1 to {MAX_CHAIN_LEN} certificates"
            )));
        }
        let ders = x5c
            .iter()
            .map(|c| STANDARD.decode(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TokenError::Malformed("x5c is not valid base64".into()))?;
        let certs = ders
            .iter()
            .map(|d| parse_cert(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TokenError::Malformed("x5c holds an invalid certificate".into()))?;
        let Some(now) = asn1_time(now) else {
            return Err(TokenError::UntrustedChain);
        };
        let leaf = &certs[0];
        if !leaf.validity().is_valid_at(now) {
            debug!("x5c leaf certificate is outside its validity period");
            return Err(TokenError::UntrustedChain);
        }
        let exact = self
            .keys
            .iter()
            .any(|k| k.cert_der().is_some_and(|c| c == ders[0].as_slice()));
        if !exact {
            let anchors: Vec<X509Certificate<'_>> = self
                .keys
                .iter()
                .filter_map(|k| k.cert_der().and_then(|d| parse_cert(d).ok()))
                .collect();
            chain_to_anchor(leaf, &certs[1..], &anchors, now)?;
        }
        PublicKey::from_spki(leaf.public_key()).map_err(|m| {
            debug!("x5c leaf key is unusable: {m}");
            TokenError::BadSignature
        })
    }

    fn check_claims(&self, claims: &Claims, now: SystemTime) -> Result<(), TokenError> {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let leeway = self.leeway.as_secs();
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(TokenError::WrongAudience);
        }
        if claims.exp.saturating_add(leeway) <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }
}

/// Walks from `leaf` to a trusted certificate: each step finds the issuer
/// among the anchors (any certificate, as Go's root pool) or among the
/// intermediates (which must be CAs), checks that it is within its validity
/// period, and checks the signature.
fn chain_to_anchor(
    leaf: &X509Certificate<'_>,
    intermediates: &[X509Certificate<'_>],
    anchors: &[X509Certificate<'_>],
    now: ASN1Time,
) -> Result<(), TokenError> {
    let issued_by = |child: &X509Certificate<'_>, parent: &X509Certificate<'_>| {
        parent.subject().as_raw() == child.issuer().as_raw()
            && parent.validity().is_valid_at(now)
            && child.verify_signature(Some(parent.public_key())).is_ok()
    };
    let mut current = leaf;
    for _ in 0..=MAX_CHAIN_LEN {
        if anchors.iter().any(|a| issued_by(current, a)) {
            return Ok(());
        }
        let next = intermediates.iter().find(|i| {
            let is_ca = matches!(i.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
            is_ca && issued_by(current, i)
        });
        match next {
            Some(next) => current = next,
            None => break,
        }
    }
    debug!("x5c chain does not lead to a trusted certificate");
    Err(TokenError::UntrustedChain)
}

fn asn1_time(t: SystemTime) -> Option<ASN1Time> {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    ASN1Time::from_timestamp(i64::try_from(secs).ok()?).ok()
}
