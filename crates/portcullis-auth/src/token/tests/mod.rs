//! Tests for the token module: round trips for every algorithm, key files,
//! JWKS and bundles. Hostile tokens are in `hostile.rs`, certificate chains
//! in `chain.rs`.

mod chain;
mod fixtures;
mod hostile;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::keys::system_time;
use super::pem_io::private_key_from_pem;
use super::*;

pub(super) const ISSUER: &str = "portcullis-test";
pub(super) const SERVICE: &str = "registry.test";

pub(super) fn now() -> SystemTime {
    SystemTime::now()
}

pub(super) fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Valid access-token claims at `now`, for five minutes.
pub(super) fn claims_at(now: SystemTime) -> Claims {
    let t = secs(now);
    Claims {
        iss: ISSUER.into(),
        sub: "alice".into(),
        aud: Audience::one(SERVICE),
        exp: t + 300,
        nbf: t,
        iat: t,
        jti: "jti-1".into(),
        access: vec![ResourceAccess {
            kind: "repository".into(),
            name: "library/alpine".into(),
            actions: vec!["pull".into(), "push".into()],
        }],
    }
}

pub(super) fn verifier(keys: Vec<VerifyKey>) -> Verifier {
    Verifier::new(
        keys,
        ISSUER.into(),
        SERVICE.into(),
        DEFAULT_LEEWAY,
        Vec::new(),
    )
}

/// A signing key from a fixture PEM, with a fresh self-signed certificate.
pub(super) fn key_from_pem(pem: &str, cn: &str) -> SigningKey {
    let der = private_key_from_pem(pem.as_bytes()).unwrap();
    let kp = rcgen::KeyPair::try_from(der.as_slice()).unwrap();
    let t = now();
    SigningKey::self_signed(
        &kp,
        cn,
        t - Duration::from_secs(60),
        t + Duration::from_secs(86_400),
    )
    .unwrap()
}

/// One key per algorithm, shared by the tests (`a`), and a second one of the
/// same type (`b`).
pub(super) fn key(alg: Algorithm) -> &'static SigningKey {
    static ES: OnceLock<SigningKey> = OnceLock::new();
    static RS: OnceLock<SigningKey> = OnceLock::new();
    static ED: OnceLock<SigningKey> = OnceLock::new();
    match alg {
        Algorithm::Es256 => ES.get_or_init(|| SigningKey::generate(alg, "es-a").unwrap()),
        Algorithm::Rs256 => RS.get_or_init(|| key_from_pem(fixtures::RSA_A_PKCS8, "rs-a")),
        Algorithm::EdDsa => ED.get_or_init(|| SigningKey::generate(alg, "ed-a").unwrap()),
    }
}

pub(super) fn other_key(alg: Algorithm) -> SigningKey {
    match alg {
        Algorithm::Rs256 => key_from_pem(fixtures::RSA_B_PKCS8, "rs-b"),
        _ => SigningKey::generate(alg, "other").unwrap(),
    }
}

/// A compact token from raw JSON parts and raw signature bytes.
pub(super) fn hand_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A token from raw JSON parts, correctly signed by `key`.
pub(super) fn signed_token(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let enc = match key.algorithm() {
        Algorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_der(key.jws_der()),
        Algorithm::Rs256 => jsonwebtoken::EncodingKey::from_rsa_der(key.jws_der()),
        Algorithm::EdDsa => jsonwebtoken::EncodingKey::from_ed_der(key.jws_der()),
    };
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &enc, key.algorithm().jwt()).unwrap();
    format!("{input}.{sig}")
}

/// The header portcullis itself would write for `key`.
pub(super) fn header_of(key: &SigningKey) -> Value {
    json!({
        "alg": key.algorithm().as_str(),
        "typ": "JWT",
        "kid": key.kid(),
        "x5c": [STANDARD.encode(&key.chain_der()[0])],
    })
}

#[test]
fn libtrust_kid_matches_a_key_id_made_by_libtrust() {
    // A JWK that libtrust (Docker) wrote, with its kid, from a schema 1
    // manifest signature.
    let jwk = json!({
        "crv": "P-256",
        "kid": "SVNG:A2VR:TQJG:H626:HBKH:6WBU:GFBH:3YNI:425G:MDXK:ULXZ:CENN",
        "kty": "EC",
        "x": "daLesX_y73FSCFCaBuCR8offV_m7XEohHZJ9z-6WvOM",
        "y": "pLEDUlQMDiEQqheWYVC55BPIB0m8BIhI-fxQBCH_wA0"
    });
    let public = jwks::public_from_jwk(jwk.as_object().unwrap()).unwrap();
    assert_eq!(libtrust_kid(&public.spki_der()), jwk["kid"]);
}

