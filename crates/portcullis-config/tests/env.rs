//! `REGISTRY_*` environment overrides.

use std::path::Path;

use portcullis_config::{Config, ConfigErrors, ExposeSecret, Loaded, StorageDriver};

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigErrors> {
    Config::from_yaml(text, "config.yml", &env(vars))
}

const BASE: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n";

#[test]
fn scalar_overrides() {
    let loaded = load(
        BASE,
        &[
            ("REGISTRY_HTTP_ADDR", ":6000"),
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/data"),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
            ("REGISTRY_HTTP_SECRET", "s3cret"),
            ("REGISTRY_LOG_LEVEL", "debug"),
            ("REGISTRY_PORTCULLIS_AUTOMOUNT", "true"),
            ("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", "1h30m"),
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.http.addr, ":6000");
    assert_eq!(
        c.storage.filesystem.unwrap().rootdirectory,
        Path::new("/data")
    );
    assert!(c.storage.delete.enabled);
    assert_eq!(
        c.http.secret.as_ref().map(ExposeSecret::expose_secret),
        Some("s3cret")
    );
    assert_eq!(c.log.level.as_str(), "debug");
    assert!(c.portcullis.automount);
    assert_eq!(c.storage.maintenance.uploadpurging.age.as_secs(), 5400);
}

#[test]
fn creates_missing_sections() {
    let c = load(
        BASE,
        &[
            ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
            ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
        ],
    )
    .unwrap()
    .config;
    let htpasswd = c.auth.htpasswd.unwrap();
    assert_eq!(htpasswd.path, Path::new("/auth/htpasswd"));
    assert_eq!(htpasswd.realm, "Registry Realm");
}

#[test]
fn inline_map_value() {
    let c = load(
        BASE,
        &[(
            "REGISTRY_STORAGE_MAINTENANCE_READONLY",
            r#"{"enabled": true}"#,
        )],
    )
    .unwrap()
    .config;
    assert!(c.storage.maintenance.readonly.enabled);
    // A longer variable is applied after the shorter one and refines it.
    let c = load(
        BASE,
        &[
            ("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED", "false"),
            ("REGISTRY_STORAGE_MAINTENANCE_READONLY", "{enabled: true}"),
        ],
    )
    .unwrap()
    .config;
    assert!(!c.storage.maintenance.readonly.enabled);
}

#[test]
fn free_form_maps() {
    let c = load(BASE, &[("REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS", "[DENY]")])
        .unwrap()
        .config;
    assert_eq!(c.http.headers["x-frame-options"], vec!["DENY"]);
    // An existing key is matched whatever its case.
    let text = "version: 0.1\nstorage: inmemory\nhttp:\n  headers:\n    X-Content-Type-Options: [nosniff]\n";
    let c = load(
        text,
        &[("REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS", "[other]")],
    )
    .unwrap()
    .config;
    assert_eq!(c.http.headers.len(), 1);
    assert_eq!(c.http.headers["X-Content-Type-Options"], vec!["other"]);
}

#[test]
fn unknown_variable_names_nearest() {
    let err = load(BASE, &[("REGISTRY_HTTP_ADR", ":6000")]).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let e = &err.0[0];
    assert_eq!(e.key, "REGISTRY_HTTP_ADR");
    assert_eq!(e.line, None);
    assert_eq!(e.nearest.as_deref(), Some("REGISTRY_HTTP_ADDR"));
    assert!(
        e.to_string().contains("did you mean `REGISTRY_HTTP_ADDR`?"),
        "{e}"
    );

    let err = load(BASE, &[("REGISTRY_AUTH_HTPASSWD_PAHT", "/x")]).unwrap_err();
    assert_eq!(
        err.0[0].nearest.as_deref(),
        Some("REGISTRY_AUTH_HTPASSWD_PATH"),
        "{err}"
    );
    // A scalar key has nothing inside it.
    let err = load(BASE, &[("REGISTRY_HTTP_ADDR_PORT", "1")]).unwrap_err();
    assert_eq!(err.0[0].key, "REGISTRY_HTTP_ADDR_PORT", "{err}");
}

#[test]
fn wrong_type_names_variable() {
    let err = load(BASE, &[("REGISTRY_STORAGE_DELETE_ENABLED", "maybe")]).unwrap_err();
    let e = &err.0[0];
    assert_eq!(e.key, "storage.delete.enabled");
    assert_eq!(e.source, "env REGISTRY_STORAGE_DELETE_ENABLED");
    assert_eq!(e.line, None);
    assert!(
        e.to_string().starts_with(
            "env REGISTRY_STORAGE_DELETE_ENABLED: storage.delete.enabled: expected true or false"
        ),
        "{e}"
    );
}

#[test]
fn env_driver_replaces_file_driver() {
    let loaded = load(BASE, &[("REGISTRY_STORAGE", "inmemory")]).unwrap();
    assert_eq!(
        loaded.config.storage.driver(),
        Some(StorageDriver::InMemory)
    );
    assert!(
        loaded.warnings[0].contains("replaces `filesystem`"),
        "{:?}",
        loaded.warnings
    );

    let text = "version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: true\n";
    let c = load(
        text,
        &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/data")],
    )
    .unwrap()
    .config;
    match c.storage.driver() {
        Some(StorageDriver::Filesystem(fs)) => assert_eq!(fs.rootdirectory, Path::new("/data")),
        other => panic!("{other:?}"),
    }
    // The file's other storage settings stay.
    assert!(c.storage.delete.enabled);
}

#[test]
fn env_alone_can_configure_storage() {
    let c = load(
        "version: 0.1\n",
        &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/data")],
    )
    .unwrap()
    .config;
    assert!(c.storage.filesystem.is_some());
}

#[test]
fn ignored_key_from_env_warns() {
    let loaded = load(BASE, &[("REGISTRY_REDIS_ADDR", "localhost:6379")]).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0].starts_with("env REGISTRY_REDIS_ADDR: redis: accepted"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn kubernetes_service_links_only_warn() {
    let loaded = load(
        BASE,
        &[
            ("REGISTRY_PORT", "tcp://10.0.0.1:5000"),
            ("REGISTRY_PORT_5000_TCP_ADDR", "10.0.0.1"),
            ("REGISTRY_SERVICE_HOST", "10.0.0.1"),
        ],
    )
    .unwrap();
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("Kubernetes"));
}

#[test]
fn bad_yaml_value_is_an_error() {
    let err = load(BASE, &[("REGISTRY_HTTP_HEADERS", "{a: [")]).unwrap_err();
    assert_eq!(err.0[0].source, "env REGISTRY_HTTP_HEADERS", "{err}");
}

#[test]
fn errors_from_file_and_env_are_all_reported() {
    let text = "version: 0.1\nstorage: inmemory\nhttp:\n  adr: x\n";
    let err = load(text, &[("REGISTRY_HTTP_NETT", "tcp")]).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
}
