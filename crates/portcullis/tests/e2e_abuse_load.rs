//! Rate limits and lockout measured over real connections to the binary:
//! a pull limit of N lets N (± 5%) of a burst of concurrent manifest GETs
//! through; 1,000 wrong passwords from one address leave the right one
//! refused from there until the lockout ends, and accepted from another
//! loopback address meanwhile.
//!
//! Needs `htpasswd`.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{PASSWORD, Registry, RegistryConfig, RegistryKind, USER};

const NEEDS: &str = "htpasswd";

fn client(from: Ipv4Addr) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(from))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn start(dir: &std::path::Path, extra: &str) -> Registry {
    let htpasswd = dir.join("htpasswd");
    common::write_htpasswd(&htpasswd, &[(USER, PASSWORD)]);
    let config = RegistryConfig::new(dir.join("data"))
        .htpasswd(htpasswd)
        .extra_yaml(extra);
    Registry::start(RegistryKind::Portcullis, &config)
}

/// Pushes a one-blob image as `team/app:v1` over the API.
fn push(registry: &Registry) {
    let c = client(Ipv4Addr::LOCALHOST);
    let config = b"{}";
    let digest = portcullis_testkit::oci::sha256(config);
    let r = c
        .post(registry.url(&format!("/v2/team/app/blobs/uploads/?digest={digest}")))
        .basic_auth(USER, Some(PASSWORD))
        .body(&config[..])
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 2},
        "layers": []
    });
    let r = c
        .put(registry.url("/v2/team/app/manifests/v1"))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[test]
fn a_limit_of_n_lets_n_through_under_concurrent_load() {
    if !common::e2e_gate(NEEDS) || RegistryKind::under_test() == RegistryKind::Reference {
        return;
    }
    const N: usize = 200;
    let dir = common::temp_dir();
    let registry = start(
        dir.path(),
        &format!("ratelimit:\n  pull: {{limit: {N}, window: 1h}}\n"),
    );
    push(&registry);
    let url = registry.url("/v2/team/app/manifests/v1");
    // 8 workers, 60 requests each: 480 in all, bounded in count and time.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = client(Ipv4Addr::LOCALHOST);
                let (mut ok, mut limited) = (0, 0);
                let deadline = Instant::now() + Duration::from_secs(60);
                for _ in 0..60 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let r = c
                        .get(&url)
                        .basic_auth(USER, Some(PASSWORD))
                        .header("accept", "application/vnd.oci.image.manifest.v1+json")
                        .send()
                        .unwrap();
                    match r.status().as_u16() {
                        200 => ok += 1,
                        429 => {
                            assert!(r.headers().contains_key("retry-after"));
                            limited += 1;
                        }
                        s => panic!("unexpected status {s}"),
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for w in workers {
        let (o, l) = w.join().unwrap();
        ok += o;
        limited += l;
    }
    assert_eq!(ok + limited, 480);
    let tolerance = N / 20;
    assert!(
        (N - tolerance..=N + tolerance).contains(&ok),
        "{ok} of 480 let through with a limit of {N} (± {tolerance})"
    );
}

#[test]
fn a_thousand_wrong_passwords_lock_out_that_address_until_the_lockout_ends() {
    if !common::e2e_gate(NEEDS) || RegistryKind::under_test() == RegistryKind::Reference {
        return;
    }
    let dir = common::temp_dir();
    let registry = start(
        dir.path(),
        "lockout:\n  free: 5\n  delay: 1s\n  maxdelay: 1m\n  lockafter: 20\n  duration: 4s\n",
    );
    let url = registry.url("/v2/");
    let attacker = client(Ipv4Addr::new(127, 0, 0, 1));
    let (mut checked, mut refused) = (0, 0);
    for i in 0..1000 {
        let r = attacker
            .get(&url)
            .basic_auth(USER, Some(format!("guess-{i}")))
            .send()
            .unwrap();
        match r.status().as_u16() {
            401 => checked += 1,
            429 => refused += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    // Only the free tries and the ones after each wait were checked at all.
    assert!(checked <= 20, "{checked} passwords were checked");
    assert_eq!(checked + refused, 1000);
    let right = |c: &reqwest::blocking::Client| {
        c.get(&url)
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        right(&attacker),
        429,
        "the right password from the same address"
    );
    assert_eq!(
        right(&client(Ipv4Addr::new(127, 0, 0, 2))),
        200,
        "the right password from another address"
    );
    let started = Instant::now();
    let mut after = 429;
    while started.elapsed() < Duration::from_secs(70) && after == 429 {
        std::thread::sleep(Duration::from_millis(500));
        after = right(&attacker);
    }
    assert_eq!(after, 200, "the lockout ends");
}