#[test]
fn round_trip_every_algorithm() {
    for alg in Algorithm::ALL {
        let key = key(alg);
        let t = now();
        let claims = claims_at(t);
        let token = issue(key, &claims).unwrap();
        let got = verifier(vec![key.verify_key()]).verify(&token, t).unwrap();
        assert_eq!(got, claims, "{alg}");
        assert_eq!(key.algorithm(), alg);
    }
}

#[test]
fn header_and_claims_are_what_distribution_reads() {
    let key = key(Algorithm::Es256);
    let token = issue(key, &claims_at(now())).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], key.kid());
    assert_eq!(header["x5c"], json!([STANDARD.encode(&key.chain_der()[0])]));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    // 2.8 reads aud into a Go string: it must not be an array.
    assert_eq!(claims["aud"], SERVICE);
    for name in ["iss", "sub", "exp", "nbf", "iat", "jti"] {
        assert!(!claims[name].is_null(), "{name} missing");
    }
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "library/alpine", "actions": ["pull", "push"]}])
    );
    // ES256 signatures are raw r || s (64 bytes), as libtrust expects.
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);
}

#[test]
fn kid_is_libtrust_format_of_the_certificate_key() {
    for alg in Algorithm::ALL {
        let key = key(alg);
        let kid = key.kid();
        assert_eq!(kid.len(), 12 * 4 + 11, "{kid}");
        assert!(kid.split(':').all(|g| g.len() == 4));
        let cert = keys::parse_cert(&key.chain_der()[0]).unwrap();
        // The certificate's own SPKI encoding is canonical for these keys.
        assert_eq!(kid, libtrust_kid(cert.public_key().raw));
    }
}

#[test]
fn generated_certificate_lasts_ten_years() {
    let key = key(Algorithm::Es256);
    let left = key.not_after().duration_since(now()).unwrap();
    assert!(
        left > GENERATED_VALIDITY - Duration::from_secs(3600),
        "{left:?}"
    );
    assert!(key.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
}

#[test]
fn generate_rsa_makes_a_working_key() {
    let key = SigningKey::generate_rsa("rsa-gen", 2048).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Rs256);
    let t = now();
    let token = issue(&key, &claims_at(t)).unwrap();
    verifier(vec![key.verify_key()]).verify(&token, t).unwrap();
    assert!(SigningKey::generate_rsa("x", 1024).is_err());
}

#[test]
fn debug_output_hides_the_private_key() {
    let key = key(Algorithm::Es256);
    let text = format!("{key:?}");
    assert!(text.contains("REDACTED"), "{text}");
    let der_b64 = STANDARD.encode(key.jws_der());
    assert!(!text.contains(&der_b64[..20]));
}

#[test]
fn write_pem_then_load_pem_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("token.key");
    let cert_path = dir.path().join("token.crt");
    for alg in Algorithm::ALL {
        let original = key(alg);
        original.write_pem(&key_path, &cert_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{alg}");
        }
        let loaded = SigningKey::load_pem(&key_path, &cert_path).unwrap();
        assert_eq!(loaded.kid(), original.kid());
        assert_eq!(loaded.algorithm(), alg);
        assert_eq!(loaded.cert_pem(), original.cert_pem());
        let t = now();
        let token = issue(&loaded, &claims_at(t)).unwrap();
        verifier(vec![original.verify_key()])
            .verify(&token, t)
            .unwrap();
    }
    // Only the two files remain: temporary files were renamed into place.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn load_pem_rejects_a_key_that_does_not_match_and_names_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, c1) = (dir.path().join("a.key"), dir.path().join("a.crt"));
    let (k2, c2) = (dir.path().join("b.key"), dir.path().join("b.crt"));
    key(Algorithm::Es256).write_pem(&k1, &c1).unwrap();
    other_key(Algorithm::Es256).write_pem(&k2, &c2).unwrap();
    let TokenError::Key(msg) = SigningKey::load_pem(&k1, &c2).unwrap_err() else {
        panic!("expected a key error");
    };
    assert!(msg.contains(&k1.display().to_string()), "{msg}");
    assert!(msg.contains(&c2.display().to_string()), "{msg}");
    assert!(msg.contains("does not match"), "{msg}");
    // A key of another type does not match either.
    key(Algorithm::EdDsa).write_pem(&k2, &c2).unwrap();
    assert!(
        matches!(SigningKey::load_pem(&k2, &c1), Err(TokenError::Key(m)) if m.contains("does not match"))
    );
}

