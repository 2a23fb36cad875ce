//! Hostile and broken tokens: each must fail with the right error, never
//! panic, never verify.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;

fn es() -> &'static SigningKey {
    key(Algorithm::Es256)
}

fn es_verifier() -> Verifier {
    verifier(vec![es().verify_key()])
}

fn claims_json(t: SystemTime) -> Value {
    serde_json::to_value(claims_at(t)).unwrap()
}

#[test]
fn alg_none_is_unsupported() {
    let t = now();
    let v = es_verifier();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for header in [
            json!({"alg": alg, "typ": "JWT"}),
            json!({"alg": alg, "typ": "JWT", "kid": es().kid()}),
            {
                let mut h = header_of(es());
                h["alg"] = alg.into();
                h
            },
        ] {
            let token = hand_token(&header, &claims_json(t), b"");
            assert!(
                matches!(
                    v.verify(&token, t),
                    Err(TokenError::UnsupportedAlgorithm(_))
                ),
                "{header}"
            );
            let token = hand_token(&header, &claims_json(t), b"sig");
            assert!(matches!(
                v.verify(&token, t),
                Err(TokenError::UnsupportedAlgorithm(_))
            ));
        }
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_unsupported() {
    let t = now();
    for alg in Algorithm::ALL {
        let key = key(alg);
        let v = verifier(vec![key.verify_key()]);
        // The classic confusion attack: HMAC keyed with the public key (as
        // PEM, as the bundle file holds it), naming the trusted key.
        for hs in [
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::HS512,
        ] {
            let mut header = jsonwebtoken::Header::new(hs);
            header.kid = Some(key.kid().to_owned());
            header.x5c = Some(vec![STANDARD.encode(&key.chain_der()[0])]);
            let secret = jsonwebtoken::EncodingKey::from_secret(key.cert_pem().as_bytes());
            let token = jsonwebtoken::encode(&header, &claims_at(t), &secret).unwrap();
            assert_eq!(
                v.verify(&token, t),
                Err(TokenError::UnsupportedAlgorithm(format!("{hs:?}"))),
            );
        }
    }
}

#[test]
fn algorithms_outside_the_allow_list_are_unsupported() {
    let t = now();
    let rs = key(Algorithm::Rs256);
    let v = Verifier::new(
        vec![rs.verify_key()],
        ISSUER.into(),
        SERVICE.into(),
        DEFAULT_LEEWAY,
        vec![Algorithm::Es256],
    );
    let token = issue(rs, &claims_at(t)).unwrap();
    assert!(matches!(
        v.verify(&token, t),
        Err(TokenError::UnsupportedAlgorithm(_))
    ));
    for alg in ["ES384", "RS512", "PS256", "es256", ""] {
        let mut header = header_of(es());
        header["alg"] = alg.into();
        let token = hand_token(&header, &claims_json(t), &[1; 64]);
        assert!(
            matches!(
                es_verifier().verify(&token, t),
                Err(TokenError::UnsupportedAlgorithm(_))
            ),
            "{alg}"
        );
    }
}

#[test]
fn a_key_of_another_type_cannot_verify() {
    let t = now();
    // An RS256 token naming the trusted EC key.
    let rs = key(Algorithm::Rs256);
    let mut header = header_of(es());
    header["alg"] = "RS256".into();
    let token = signed_token(rs, &header, &claims_json(t));
    assert_eq!(
        es_verifier().verify(&token, t),
        Err(TokenError::BadSignature)
    );
    header.as_object_mut().unwrap().remove("x5c");
    let token = signed_token(rs, &header, &claims_json(t));
    assert_eq!(
        es_verifier().verify(&token, t),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn unknown_kid_and_no_key_are_unknown_key() {
    let t = now();
    let stranger = other_key(Algorithm::Es256);
    let token = issue_with(
        &stranger,
        &claims_at(t),
        IssueOptions { include_x5c: false },
    )
    .unwrap();
    assert_eq!(es_verifier().verify(&token, t), Err(TokenError::UnknownKey));
    let token = signed_token(
        es(),
        &json!({"alg": "ES256", "typ": "JWT"}),
        &claims_json(t),
    );
    assert_eq!(es_verifier().verify(&token, t), Err(TokenError::UnknownKey));
}

#[test]
fn embedded_jwk_is_trusted_only_if_it_is_a_trusted_key() {
    let t = now();
    let stranger = other_key(Algorithm::Es256);
    let jwk_of = |k: &SigningKey| KeySet::new(k.clone(), Vec::new()).jwks()["keys"][0].clone();
    let header = json!({"alg": "ES256", "typ": "JWT", "jwk": jwk_of(&stranger)});
    let token = signed_token(&stranger, &header, &claims_json(t));
    assert_eq!(es_verifier().verify(&token, t), Err(TokenError::UnknownKey));
    let header = json!({"alg": "ES256", "typ": "JWT", "jwk": jwk_of(es())});
    let token = signed_token(es(), &header, &claims_json(t));
    es_verifier().verify(&token, t).unwrap();
}

#[test]
fn self_signed_x5c_not_in_the_bundle_is_untrusted() {
    let t = now();
    let stranger = other_key(Algorithm::Es256);
    let token = issue(&stranger, &claims_at(t)).unwrap();
    assert_eq!(
        es_verifier().verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
    // Naming a trusted kid does not help: x5c takes precedence.
    let mut header = header_of(&stranger);
    header["kid"] = es().kid().into();
    let token = signed_token(&stranger, &header, &claims_json(t));
    assert_eq!(
        es_verifier().verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
    // Nor does putting a trusted certificate after the stranger's.
    header["x5c"] = json!([
        STANDARD.encode(&stranger.chain_der()[0]),
        STANDARD.encode(&es().chain_der()[0])
    ]);
    let token = signed_token(&stranger, &header, &claims_json(t));
    assert_eq!(
        es_verifier().verify(&token, t),
        Err(TokenError::UntrustedChain)
    );
}

#[test]
fn signature_by_another_key_of_the_same_type_is_bad() {
    let t = now();
    for alg in Algorithm::ALL {
        let trusted = key(alg);
        let forger = other_key(alg);
        let v = verifier(vec![trusted.verify_key()]);
        // The trusted key's own header (x5c and kid), signed by the forger.
        let token = signed_token(&forger, &header_of(trusted), &claims_json(t));
        assert_eq!(v.verify(&token, t), Err(TokenError::BadSignature), "{alg}");
        let header = json!({"alg": alg.as_str(), "kid": trusted.kid()});
        let token = signed_token(&forger, &header, &claims_json(t));
        assert_eq!(v.verify(&token, t), Err(TokenError::BadSignature), "{alg}");
    }
}

#[test]
fn a_tampered_payload_breaks_the_signature() {
    let t = now();
    let token = issue(es(), &claims_at(t)).unwrap();
    let mut claims = claims_json(t);
    claims["access"][0]["actions"] = json!(["*"]);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        es_verifier().verify(&forged, t),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn claims_checks() {
    let t = now();
    let v = es_verifier();
    let check = |edit: &dyn Fn(&mut Claims)| {
        let mut c = claims_at(t);
        edit(&mut c);
        v.verify(&issue(es(), &c).unwrap(), t)
    };
    assert_eq!(
        check(&|c| c.aud = Audience::one("other")),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        check(&|c| c.aud = Audience::many(vec!["a".into(), "b".into()])),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        check(&|c| c.aud = Audience::many(Vec::new())),
        Err(TokenError::WrongAudience)
    );
    assert!(check(&|c| c.aud = Audience::many(vec!["a".into(), SERVICE.into()])).is_ok());
    assert_eq!(
        check(&|c| c.iss = "evil".into()),
        Err(TokenError::WrongIssuer)
    );
    assert_eq!(
        check(&|c| c.iss = String::new()),
        Err(TokenError::WrongIssuer)
    );
    let t_s = secs(t);
    assert_eq!(check(&|c| c.exp = t_s - 61), Err(TokenError::Expired));
    assert_eq!(check(&|c| c.exp = t_s - 60), Err(TokenError::Expired));
    assert_eq!(check(&|c| c.exp = 0), Err(TokenError::Expired));
    assert_eq!(check(&|c| c.nbf = t_s + 61), Err(TokenError::NotYetValid));
    // Within the 60 s leeway both ways.
    assert!(check(&|c| c.exp = t_s - 30).is_ok());
    assert!(check(&|c| c.nbf = t_s + 30).is_ok());
    assert!(check(&|c| c.nbf = 0).is_ok());
}

#[test]
fn leeway_is_configurable() {
    let t = now();
    let strict = Verifier::new(
        vec![es().verify_key()],
        ISSUER.into(),
        SERVICE.into(),
        Duration::ZERO,
        Vec::new(),
    );
    let mut c = claims_at(t);
    c.exp = secs(t) - 1;
    assert_eq!(
        strict.verify(&issue(es(), &c).unwrap(), t),
        Err(TokenError::Expired)
    );
    let mut c = claims_at(t);
    c.nbf = secs(t) + 1;
    assert_eq!(
        strict.verify(&issue(es(), &c).unwrap(), t),
        Err(TokenError::NotYetValid)
    );
    // The same token is fine later, with the clock passed in.
    strict
        .verify(&issue(es(), &c).unwrap(), t + Duration::from_secs(1))
        .unwrap();
}

#[test]
fn missing_or_mistyped_claims_are_malformed() {
    let t = now();
    let v = es_verifier();
    for (name, value) in [
        ("exp", Value::Null),
        ("iat", Value::Null),
        ("iss", Value::Null),
        ("aud", Value::Null),
        ("exp", json!("soon")),
        ("exp", json!(-1)),
        ("exp", json!(1.5e9)),
        ("aud", json!([1])),
        ("access", json!([{"type": "repository"}])),
    ] {
        let mut claims = claims_json(t);
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
        let token = signed_token(es(), &header_of(es()), &claims);
        assert!(
            matches!(v.verify(&token, t), Err(TokenError::Malformed(_))),
            "{name} = {value}"
        );
    }
    // Optional claims: sub, jti, nbf, and access as null (Go's empty list).
    let mut claims = claims_json(t);
    for name in ["sub", "jti", "nbf"] {
        claims.as_object_mut().unwrap().remove(name);
    }
    claims["access"] = Value::Null;
    let token = signed_token(es(), &header_of(es()), &claims);
    let got = v.verify(&token, t).unwrap();
    assert!(got.access.is_empty() && got.sub.is_empty() && got.nbf == 0);
}

#[test]
fn duplicate_claims_are_malformed() {
    let t = now();
    let header = URL_SAFE_NO_PAD.encode(header_of(es()).to_string());
    let claims = claims_json(t).to_string();
    let doubled = format!(
        "{},\"exp\":{}}}",
        &claims[..claims.len() - 1],
        secs(t) + 9999
    );
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(doubled));
    let enc = jsonwebtoken::EncodingKey::from_ec_der(es().jws_der());
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &enc, jsonwebtoken::Algorithm::ES256).unwrap();
    let token = format!("{input}.{sig}");
    assert!(matches!(
        es_verifier().verify(&token, t),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn critical_header_extensions_are_rejected() {
    let t = now();
    let mut header = header_of(es());
    header["crit"] = json!(["exp"]);
    let token = signed_token(es(), &header, &claims_json(t));
    assert!(matches!(
        es_verifier().verify(&token, t),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn bad_base64_in_each_part_is_malformed() {
    let t = now();
    let token = issue(es(), &claims_at(t)).unwrap();
    let v = es_verifier();
    for part in 0..3 {
        for bad in ["!!!!", "ab+/", "abc=", "a b"] {
            let mut parts: Vec<String> = token.split('.').map(String::from).collect();
            parts[part] = format!("{}{bad}", parts[part]);
            let broken = parts.join(".");
            assert!(
                matches!(v.verify(&broken, t), Err(TokenError::Malformed(_))),
                "part {part} with {bad:?}: {:?}",
                v.verify(&broken, t)
            );
        }
    }
    // Non-canonical trailing bits ("AB" and "AA" both could mean 0x00).
    let parts: Vec<&str> = token.split('.').collect();
    let header = URL_SAFE_NO_PAD.encode("{}");
    assert_eq!(header, "e30");
    let broken = format!("e31.{}.{}", parts[1], parts[2]);
    assert!(matches!(
        v.verify(&broken, t),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn bad_json_and_bad_shapes_are_malformed() {
    let t = now();
    let v = es_verifier();
    let token = issue(es(), &claims_at(t)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let not_json = URL_SAFE_NO_PAD.encode("not json");
    for broken in [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        parts[0].into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{not_json}.{}.{}", parts[1], parts[2]),
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("[]"), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":1}"#),
            parts[1],
            parts[2]
        ),
        format!("{token} "),
    ] {
        assert!(
            matches!(v.verify(&broken, t), Err(TokenError::Malformed(_))),
            "{broken:?}"
        );
    }
    // A signed token whose payload is not JSON.
    let input = format!("{}.{not_json}", parts[0]);
    let enc = jsonwebtoken::EncodingKey::from_ec_der(es().jws_der());
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &enc, jsonwebtoken::Algorithm::ES256).unwrap();
    let token = format!("{input}.{sig}");
    assert!(matches!(v.verify(&token, t), Err(TokenError::Malformed(_))));
}

#[test]
fn truncated_tokens_fail() {
    let t = now();
    let token = issue(es(), &claims_at(t)).unwrap();
    let v = es_verifier();
    for cut in 1..token.len() {
        let result = v.verify(&token[..token.len() - cut], t);
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed(_) | TokenError::BadSignature)
            ),
            "cut {cut}: {result:?}"
        );
    }
}

#[test]
fn oversized_tokens_are_rejected_before_parsing() {
    let t = now();
    let v = es_verifier();
    let huge = "a".repeat(100 * 1024);
    assert_eq!(v.verify(&huge, t), Err(TokenError::TooLarge));
    let just_over = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(v.verify(&just_over, t), Err(TokenError::TooLarge));
    // A validly signed token with a 100 kB claim is too large too.
    let mut claims = claims_json(t);
    claims["padding"] = "x".repeat(100 * 1000).into();
    let token = signed_token(es(), &header_of(es()), &claims);
    assert_eq!(v.verify(&token, t), Err(TokenError::TooLarge));
    assert_eq!(decode_unverified(&token), Err(TokenError::TooLarge));
}

#[test]
fn error_messages_do_not_repeat_token_contents() {
    let t = now();
    let mut header = header_of(es());
    header["alg"] = "SECRET-ALG-NAME-THAT-IS-VERY-LONG-INDEED-0123456789".into();
    let token = hand_token(&header, &claims_json(t), b"x");
    let msg = es_verifier().verify(&token, t).unwrap_err().to_string();
    assert!(msg.len() < 120, "{msg}");
    let mut claims = claims_json(t);
    claims["exp"] = json!("s3cr3t-value");
    let token = signed_token(es(), &header_of(es()), &claims);
    let msg = es_verifier().verify(&token, t).unwrap_err().to_string();
    assert!(!msg.contains("s3cr3t"), "{msg}");
}
