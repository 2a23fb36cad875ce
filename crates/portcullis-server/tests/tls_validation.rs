//! Startup checks of `http.tls`: each problem gives a precise message that
//! names the key, the file and the fix.

#[path = "tls_pki.rs"]
mod pki;

use std::path::Path;

use pki::{ca, ca_signed, leaf_with, path_str, server, write};
use portcullis_config::{Config, TlsConfig};
use portcullis_server::tls::{TlsSettings, load};
use time::OffsetDateTime;

fn tls(dir: &Path, cert: &str, key: &str) -> TlsConfig {
    TlsConfig {
        certificate: path_str(&write(dir, "server.crt", cert)),
        key: path_str(&write(dir, "server.key", key)),
        ..TlsConfig::default()
    }
}

fn check(tls: &TlsConfig, host: Option<&str>) -> Result<Vec<String>, String> {
    let settings = TlsSettings::from_config(tls, host).map_err(|e| e.to_string())?;
    load(&settings, OffsetDateTime::now_utc())
        .map(|l| l.warnings)
        .map_err(|e| e.to_string())
}

#[test]
fn a_good_certificate_loads_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["registry.example", "127.0.0.1"]);
    let cfg = tls(
        dir.path(),
        &format!("{}{}", leaf.pem, ca.pem),
        &leaf.key_pem,
    );
    assert_eq!(
        check(&cfg, Some("https://registry.example:5000")).unwrap(),
        Vec::<String>::new()
    );
    // An IP address in http.host is matched against IP SANs.
    check(&cfg, Some("https://127.0.0.1:5000/")).unwrap();
    // A plain-http host (TLS terminated elsewhere) is not checked.
    check(&cfg, Some("http://elsewhere.example")).unwrap();
}

#[test]
fn missing_files_name_the_key_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["localhost"]);
    let mut cfg = tls(dir.path(), &leaf.pem, &leaf.key_pem);
    cfg.certificate = path_str(&dir.path().join("nope.crt"));
    let e = check(&cfg, None).unwrap_err();
    assert!(e.starts_with("http.tls.certificate: cannot read "), "{e}");
    assert!(e.contains("nope.crt") && e.contains("no such file"), "{e}");

    let mut cfg = tls(dir.path(), &leaf.pem, &leaf.key_pem);
    cfg.key = path_str(&dir.path().join("nope.key"));
    let e = check(&cfg, None).unwrap_err();
    assert!(
        e.starts_with("http.tls.key: cannot read ") && e.contains("nope.key"),
        "{e}"
    );

    let mut cfg = tls(dir.path(), &leaf.pem, &leaf.key_pem);
    cfg.clientcas = vec![path_str(&dir.path().join("nope-ca.pem"))];
    let e = check(&cfg, None).unwrap_err();
    assert!(e.starts_with("http.tls.clientcas[0]: cannot read "), "{e}");
}

#[test]
fn files_without_pem_contents_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["localhost"]);
    // Certificate and key swapped.
    let cfg = tls(dir.path(), &leaf.key_pem, &leaf.pem);
    let e = check(&cfg, None).unwrap_err();
    assert!(
        e.starts_with("http.tls.certificate:") && e.contains("contains no certificate"),
        "{e}"
    );
    let cfg = tls(dir.path(), &leaf.pem, &leaf.pem);
    let e = check(&cfg, None).unwrap_err();
    assert!(
        e.starts_with("http.tls.key:") && e.contains("no usable private key"),
        "{e}"
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let a = server(&ca, &["localhost"]);
    let b = server(&ca, &["localhost"]);
    let cfg = tls(dir.path(), &a.pem, &b.key_pem);
    let e = check(&cfg, None).unwrap_err();
    assert!(e.starts_with("http.tls.key:"), "{e}");
    assert!(e.contains("does not match the certificate"), "{e}");
    assert!(e.contains("server.key") && e.contains("server.crt"), "{e}");
}

