//! `Config::validate`: files, cross-key rules and addresses.

use std::fs;
use std::path::Path;

use portcullis_config::{Config, ConfigError, TokenConfig};

fn load(text: &str) -> Config {
    Config::from_yaml(text, "config.yml", &[]).unwrap().config
}

fn validate_errors(c: &Config) -> Vec<ConfigError> {
    c.validate().expect_err("expected validation errors").0
}

fn find<'a>(errors: &'a [ConfigError], key: &str) -> &'a ConfigError {
    errors
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no error for {key}: {errors:?}"))
}

#[test]
fn htpasswd_must_be_readable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/htpasswd");
    let text = format!(
        "version: 0.1\nstorage: inmemory\nauth:\n  htpasswd:\n    realm: r\n    path: {}\nhttp:\n  addr: 127.0.0.1:5000\n",
        missing.display()
    );
    let errors = validate_errors(&load(&text));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.key, "auth.htpasswd.path");
    assert_eq!(e.line, Some(6));
    let p = missing.display();
    assert_eq!(
        e.message,
        format!("cannot read {p}: No such file or directory")
    );
    assert_eq!(
        e.fix,
        format!(
            "create it with `portcullis user add NAME --htpasswd {p}` or `htpasswd -B -c {p} NAME`"
        )
    );
    assert!(
        e.to_string()
            .starts_with("config.yml:6: auth.htpasswd.path: cannot read"),
        "{e}"
    );

    fs::create_dir_all(missing.parent().unwrap()).unwrap();
    fs::write(&missing, "demo:$2y$05$abc\n").unwrap();
    load(&text).validate().unwrap();
}

#[test]
fn htpasswd_realm_and_path_required() {
    let c = load("version: 0.1\nstorage: inmemory\nauth:\n  htpasswd:\n");
    let errors = validate_errors(&c);
    assert_eq!(find(&errors, "auth.htpasswd.realm").line, Some(4));
    assert!(
        find(&errors, "auth.htpasswd.path")
            .message
            .contains("missing")
    );
}

#[test]
fn only_one_auth_method() {
    let c = load(
        "version: 0.1\nstorage: inmemory\nauth:\n  silly:\n    realm: r\n    service: s\n  htpasswd:\n    realm: r\n    path: Cargo.toml\n",
    );
    let errors = validate_errors(&c);
    let e = find(&errors, "auth");
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("htpasswd, silly"), "{e}");
}

#[test]
fn token_needs_fields_and_keys() {
    let c = load(
        "version: 0.1\nstorage: inmemory\nauth:\n  token:\n    realm: https://auth/token\n    signingalgorithms: [RS256, RS257]\nhttp:\n  addr: 127.0.0.1:5000\n",
    );
    let errors = validate_errors(&c);
    assert!(
        find(&errors, "auth.token.service")
            .message
            .contains("missing")
    );
    assert!(
        find(&errors, "auth.token.issuer")
            .message
            .contains("missing")
    );
    assert!(
        find(&errors, "auth.token")
            .message
            .contains("rootcertbundle nor jwks")
    );
    let e = find(&errors, "auth.token.signingalgorithms[1]");
    assert_eq!(e.line, Some(6));
    assert_eq!(errors.len(), 4, "{errors:?}");

    let mut c = Config::default();
    c.storage.inmemory = true;
    c.http.addr = "127.0.0.1:5000".into();
    c.auth.token = Some(TokenConfig {
        realm: "r".into(),
        service: "s".into(),
        issuer: "i".into(),
        jwks: Some("/no/such/jwks.json".into()),
        ..TokenConfig::default()
    });
    let errors = validate_errors(&c);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "auth.token.jwks");
    assert_eq!(errors[0].line, None);
}

#[test]
fn tls_files_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    fs::write(&cert, "x").unwrap();
    let text = format!(
        "version: 0.1\nstorage: inmemory\nhttp:\n  tls:\n    certificate: {}\n    key: {}/key.pem\n    minimumtls: tls1.4\n    ciphersuites:\n      - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA257\n",
        cert.display(),
        dir.path().display()
    );
    let errors = validate_errors(&load(&text));
    assert_eq!(find(&errors, "http.tls.key").line, Some(6));
    assert_eq!(find(&errors, "http.tls.minimumtls").line, Some(7));
    let e = find(&errors, "http.tls.ciphersuites[0]");
    assert!(
        e.message
            .contains("did you mean `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`"),
        "{e}"
    );
    assert_eq!(e.line, Some(8));
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn letsencrypt_alone_is_not_tls() {
    let loaded = Config::from_yaml(
        "version: 0.1\nstorage: inmemory\nhttp:\n  tls:\n    letsencrypt:\n      email: a@b.c\n",
        "config.yml",
        &[],
    )
    .unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    let errors = validate_errors(&loaded.config);
    assert!(
        find(&errors, "http.tls.certificate")
            .fix
            .contains("Let's Encrypt")
    );
}