#[test]
fn load_pem_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (k, c) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    key(Algorithm::Es256).write_pem(&k, &c).unwrap();
    let missing = dir.path().join("missing.pem");
    let err = SigningKey::load_pem(&missing, &c).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    let err = SigningKey::load_pem(&k, &missing).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    std::fs::write(&missing, "not pem at all").unwrap();
    let err = SigningKey::load_pem(&missing, &c).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    let err = SigningKey::load_pem(&k, &missing).unwrap_err().to_string();
    assert!(
        err.contains("missing.pem") && err.contains("CERTIFICATE"),
        "{err}"
    );
}

#[test]
fn load_pem_reads_keys_made_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (k, c) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    let cases = [
        (fixtures::EC_OPENSSL_PKCS8, Algorithm::Es256),
        (fixtures::ED_OPENSSL_PKCS8, Algorithm::EdDsa),
        (fixtures::RSA_A_PKCS8, Algorithm::Rs256),
        // PKCS#1 "RSA PRIVATE KEY" (openssl rsa -traditional).
        (fixtures::RSA_A_PKCS1, Algorithm::Rs256),
    ];
    for (pem, alg) in cases {
        let made = key_from_pem(pem, "openssl");
        std::fs::write(&k, pem).unwrap();
        std::fs::write(&c, made.cert_pem()).unwrap();
        let loaded = SigningKey::load_pem(&k, &c).unwrap();
        assert_eq!(loaded.algorithm(), alg);
        let t = now();
        let token = issue(&loaded, &claims_at(t)).unwrap();
        verifier(vec![made.verify_key()]).verify(&token, t).unwrap();
    }
    // SEC1 "EC PRIVATE KEY" (openssl ecparam -genkey) gets a how-to-fix.
    std::fs::write(&k, fixtures::EC_OPENSSL_SEC1).unwrap();
    let err = SigningKey::load_pem(&k, &c).unwrap_err().to_string();
    assert!(
        err.contains("k.pem") && err.contains("openssl pkcs8"),
        "{err}"
    );
}

#[test]
fn bundle_pem_round_trip() {
    let signing = other_key(Algorithm::Es256);
    let previous = key(Algorithm::Rs256);
    let set = KeySet::new(signing, vec![previous.verify_key()]);
    let bundle = set.bundle_pem();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    let keys = Verifier::from_bundle_pem(&bundle).unwrap();
    assert_eq!(keys[0].kid(), set.signing().kid());
    assert_eq!(keys[1].kid(), previous.kid());
    let v = verifier(keys);
    let t = now();
    for key in [set.signing(), previous] {
        let token = issue(key, &claims_at(t)).unwrap();
        v.verify(&token, t).unwrap();
        // Without x5c, the libtrust kid finds the bundle certificate (2.8).
        let token = issue_with(key, &claims_at(t), IssueOptions { include_x5c: false }).unwrap();
        v.verify(&token, t).unwrap();
    }
    assert!(Verifier::from_bundle_pem("").is_err());
}

#[test]
fn bundle_keys_answer_to_jwk_thumbprints() {
    let key = key(Algorithm::Es256);
    let v = verifier(Verifier::from_bundle_pem(&key.cert_pem()).unwrap());
    let t = now();
    let claims = serde_json::to_value(claims_at(t)).unwrap();
    let vk = key.verify_key();
    let thumbprint = jwk_thumbprint(&vk);
    let dist3 = vk.public().distribution3_thumbprint().unwrap();
    assert_ne!(thumbprint, dist3);
    for kid in [thumbprint, dist3] {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        v.verify(&signed_token(key, &header, &claims), t).unwrap();
    }
}

#[test]
fn jwks_round_trip() {
    let signing = key(Algorithm::EdDsa);
    let previous = key(Algorithm::Rs256);
    let third = key(Algorithm::Es256);
    let set = KeySet::new(
        SigningKey::clone(signing),
        vec![previous.verify_key(), third.verify_key()],
    );
    let jwks = set.jwks();
    let entries = jwks["keys"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["kty"], "OKP");
    assert_eq!(entries[0]["crv"], "Ed25519");
    assert_eq!(entries[1]["kty"], "RSA");
    assert_eq!(entries[1]["e"], "AQAB");
    assert_eq!(entries[2]["crv"], "P-256");
    for (entry, key) in entries.iter().zip([signing, previous, third]) {
        assert_eq!(entry["kid"], key.kid());
        assert_eq!(entry["alg"], key.algorithm().as_str());
        assert_eq!(entry["use"], "sig");
        assert_eq!(entry["x5c"], json!([STANDARD.encode(&key.chain_der()[0])]));
    }
    let v = verifier(Verifier::from_jwks_json(&jwks.to_string()).unwrap());
    let t = now();
    for key in [signing, previous, third] {
        v.verify(&issue(key, &claims_at(t)).unwrap(), t).unwrap();
    }
}