#[test]
fn expired_and_not_yet_valid_certificates_give_dates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let old = leaf_with(&ca, &["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    });
    let e = check(&tls(dir.path(), &old.pem, &old.key_pem), None).unwrap_err();
    assert!(e.contains("expired on 2020-01-01"), "{e}");
    assert!(e.contains("valid from 2019-01-01"), "{e}");
    // The fix is a command for the same names, once.
    let dir_text = dir.path().display().to_string();
    assert!(
        e.contains(&format!(
            "portcullis cert generate --ca {dir_text} --out {dir_text} --host localhost"
        )),
        "{e}"
    );
    assert_eq!(e.matches("expired on").count(), 1, "{e}");

    let future = leaf_with(&ca, &["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2098, 1, 1);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    });
    let e = check(&tls(dir.path(), &future.pem, &future.key_pem), None).unwrap_err();
    assert!(e.contains("not valid yet: valid from 2098-01-01"), "{e}");
}

#[test]
fn expiry_soon_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let soon = leaf_with(&ca, &["localhost"], |p| {
        p.not_after = OffsetDateTime::now_utc() + time::Duration::days(10);
    });
    let chain = format!("{}{}", soon.pem, ca.pem);
    let mut cfg = tls(dir.path(), &chain, &soon.key_pem);
    let warnings = check(&cfg, None).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("expires on") && w.contains("in 9 days")),
        "{warnings:?}"
    );
    cfg.expirywarning = Some(std::time::Duration::from_secs(24 * 3600));
    assert!(check(&cfg, None).unwrap().is_empty());
}

#[test]
fn a_host_missing_from_the_sans_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["localhost", "127.0.0.1"]);
    let cfg = tls(dir.path(), &leaf.pem, &leaf.key_pem);
    let e = check(&cfg, Some("https://registry.example:5000")).unwrap_err();
    assert!(e.starts_with("http.tls.certificate:"), "{e}");
    assert!(e.contains("not valid for `registry.example`"), "{e}");
    assert!(e.contains("names only: localhost, 127.0.0.1"), "{e}");

    let wildcard = server(&ca, &["*.example"]);
    let cfg = tls(dir.path(), &wildcard.pem, &wildcard.key_pem);
    check(&cfg, Some("https://registry.example")).unwrap();
    assert!(check(&cfg, Some("https://a.registry.example")).is_err());
}

#[test]
fn an_incomplete_chain_asks_for_the_intermediates() {
    let dir = tempfile::tempdir().unwrap();
    let root = ca("Root CA");
    let intermediate = ca_signed("Intermediate CA", Some(&root));
    let leaf = leaf_with(&intermediate, &["localhost"], |p| {
        p.custom_extensions = vec![pki::aia_extension()];
    });
    let e = check(&tls(dir.path(), &leaf.pem, &leaf.key_pem), None).unwrap_err();
    assert!(e.contains("chain"), "{e}");
    assert!(
        e.contains("incomplete") && e.contains("Intermediate CA"),
        "{e}"
    );
    assert!(e.contains("append the intermediate certificates"), "{e}");
    // With the intermediate appended, it loads.
    let full = format!("{}{}", leaf.pem, intermediate.pem);
    assert!(
        check(&tls(dir.path(), &full, &leaf.key_pem), None)
            .unwrap()
            .is_empty()
    );
    // A private CA that signs leaves directly: a warning, not an error.
    let direct = server(&root, &["localhost"]);
    let warnings = check(&tls(dir.path(), &direct.pem, &direct.key_pem), None).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("append the intermediate")),
        "{warnings:?}"
    );
}

#[test]
fn unsupported_settings_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let leaf = server(&ca, &["localhost"]);
    let base = tls(dir.path(), &leaf.pem, &leaf.key_pem);

    let mut cfg = base.clone();
    cfg.minimumtls = Some("tls1.1".into());
    let e = check(&cfg, None).unwrap_err();
    assert!(
        e.starts_with("http.tls.minimumtls:") && e.contains("rustls"),
        "{e}"
    );

    let mut cfg = base.clone();
    cfg.ciphersuites = vec![
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
        "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
    ];
    let e = check(&cfg, None).unwrap_err();
    assert!(e.starts_with("http.tls.ciphersuites[1]:"), "{e}");
    assert!(e.contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{e}");

    let mut cfg = base.clone();
    cfg.clientauth = Some("optional".into());
    let e = check(&cfg, None).unwrap_err();
    assert!(
        e.starts_with("http.tls.clientauth:") && e.contains("clientcas"),
        "{e}"
    );

    let mut cfg = base;
    cfg.minimumtls = Some("tls1.3".into());
    cfg.ciphersuites = vec!["TLS_AES_256_GCM_SHA384".into()];
    check(&cfg, None).unwrap();
}

#[tokio::test]
async fn serve_refuses_to_start_with_a_bad_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let a = server(&ca, &["localhost"]);
    let b = server(&ca, &["localhost"]);
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.http.tls = Some(tls(dir.path(), &a.pem, &b.key_pem));
    let e = portcullis_server::serve(&config, |_| panic!("must not bind"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("http.tls.key:") && e.contains("does not match"),
        "{e}"
    );
}
