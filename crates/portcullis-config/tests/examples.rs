//! Every example configuration under docs/examples loads and validates.

use std::fs;
use std::path::{Path, PathBuf};

use portcullis_config::{Config, StorageDriver};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples() -> Vec<PathBuf> {
    let dir = workspace_root().join("docs/examples");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_loads_and_validates() {
    let files = examples();
    assert!(files.len() >= 3, "{files:?}");
    let root = workspace_root();
    for file in files {
        let loaded =
            Config::load(&file, &[]).unwrap_or_else(|e| panic!("{}:\n{e}", file.display()));
        loaded
            .config
            .validate_relative_to(&root)
            .unwrap_or_else(|e| panic!("{}:\n{e}", file.display()));
    }
}

#[test]
fn distribution_example_has_warnings_only() {
    let loaded = Config::load(
        &workspace_root().join("docs/examples/config-distribution.yml"),
        &[],
    )
    .unwrap();
    let w = loaded.warnings.join("\n");
    assert_eq!(loaded.warnings.len(), 3, "{w}");
    assert!(w.contains("log.fields"), "{w}");
    assert!(w.contains("storage.cache"), "{w}");
    assert!(w.contains("health"), "{w}");
    let c = loaded.config;
    assert_eq!(c.http.headers["X-Content-Type-Options"], vec!["nosniff"]);
    assert!(matches!(
        c.storage.driver(),
        Some(StorageDriver::Filesystem(_))
    ));
}

#[test]
fn htpasswd_example() {
    let loaded = Config::load(
        &workspace_root().join("docs/examples/config-htpasswd.yml"),
        &[],
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert!(c.storage.delete.enabled);
    assert_eq!(
        c.auth.htpasswd.unwrap().path,
        Path::new("docs/examples/htpasswd")
    );
    assert!(!c.http.headers.is_empty());
}

#[test]
fn missing_file_names_path() {
    let err = Config::load(Path::new("/no/such/config.yml"), &[]).unwrap_err();
    assert!(err.to_string().contains("/no/such/config.yml"), "{err}");
}
