//! 200 pushes with skopeo (Go's net/http, which keeps connections alive)
//! to a Basic-mode portcullis, four at a time: not one may fail (a bare
//! `EOF` was what a connection closed without `Connection: close` gave).
//!
//! Needs `skopeo`, `htpasswd`, `tar` and `gzip`.

mod common;

use common::oci::OciLayout;
use common::{PASSWORD, Registry, RegistryConfig, RegistryKind, Skopeo, USER};

const NEEDS: &str = "skopeo htpasswd tar gzip registry";
const WORKERS: usize = 4;
const PUSHES_EACH: usize = 50;

#[test]
fn two_hundred_basic_mode_pushes_without_one_failure() {
    if !common::e2e_gate(NEEDS) {
        return;
    }
    let dir = common::temp_dir();
    let htpasswd = dir.path().join("htpasswd");
    common::write_htpasswd(&htpasswd, &[(USER, PASSWORD)]);
    let config = RegistryConfig::new(dir.path().join("data")).htpasswd(htpasswd);
    let registry = Registry::start(RegistryKind::under_test(), &config);
    let mut layout = OciLayout::create(&dir.path().join("source"));
    let image = layout.add_image("v1", 2, 8 << 10);
    let source = layout.reference(&image.tag);
    let creds = format!("{USER}:{PASSWORD}");
    let host = registry.host();
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (source, creds, host) = (&source, &creds, &host);
                s.spawn(move || {
                    let skopeo = Skopeo::new();
                    let mut failed = Vec::new();
                    for i in 0..PUSHES_EACH {
                        let dest = format!("docker://{host}/many/app{w}:t{i}");
                        let out = skopeo.skopeo(&[
                            "copy",
                            "--dest-tls-verify=false",
                            "--dest-creds",
                            creds,
                            source,
                            &dest,
                        ]);
                        if !out.status.success() {
                            failed.push(format!("{dest}: {}", common::combined_output(&out)));
                        }
                    }
                    failed
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} pushes failed:\n{}",
        failures.len(),
        WORKERS * PUSHES_EACH,
        failures.join("\n")
    );
}