#[test]
fn addresses() {
    for good in [
        ":5000",
        "0.0.0.0:5000",
        "127.0.0.1:5000",
        "[::1]:5000",
        "localhost:5000",
    ] {
        let c = load(&format!(
            "version: 0.1\nstorage: inmemory\nhttp:\n  addr: \"{good}\"\n"
        ));
        c.validate().unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in ["5000", "::1:5000", ":99999"] {
        let c = load(&format!(
            "version: 0.1\nstorage: inmemory\nhttp:\n  addr: \"{bad}\"\n"
        ));
        let errors = validate_errors(&c);
        assert_eq!(find(&errors, "http.addr").line, Some(4), "{bad}");
    }
    let c =
        load("version: 0.1\nstorage: inmemory\nhttp:\n  net: unix\n  addr: /no/such/dir/p.sock\n");
    assert!(
        find(&validate_errors(&c), "http.addr")
            .message
            .contains("does not exist")
    );
    let c = load("version: 0.1\nstorage: inmemory\nhttp:\n  net: unix\n  addr: /tmp/p.sock\n");
    c.validate().unwrap();
    let c = load("version: 0.1\nstorage: inmemory\nhttp:\n  host: registry.example.com\n");
    let errors = validate_errors(&c);
    assert_eq!(find(&errors, "http.host").line, Some(4));
}

#[test]
fn rootdirectory_must_be_usable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let text = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}/sub\n",
        file.display()
    );
    let errors = validate_errors(&load(&text));
    let e = find(&errors, "storage.filesystem.rootdirectory");
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("is not a directory"), "{e}");
    // A directory that does not exist yet is fine: it is created on first use.
    let text = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}/a/b\n",
        dir.path().display()
    );
    load(&text).validate().unwrap();
}

#[test]
fn unsupported_driver_fails_validation() {
    let c = load("version: 0.1\nstorage:\n  s3:\n    bucket: b\n");
    let errors = validate_errors(&c);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "storage.s3");
    assert_eq!(errors[0].line, Some(3));
}

#[test]
fn header_timeout_and_socket_mode() {
    let c = load("version: 0.1\nstorage: inmemory\nportcullis:\n  headertimeout: 5\n");
    let errors = validate_errors(&c);
    let e = find(&errors, "portcullis.headertimeout");
    assert_eq!(e.line, Some(4));
    assert!(e.to_string().contains("nanoseconds"), "{e}");
    let c = load("version: 0.1\nstorage: inmemory\nportcullis:\n  socketmode: \"rw-rw-\"\n");
    let errors = validate_errors(&c);
    let e = find(&errors, "portcullis.socketmode");
    assert_eq!(e.line, Some(4));
    let c = load(
        "version: 0.1\nstorage: inmemory\nportcullis:\n  socketmode: \"0660\"\n  headertimeout: 2m\n",
    );
    assert!(c.validate().is_ok());
    assert_eq!(c.portcullis.socket_mode(), Some(0o660));
    assert_eq!(
        c.portcullis.headertimeout,
        std::time::Duration::from_secs(120)
    );
}

#[test]
fn limits_and_version() {
    let c = load("version: 0.1\nstorage: inmemory\nportcullis:\n  manifestmaxbytes: 0\n");
    assert_eq!(
        find(&validate_errors(&c), "portcullis.manifestmaxbytes").line,
        Some(4)
    );
    let c = load(
        "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      interval: 0s\n",
    );
    assert_eq!(
        find(
            &validate_errors(&c),
            "storage.maintenance.uploadpurging.interval"
        )
        .line,
        Some(6)
    );
    let mut c = Config::default();
    c.storage.inmemory = true;
    c.validate().unwrap();
    c.version = "0.2".into();
    assert_eq!(validate_errors(&c)[0].key, "version");
    let mut c = Config::default();
    c.storage.inmemory = true;
    c.storage.filesystem = Some(Default::default());
    assert!(
        validate_errors(&c)[0]
            .message
            .contains("more than one storage driver")
    );
    assert!(
        validate_errors(&Config::default())[0]
            .message
            .contains("no storage driver")
    );
}

