//! `x5c` certificate chains: leaves signed by a bundle CA, intermediates,
//! impostors, and validity periods.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use serde_json::json;

use super::*;

/// A certificate with its key and the parameters it was made from.
struct Cert {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

fn params(cn: &str, ca: bool, not_before: SystemTime, not_after: SystemTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.not_before = time::OffsetDateTime::from(not_before);
    p.not_after = time::OffsetDateTime::from(not_after);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p
}

fn day() -> Duration {
    Duration::from_secs(86_400)
}

fn root(cn: &str, key: KeyPair) -> Cert {
    root_valid(cn, key, now() - day(), now() + day())
}

fn root_valid(cn: &str, key: KeyPair, not_before: SystemTime, not_after: SystemTime) -> Cert {
    let params = params(cn, true, not_before, not_after);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Cert { params, key, der }
}

fn issued(cn: &str, ca: bool, issuer: &Cert) -> Cert {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let params = params(cn, ca, now() - day(), now() + day());
    let issuer = Issuer::from_params(&issuer.params, &issuer.key);
    let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
    Cert { params, key, der }
}

fn signing_key(leaf: &Cert, intermediates: &[&Cert]) -> SigningKey {
    let mut chain = vec![leaf.der.clone()];
    chain.extend(intermediates.iter().map(|c| c.der.clone()));
    SigningKey::from_parts(leaf.key.serialize_der(), chain).unwrap()
}

fn trusting(root: &Cert) -> Verifier {
    verifier(vec![VerifyKey::from_cert_der(&root.der).unwrap()])
}

fn ec_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

#[test]
fn leaf_signed_by_a_bundle_ca_is_trusted() {
    let rsa_root_key = {
        let der = pem_io::private_key_from_pem(fixtures::RSA_A_PKCS8.as_bytes()).unwrap();
        KeyPair::try_from(der.as_slice()).unwrap()
    };
    let roots = [
        root("EC root", ec_key()),
        root("Ed root", KeyPair::generate_for(&PKCS_ED25519).unwrap()),
        root("RSA root", rsa_root_key),
    ];
    for ca in &roots {
        let leaf = issued("leaf", false, ca);
        let key = signing_key(&leaf, &[]);
        let t = now();
        let token = issue(&key, &claims_at(t)).unwrap();
        trusting(ca).verify(&token, t).unwrap();
    }
}

#[test]
fn intermediates_in_x5c_lead_to_the_root() {
    let ca = root("root", ec_key());
    let intermediate = issued("intermediate", true, &ca);
    let leaf = issued("leaf", false, &intermediate);
    let key = signing_key(&leaf, &[&intermediate]);
    let t = now();
    let token = issue(&key, &claims_at(t)).unwrap();
    let header = decode_unverified(&token).unwrap().header;
    assert_eq!(header.x5c.unwrap().len(), 2);
    trusting(&ca).verify(&token, t).unwrap();

    // Without the intermediate the chain is broken.
    let alone = signing_key(&leaf, &[]);
    let token = issue(&alone, &claims_at(t)).unwrap();
    assert_eq!(
        trusting(&ca).verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
}

#[test]
fn an_intermediate_that_is_not_a_ca_breaks_the_chain() {
    let ca = root("root", ec_key());
    let not_ca = issued("not a CA", false, &ca);
    let leaf = issued("leaf", false, &not_ca);
    let key = signing_key(&leaf, &[&not_ca]);
    let t = now();
    let token = issue(&key, &claims_at(t)).unwrap();
    assert_eq!(
        trusting(&ca).verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
}

#[test]
fn an_impostor_ca_with_the_same_name_is_untrusted() {
    let ca = root("Registry CA", ec_key());
    let impostor = root("Registry CA", ec_key());
    let leaf = issued("leaf", false, &impostor);
    let key = signing_key(&leaf, &[]);
    let t = now();
    let token = issue(&key, &claims_at(t)).unwrap();
    assert_eq!(
        trusting(&ca).verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
    // Sending the impostor as an intermediate does not help either.
    let key = signing_key(&leaf, &[&impostor]);
    let token = issue(&key, &claims_at(t)).unwrap();
    assert_eq!(
        trusting(&ca).verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
}

#[test]
fn certificates_outside_their_validity_are_untrusted() {
    let t = now();
    let year = day() * 365;
    let expired =
        SigningKey::generate_valid_between(Algorithm::Es256, "old", t - year * 2, t - year)
            .unwrap();
    let future =
        SigningKey::generate_valid_between(Algorithm::Es256, "new", t + year, t + year * 2)
            .unwrap();
    for key in [&expired, &future] {
        let v = verifier(vec![key.verify_key()]);
        let token = issue(key, &claims_at(t)).unwrap();
        assert_eq!(v.verify(&token, t), Err(TokenError::UntrustedChain));
    }
    // The clock is passed in: at a time within its validity, it is fine.
    let then = t - year - year / 2;
    let token = issue(&expired, &claims_at(then)).unwrap();
    verifier(vec![expired.verify_key()])
        .verify(&token, then)
        .unwrap();

    // An expired root breaks the chain of a valid leaf.
    let old_root = root_valid("old root", ec_key(), t - year * 2, t - year);
    let leaf = issued("leaf", false, &old_root);
    let token = issue(&signing_key(&leaf, &[]), &claims_at(t)).unwrap();
    assert_eq!(
        trusting(&old_root).verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
}

#[test]
fn load_pem_reads_a_chain_file() {
    let ca = root("root", ec_key());
    let intermediate = issued("intermediate", true, &ca);
    let leaf = issued("leaf", false, &intermediate);
    let dir = tempfile::tempdir().unwrap();
    let (k, c) = (dir.path().join("leaf.key"), dir.path().join("chain.crt"));
    signing_key(&leaf, &[&intermediate])
        .write_pem(&k, &c)
        .unwrap();
    let text = std::fs::read_to_string(&c).unwrap();
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2);
    let loaded = SigningKey::load_pem(&k, &c).unwrap();
    assert_eq!(loaded.chain_der().len(), 2);
    let t = now();
    trusting(&ca)
        .verify(&issue(&loaded, &claims_at(t)).unwrap(), t)
        .unwrap();
    // The root alone in a bundle file, as distribution would read it.
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(
        &bundle,
        VerifyKey::from_cert_der(&ca.der)
            .unwrap()
            .cert_pem()
            .unwrap(),
    )
    .unwrap();
    let keys = Verifier::load_bundle_file(&bundle).unwrap();
    verifier(keys)
        .verify(&issue(&loaded, &claims_at(t)).unwrap(), t)
        .unwrap();
}

#[test]
fn x5c_garbage_is_malformed() {
    let t = now();
    let es = key(Algorithm::Es256);
    let v = verifier(vec![es.verify_key()]);
    for x5c in [
        json!([]),
        json!(["not base64!"]),
        json!([STANDARD.encode(b"not a certificate")]),
        json!(vec![STANDARD.encode(&es.chain_der()[0]); 6]),
    ] {
        let mut header = header_of(es);
        header["x5c"] = x5c.clone();
        let token = signed_token(es, &header, &serde_json::to_value(claims_at(t)).unwrap());
        assert!(
            matches!(v.verify(&token, t), Err(TokenError::Malformed(_))),
            "{x5c}"
        );
    }
    // A certificate with trailing bytes is not the certificate in the bundle.
    let mut der = es.chain_der()[0].clone();
    der.push(0);
    let mut header = header_of(es);
    header["x5c"] = json!([STANDARD.encode(&der)]);
    let token = signed_token(es, &header, &serde_json::to_value(claims_at(t)).unwrap());
    assert!(matches!(v.verify(&token, t), Err(TokenError::Malformed(_))));
}
