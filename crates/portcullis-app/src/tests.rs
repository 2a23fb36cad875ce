//! `Backends::assemble` over small configurations: which mode, which
//! realm, and that a setting it cannot honour names its key.

use super::*;

fn config(yaml: &str) -> Config {
    Config::from_yaml(
        &format!("version: 0.1\nstorage: inmemory\n{yaml}"),
        "t.yml",
        &[],
    )
    .unwrap()
    .config
}

fn bearer(b: &Backends) -> &BearerSetup {
    match &b.auth {
        Authentication::Bearer(bearer) => bearer,
        _ => panic!("not bearer mode"),
    }
}

#[test]
fn without_auth_everyone_may_do_everything() {
    let b = Backends::assemble(&config("")).unwrap();
    assert!(matches!(b.auth, Authentication::None));
    assert!(!b.enforce_policy);
    assert!(b.token_service.is_none());
    assert!(b.event_sinks().is_empty());
    assert!(b.lockout.is_some(), "lockout is on by default");
}

#[test]
fn htpasswd_alone_is_basic_with_its_realm() {
    let b = Backends::assemble(&config(
        "auth:\n  htpasswd:\n    realm: r\n    path: /dev/null\n",
    ))
    .unwrap();
    assert!(matches!(&b.auth, Authentication::Basic { realm } if realm == "r"));
    assert!(b.enforce_policy);
}

#[test]
fn the_token_server_challenges_with_its_own_realm() {
    let ts = "auth:\n  htpasswd:\n    realm: r\n    path: /dev/null\n  tokenserver:\n    issuer: i\n    service: svc\n";
    let b = Backends::assemble(&config(ts)).unwrap();
    assert!(b.token_service.is_some());
    let setup = bearer(&b);
    assert_eq!(
        (setup.realm.as_deref(), setup.realm_path.as_str()),
        (None, "/token")
    );
    assert_eq!(setup.service, "svc");
    let hosted = config(&format!(
        "http:\n  host: https://reg.example/\n  prefix: /r/\n{ts}"
    ));
    let b = Backends::assemble(&hosted).unwrap();
    assert_eq!(
        bearer(&b).realm.as_deref(),
        Some("https://reg.example/r/token")
    );
}

#[test]
fn an_external_issuer_alone_uses_its_realm_and_service() {
    let t =
        "auth:\n  token:\n    realm: https://auth.example/token\n    service: reg\n    issuer: i\n";
    let b = Backends::assemble(&config(t)).unwrap();
    assert!(b.token_service.is_none());
    let setup = bearer(&b);
    assert_eq!(setup.realm.as_deref(), Some("https://auth.example/token"));
    assert_eq!(setup.service, "reg");
    let redirect = config(&format!("{t}    autoredirect: true\n"));
    let b = Backends::assemble(&redirect).unwrap();
    let setup = bearer(&b);
    assert_eq!(
        (setup.realm.as_deref(), setup.realm_path.as_str()),
        (None, "/auth/token")
    );
}

#[test]
fn what_cannot_be_honoured_names_its_key() {
    let Err(e) = Backends::assemble(&config("auth:\n  silly:\n    realm: r\n    service: s\n"))
    else {
        panic!("auth.silly was accepted")
    };
    assert_eq!(e.key, "auth.silly");
    let Err(e) = Backends::assemble(&config(
        "auth:\n  htpasswd:\n    realm: r\n    path: /nonexistent/htpasswd\n",
    )) else {
        panic!("a missing htpasswd file was accepted")
    };
    assert_eq!(e.key, "auth.htpasswd.path");
    let algs = "auth:\n  token:\n    realm: x\n    service: s\n    issuer: i\n    signingalgorithms: [HS256]\n";
    let Err(e) = Backends::assemble(&config(algs)) else {
        panic!("an unusable algorithm list was accepted")
    };
    assert_eq!(
        e.to_string(),
        "auth.token.signingalgorithms: none of the listed algorithms is supported; use ES256, RS256 or EdDSA"
    );
}