#[test]
fn relative_paths_resolve_against_base() {
    let c = load(
        "version: 0.1\nstorage: inmemory\nauth:\n  htpasswd:\n    realm: r\n    path: src/lib.rs\nhttp:\n  addr: 127.0.0.1:5000\n",
    );
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    c.validate_relative_to(manifest_dir).unwrap();
    let errors = c
        .validate_relative_to(Path::new("/nonexistent"))
        .unwrap_err();
    assert!(
        errors.0[0].message.contains("/nonexistent/src/lib.rs"),
        "{errors}"
    );
}

#[test]
fn plaintext_credentials_on_a_public_address_are_refused() {
    let auth = "auth:\n  silly:\n    realm: r\n    service: s\n";
    let with = |http: &str| {
        load(&format!(
            "version: 0.1\nstorage: inmemory\n{auth}http:\n{http}"
        ))
    };
    for http in [
        "  addr: :5000\n",
        "  addr: 0.0.0.0:5000\n",
        "  addr: 10.1.2.3:5000\n",
        "  addr: :5000\n  host: http://registry.example.com\n",
    ] {
        let errors = validate_errors(&with(http));
        let e = find(&errors, "http.addr");
        assert!(e.message.contains("plain HTTP"), "{e}");
        assert!(e.fix.contains("http.tls.certificate"), "{e}");
        assert!(e.fix.contains("https://"), "{e}");
        assert!(e.fix.contains("http.insecureplaintextcredentials"), "{e}");
    }
    for http in [
        "  addr: 127.0.0.1:5000\n",
        "  addr: 127.5.6.7:5000\n",
        "  addr: \"[::1]:5000\"\n",
        "  addr: localhost:5000\n",
        "  addr: :5000\n  host: https://registry.example.com\n",
        "  addr: :5000\n  insecureplaintextcredentials: true\n",
        "  net: unix\n  addr: /tmp/portcullis-guardrail.sock\n",
    ] {
        with(http)
            .validate()
            .unwrap_or_else(|e| panic!("{http}: {e}"));
    }
    // Without auth, plain HTTP anywhere is fine.
    load("version: 0.1\nstorage: inmemory\nhttp:\n  addr: :5000\n")
        .validate()
        .unwrap();
}

#[test]
fn trusted_proxies_must_be_addresses_or_cidrs() {
    let c = load(
        "version: 0.1\nstorage: inmemory\nhttp:\n  addr: :5000\n  trustedproxies: [10.0.0.0/8, 192.168.1.1, \"fd00::/8\", nginx, 10.0.0.0/33]\n",
    );
    let errors = validate_errors(&c);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].key, "http.trustedproxies[3]");
    assert_eq!(errors[1].key, "http.trustedproxies[4]");
}

