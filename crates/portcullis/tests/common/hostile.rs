//! Hostile bearer tokens: each differs from a valid token in one way (alg
//! `none`, HMAC keyed with public material, an unknown or untrusted key,
//! a wrong claim, bad base64, an oversized token, ...), and a check that a
//! registry refuses every one of them with a 401, a JSON body and
//! `error="invalid_token"`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::registry::{Registry, RegistryKind};
use super::token::{
    TestKey, b64url, check_refused, claims, now_secs, parse_scopes, repository, send, sign_hs256,
};

/// The name of the [`hostile_tokens`] entry that is too large (and
/// otherwise valid).
pub const OVERSIZED: &str = "100 kB token, otherwise valid";

/// Hostile tokens for a registry that trusts `trusted` and expects `iss`
/// and `aud`, each named. All claim `pull,push` on `repo`.
///
/// Those signed by `trusted` differ from a valid token in one way only
/// (the claim, the header or the size named), so a refusal proves that
/// check; `untrusted` signs the "wrong key" ones.
pub fn hostile_tokens(
    trusted: &TestKey,
    untrusted: &TestKey,
    iss: &str,
    aud: &str,
    repo: &str,
) -> Vec<(String, String)> {
    let access = vec![repository(repo, &["pull", "push"])];
    let good = claims(iss, aud, "mallory", access.clone(), 300);
    let good_json = serde_json::to_value(&good).expect("claims are JSON");
    let valid = trusted.issue(&good);
    let parts: Vec<&str> = valid.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let es256 = json!({"alg": "ES256", "typ": "JWT", "kid": trusted.kid(), "x5c": trusted.x5c()});
    let enc = |v: &Value| b64url(v.to_string().as_bytes());
    let now = now_secs();
    let with = |changes: Value| {
        let mut claims = good_json.clone();
        for (k, v) in changes.as_object().expect("object") {
            if v.is_null() {
                claims.as_object_mut().expect("object").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        trusted.sign_raw(&es256, &claims)
    };
    let untrusted_jwk = {
        let set = portcullis_auth::token::KeySet::new(untrusted.key.clone(), Vec::new());
        let mut jwk = set.jwks()["keys"][0].clone();
        let obj = jwk.as_object_mut().expect("jwk object");
        obj.remove("x5c");
        obj.remove("kid");
        jwk
    };
    let none = enc(&json!({"alg": "none", "typ": "JWT"}));
    let list: Vec<(&str, String)> =
        vec![
        ("alg none, empty signature", format!("{none}.{payload}.")),
        ("alg none, two parts", format!("{none}.{payload}")),
        (
            "alg None",
            format!("{}.{payload}.", enc(&json!({"alg": "None", "typ": "JWT"}))),
        ),
        (
            "alg none with a valid token's signature",
            format!("{none}.{payload}.{signature}"),
        ),
        (
            "HS256 keyed with the trusted certificate PEM",
            sign_hs256(
                &json!({"alg": "HS256", "typ": "JWT", "kid": trusted.kid()}),
                &good_json,
                trusted.cert_pem().as_bytes(),
            ),
        ),
        (
            "HS256 keyed with the trusted certificate DER, with x5c",
            sign_hs256(
                &json!({"alg": "HS256", "typ": "JWT", "x5c": trusted.x5c()}),
                &good_json,
                &trusted.key.chain_der()[0],
            ),
        ),
        (
            "unknown kid (untrusted key, no x5c)",
            portcullis_auth::token::issue_with(
                &untrusted.key,
                &good,
                portcullis_auth::token::IssueOptions { include_x5c: false },
            )
            .expect("sign token"),
        ),
        ("untrusted x5c certificate", untrusted.issue(&good)),
        (
            "trusted kid, signed by an untrusted key",
            untrusted.sign_raw(
                &json!({"alg": "ES256", "typ": "JWT", "kid": trusted.kid()}),
                &good_json,
            ),
        ),
        (
            "trusted x5c, signed by an untrusted key",
            untrusted.sign_raw(&es256, &good_json),
        ),
        (
            "embedded jwk of an untrusted key",
            untrusted.sign_raw(
                &json!({"alg": "ES256", "typ": "JWT", "jwk": untrusted_jwk}),
                &good_json,
            ),
        ),
        (
            "claims swapped under a valid signature",
            format!(
                "{header}.{}.{signature}",
                enc(&json!({
                    "iss": iss, "aud": aud, "sub": "mallory", "exp": now + 300, "nbf": now - 60,
                    "iat": now, "jti": "swapped",
                    "access": [{"type": "repository", "name": "*", "actions": ["*"]}],
                }))
            ),
        ),
        (
            "alg RS256 over an ES256 signature",
            trusted.sign_raw(
                &json!({"alg": "RS256", "typ": "JWT", "kid": trusted.kid(), "x5c": trusted.x5c()}),
                &good_json,
            ),
        ),
        ("wrong aud", with(json!({"aud": format!("{aud}-other")}))),
        ("wrong iss", with(json!({"iss": format!("{iss}-other")}))),
        (
            "expired an hour ago",
            with(json!({"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200})),
        ),
        (
            "nbf an hour ahead",
            with(json!({"nbf": now + 3600, "exp": now + 7200})),
        ),
        ("no exp", with(json!({"exp": null}))),
        ("bad base64 in the header", format!("{header}*.{payload}.{signature}")),
        ("bad base64 in the payload", format!("{header}.{payload}*.{signature}")),
        ("bad base64 in the signature", format!("{header}.{payload}.{signature}*")),
        (
            "padding after the header",
            format!("{header}==.{payload}.{signature}"),
        ),
        (
            OVERSIZED,
            with(json!({"pad": "A".repeat(100 * 1024)})),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
        ("four parts", format!("{valid}.{signature}")),
        ("empty parts", "..".to_owned()),
    ];
    assert_ne!(untrusted.kid(), trusted.kid(), "two keys, please");
    list.into_iter()
        .map(|(name, token)| (name.to_owned(), token))
        .collect()
}

/// Checks a registry that trusts `trusted` for `iss`/`aud`: a valid token
/// minted by the test is accepted on `/v2/` and on `repo`, and every
/// [`hostile_tokens`] entry (plus `extra`) is refused on both with a 401,
/// a JSON body and `error="invalid_token"`. Collects every failure before
/// panicking, so one run shows them all.
pub fn check_hostile_tokens(
    registry: &Registry,
    trusted: &TestKey,
    untrusted: &TestKey,
    iss: &str,
    aud: &str,
    repo: &str,
    extra: Vec<(String, String)>,
) {
    let valid = trusted.issue(&claims(
        iss,
        aud,
        "mallory",
        vec![repository(repo, &["pull", "push"])],
        300,
    ));
    let tags = registry.url(&format!("/v2/{repo}/tags/list"));
    let base = registry.url("/v2/");
    send(reqwest::Method::GET, &base, Some(&valid), &[], None)
        .expect("a valid token minted by the test on GET /v2/", 200);
    let reply = send(reqwest::Method::GET, &tags, Some(&valid), &[], None);
    assert!(
        matches!(reply.status, 200 | 404),
        "a valid token minted by the test on GET {tags}: expected 200 or 404, got {reply}"
    );

    let mut failures = Vec::new();
    let mut tokens = hostile_tokens(trusted, untrusted, iss, aud, repo);
    tokens.extend(extra);
    if registry.kind() == RegistryKind::Reference {
        // The size limit is portcullis's policy: distribution accepts a
        // well-signed token of any size.
        tokens.retain(|(name, _)| name != OVERSIZED);
    }
    for (name, token) in &tokens {
        for url in [&base, &tags] {
            let reply = send(reqwest::Method::GET, url, Some(token), &[], None);
            let problem = match check_refused(&reply, Some("invalid_token")) {
                Err(why) => Some(why),
                Ok(challenge)
                    if url == &tags
                        && challenge.scopes()
                            != parse_scopes(&format!("repository:{repo}:pull")) =>
                {
                    Some(format!(
                        "the challenge's scope is not repository:{repo}:pull: {reply}"
                    ))
                }
                Ok(_) => None,
            };
            if let Some(why) = problem {
                failures.push(format!("GET {url} with {name}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile-token requests were not refused properly:\n{}",
        failures.len(),
        tokens.len() * 2,
        failures.join("\n")
    );
}