#[test]
fn jwks_without_certificates_verifies_kid_only_tokens() {
    let key = key(Algorithm::Es256);
    let mut jwks = KeySet::new(key.clone(), Vec::new()).jwks();
    jwks["keys"][0].as_object_mut().unwrap().remove("x5c");
    let v = verifier(Verifier::from_jwks_json(&jwks.to_string()).unwrap());
    let t = now();
    let plain = issue_with(key, &claims_at(t), IssueOptions { include_x5c: false }).unwrap();
    v.verify(&plain, t).unwrap();
    // Like distribution 3.x, a token with x5c needs a trusted certificate.
    let with_x5c = issue(key, &claims_at(t)).unwrap();
    assert_eq!(v.verify(&with_x5c, t), Err(TokenError::UntrustedChain));
}

#[test]
fn jwks_parsing_skips_foreign_keys_and_rejects_broken_ones() {
    let key = key(Algorithm::Es256);
    let good = KeySet::new(key.clone(), Vec::new()).jwks()["keys"][0].clone();
    let oct = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"});
    let enc = {
        let mut k = good.clone();
        k["use"] = "enc".into();
        k
    };
    let keys = Verifier::from_jwks_json(&json!({"keys": [oct, enc, good]}).to_string()).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(Verifier::from_jwks_json(&json!({"keys": [oct]}).to_string()).is_err());
    assert!(Verifier::from_jwks_json("[]").is_err());
    assert!(Verifier::from_jwks_json("{").is_err());
    // An x5c certificate that holds another key is an error.
    let mut wrong = good.clone();
    wrong["x5c"] = json!([STANDARD.encode(&other_key(Algorithm::Es256).chain_der()[0])]);
    assert!(Verifier::from_jwks_json(&json!({"keys": [wrong]}).to_string()).is_err());
    // A key without kid is named by its RFC 7638 thumbprint.
    let mut nameless = good;
    nameless.as_object_mut().unwrap().remove("kid");
    let keys = Verifier::from_jwks_json(&json!({"keys": [nameless]}).to_string()).unwrap();
    assert_eq!(keys[0].kid(), jwk_thumbprint(&key.verify_key()));
}

#[test]
fn audience_serializes_one_as_a_string_and_reads_both_forms() {
    assert_eq!(
        serde_json::to_value(Audience::one("a")).unwrap(),
        json!("a")
    );
    let two = Audience::many(vec!["a".into(), "b".into()]);
    assert_eq!(serde_json::to_value(&two).unwrap(), json!(["a", "b"]));
    let read: Audience = serde_json::from_value(json!(["a", "b"])).unwrap();
    assert_eq!(read, two);
    assert!(read.contains("b") && !read.contains("c"));
    let read: Audience = serde_json::from_value(json!("a")).unwrap();
    assert_eq!(read.as_slice(), ["a"]);
    assert!(serde_json::from_value::<Audience>(json!(1)).is_err());
}

#[test]
fn algorithm_names_parse_case_sensitively() {
    for alg in Algorithm::ALL {
        assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
    }
    for bad in ["es256", "none", "HS256", "ES384", ""] {
        assert!(bad.parse::<Algorithm>().is_err(), "{bad}");
    }
}

#[test]
fn decode_unverified_describes_any_token() {
    let t = now();
    let token = issue(key(Algorithm::Es256), &claims_at(t)).unwrap();
    let u = decode_unverified(&token).unwrap();
    assert_eq!(u.header.alg, "ES256");
    assert_eq!(u.claims.exp, Some(secs(t) + 300));
    let none = hand_token(&json!({"alg": "none"}), &json!({"sub": "x"}), b"");
    let u = decode_unverified(&none).unwrap();
    assert_eq!(u.header.alg, "none");
    assert_eq!(u.claims.exp, None);
    assert_eq!(u.claims.sub.as_deref(), Some("x"));
}

#[test]
fn system_time_clamps_negative_seconds() {
    assert_eq!(system_time(-5), UNIX_EPOCH);
    assert_eq!(system_time(5), UNIX_EPOCH + Duration::from_secs(5));
}
