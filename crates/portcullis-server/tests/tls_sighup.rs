//! SIGHUP reloads the certificate even with file polling turned off. In its
//! own test binary because the signal goes to the whole process.

#[path = "tls_pki.rs"]
mod pki;

use std::sync::Arc;
use std::time::Duration;

use pki::{ca, path_str, server, write};
use portcullis_config::{Config, TlsConfig};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

async fn served_leaf(port: u16, config: Arc<ClientConfig>) -> CertificateDer<'static> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Test CA");
    let first = server(&ca, &["localhost"]);
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.http.tls = Some(TlsConfig {
        certificate: path_str(&write(dir.path(), "server.crt", &first.pem)),
        key: path_str(&write(dir.path(), "server.key", &first.key_pem)),
        reloadinterval: Some(Duration::ZERO),
        ..TlsConfig::default()
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        portcullis_server::serve(&config, move |addr| {
            let _ = tx.send(addr);
        })
        .await
        .unwrap();
    });
    let port: u16 = rx
        .await
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let client = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );

    let second = server(&ca, &["localhost"]);
    write(dir.path(), "server.key", &second.key_pem);
    write(dir.path(), "server.crt", &second.pem);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Polling is off: still the first certificate.
    assert_eq!(served_leaf(port, client.clone()).await, first.der);

    portcullis_testkit::signal(i64::from(std::process::id()), "HUP");
    for _ in 0..50 {
        if served_leaf(port, client.clone()).await == second.der {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("SIGHUP did not reload the certificate");
}