#[test]
fn debug_listener_address_and_metrics_path() {
    let with = |debug: &str| {
        load(&format!(
            "version: 0.1\nstorage: inmemory\nhttp:\n  addr: :5000\n  debug:\n{debug}"
        ))
    };
    for good in [
        "    addr: localhost:5001\n    prometheus:\n      enabled: true\n",
        "    addr: 127.0.0.1:5001\n    prometheus:\n      enabled: true\n      path: /internal/metrics\n",
        "    addr: \"[::1]:0\"\n",
        // No address: no debug listener, as in distribution.
        "    prometheus:\n      enabled: true\n",
        // An empty path means /metrics.
        "    addr: :5001\n    prometheus:\n      path: \"\"\n",
    ] {
        with(good)
            .validate()
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    let c = with("    addr: localhost\n");
    let errors = validate_errors(&c);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = find(&errors, "http.debug.addr");
    assert_eq!(e.line, Some(6));
    assert!(e.message.contains("has no port"), "{e}");
    assert!(e.fix.contains("localhost:5001"), "{e}");
    assert!(
        e.to_string().starts_with("config.yml:6: http.debug.addr:"),
        "{e}"
    );

    let c = with("    addr: \"::1:5001\"\n");
    assert!(
        find(&validate_errors(&c), "http.debug.addr")
            .message
            .contains("[::1]:5001")
    );

    for bad in ["metrics", "/met rics", "/metrics?x=1"] {
        let c = with(&format!(
            "    addr: localhost:5001\n    prometheus:\n      enabled: true\n      path: \"{bad}\"\n"
        ));
        let errors = validate_errors(&c);
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        let e = find(&errors, "http.debug.prometheus.path");
        assert_eq!(e.line, Some(9), "{bad}");
        assert!(e.message.contains(bad), "{e}");
        assert!(e.fix.contains("starting with `/`"), "{e}");
    }
}

#[test]
fn debug_keys_are_checked_when_loading() {
    let errors = Config::from_yaml(
        "version: 0.1\nstorage: inmemory\nhttp:\n  debug:\n    addr: :5001\n    prometheus:\n      enabled: maybe\n    pprof:\n      enabled: true\n",
        "config.yml",
        &[],
    )
    .unwrap_err()
    .0;
    let enabled = find(&errors, "http.debug.prometheus.enabled");
    assert_eq!(enabled.line, Some(7));
    let unknown = find(&errors, "http.debug.pprof");
    assert_eq!(unknown.line, Some(8));
    assert_eq!(unknown.message, "unknown key");

    // The environment sets them too.
    let loaded = Config::from_yaml(
        "version: 0.1\nstorage: inmemory\n",
        "config.yml",
        &[
            (
                "REGISTRY_HTTP_DEBUG_ADDR".to_owned(),
                "localhost:5001".to_owned(),
            ),
            (
                "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED".to_owned(),
                "true".to_owned(),
            ),
        ],
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let debug = loaded.config.http.debug.as_ref().unwrap();
    assert_eq!(debug.addr, "localhost:5001");
    assert!(debug.prometheus.enabled);
    assert_eq!(debug.prometheus.path, "/metrics");
    let c = Config::from_yaml(
        "version: 0.1\nstorage: inmemory\n",
        "config.yml",
        &[("REGISTRY_HTTP_DEBUG_ADDR".to_owned(), "nope".to_owned())],
    )
    .unwrap()
    .config;
    let e = find(&validate_errors(&c), "http.debug.addr").clone();
    assert_eq!(e.line, None);
    assert!(e.to_string().contains("REGISTRY_HTTP_DEBUG_ADDR"), "{e}");
}

#[test]
fn token_lifetimes_under_60s_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    fs::write(&users, "demo:$2y$05$abc\n").unwrap();
    let config = |expiration: &str| {
        load(&format!(
            "version: 0.1\nstorage: inmemory\nhttp:\n  addr: 127.0.0.1:5000\nauth:\n  htpasswd:\n    realm: r\n    path: {}\n  tokenserver:\n    expiration: {expiration}\n",
            users.display()
        ))
    };
    for (written, shown) in [("5", "5ns"), ("30s", "30s"), ("59s", "59s"), ("0", "0s")] {
        let errors = validate_errors(&config(written));
        let e = find(&errors, "auth.tokenserver.expiration");
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains(&format!("`{shown}`")), "{e}");
        assert!(
            e.message.contains("Docker") && e.message.contains("60 s"),
            "{e}"
        );
        assert!(e.message.contains("nanoseconds"), "{e}");
        assert!(e.fix.contains("5m"), "{e}");
    }
    for ok in ["60s", "5m", "1h", "2s\n    allowshortexpiration: true"] {
        config(ok).validate().unwrap();
    }
}

#[test]
fn audit_rate_limits_and_lockout_are_read_and_checked_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let good = format!(
        "version: 0.1\nstorage: inmemory\nhttp:\n  addr: 127.0.0.1:5000\naudit:\n  file:\n    path: {}\n    maxbytes: 1048576\n  pulls: sample:10\nratelimit:\n  pull: {{limit: 100, window: 6h}}\n  overrides:\n    - users: [ci]\n      exempt: true\nlockout:\n  lockafter: 10\n",
        log.display()
    );
    let c = load(&good);
    c.validate().expect("valid");
    assert_eq!(c.audit.file.as_ref().unwrap().maxbytes, Some(1_048_576));
    let pull = c.ratelimit.pull.unwrap();
    assert_eq!(
        (pull.limit, pull.window),
        (100, std::time::Duration::from_secs(6 * 3600))
    );
    assert!(c.ratelimit.overrides[0].exempt);
    assert_eq!(c.lockout.lockafter, 10);
    assert_eq!(c.lockout.free, 5, "defaults fill the rest");

    let bad = format!(
        "version: 0.1\nstorage: inmemory\nhttp:\n  addr: 127.0.0.1:5000\naudit:\n  file:\n    path: {}/nodir/audit.log\n  pulls: some\nratelimit:\n  push: {{limit: 0, window: 1m}}\n  overrides:\n    - cidrs: [10.0.0.0/33]\nlockout:\n  free: 30\n",
        dir.path().display()
    );
    let errors = validate_errors(&load(&bad));
    assert!(find(&errors, "audit.file.path").fix.contains("mkdir -p"));
    assert_eq!(find(&errors, "audit.pulls").line, Some(8));
    find(&errors, "ratelimit.push.limit");
    find(&errors, "ratelimit.overrides[0].cidrs[0]");
    find(&errors, "lockout.lockafter");
    assert_eq!(errors.len(), 5, "{errors:?}");
}
