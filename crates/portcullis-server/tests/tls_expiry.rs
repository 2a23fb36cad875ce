//! The served certificate's expiry is logged when it happens, not only at
//! the next start: a certificate that runs out while portcullis serves it
//! produces an error line naming the file and the fix.

#[path = "tls_pki.rs"]
mod pki;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pki::{ca, leaf_with, path_str, write};
use portcullis_config::TlsConfig;
use portcullis_server::tls::{TlsReloader, TlsSettings};

/// Log output collected from every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn expiry_while_serving_is_logged_at_once() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let authority = ca("expiry test CA");
    let leaf = leaf_with(&authority, &["localhost"], |p| {
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(1);
        p.not_after = now + time::Duration::seconds(3);
    });
    let tls = TlsConfig {
        certificate: path_str(&write(dir.path(), "server.crt", &leaf.pem)),
        key: path_str(&write(dir.path(), "server.key", &leaf.key_pem)),
        ..TlsConfig::default()
    };
    let settings = TlsSettings::from_config(&tls, None).unwrap();
    let reloader = TlsReloader::new(settings, None).expect("valid for a few seconds");
    reloader.spawn_watchers();
    // Bounded wait: far longer than the certificate has left.
    for _ in 0..300 {
        if captured.text().contains("has expired") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("has expired"))
        .unwrap_or_else(|| panic!("no expiry line within 30 s:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("server.crt"), "{line}");
    assert!(line.contains("renew"), "{line}");
    // Reported once, not on every check.
    assert_eq!(
        log.matches("the served TLS certificate has expired")
            .count(),
        1,
        "{log}"
    );
    drop(reloader);
}
