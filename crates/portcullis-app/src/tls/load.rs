//! Reading and checking the certificate, key and client CAs, and building
//! the rustls server configuration from them.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS;

use super::TlsError;
use super::settings::{ClientAuth, TlsSettings};

/// A built server configuration and what is worth telling about it.
pub struct Loaded {
    pub config: Arc<ServerConfig>,
    /// When the leaf certificate expires.
    pub not_after: OffsetDateTime,
    /// Problems that do not stop serving (expiry soon, a chain that may be
    /// incomplete).
    pub warnings: Vec<String>,
}

fn date(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn read(key: &str, path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (the file must be readable by the user portcullis runs as)"
                    .to_owned()
            }
            _ => e.to_string(),
        };
        TlsError::new(
            key,
            format!(
                "cannot read {}: {why}. Fix: point {key} at {what}",
                path.display()
            ),
        )
    })
}

fn certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(key, path, "a readable PEM certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(key, format!("{} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::new(
            key,
            format!(
                "{} contains no certificate (expected `-----BEGIN CERTIFICATE-----` blocks)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

fn private_key(settings: &TlsSettings) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key = "http.tls.key";
    let path = &settings.key;
    let bytes = read(key, path, "the PEM private key of the certificate")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let hint = if String::from_utf8_lossy(&bytes).contains("ENCRYPTED") {
            " (encrypted keys are not supported; decrypt it with `openssl pkey -in KEY -out KEY.plain`)"
        } else {
            ""
        };
        TlsError::new(
            key,
            format!(
                "{} contains no usable private key: {e}{hint}. Fix: point it at a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY file",
                path.display()
            ),
        )
    })
}

fn parse<'a>(key: &str, path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, TlsError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| {
            TlsError::new(
                key,
                format!("{}: cannot parse certificate: {e}", path.display()),
            )
        })
}

/// Whether a certificate name (possibly a `*.` wildcard) covers `host`.
fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    if let Some(suffix) = pattern.strip_prefix("*.") {
        match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix,
            None => false,
        }
    } else {
        pattern == host
    }
}

fn check_host(leaf: &X509Certificate<'_>, host: &str, path: &Path) -> Result<(), TlsError> {
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    let mut names = Vec::new();
    let mut found = false;
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    names.push((*d).to_owned());
                    if ip.is_none() && dns_matches(d, host) {
                        found = true;
                    }
                }
                GeneralName::IPAddress(bytes) => {
                    let addr = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(a) = addr {
                        names.push(a.to_string());
                        if ip == Some(a) {
                            found = true;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if found {
        return Ok(());
    }
    let listed = if names.is_empty() {
        "it has no subject alternative names (clients ignore the common name)".to_owned()
    } else {
        format!("it names only: {}", names.join(", "))
    };
    Err(TlsError::new(
        "http.tls.certificate",
        format!(
            "the certificate in {} is not valid for `{host}` from http.host: {listed}. Fix: issue a certificate with `{host}` as a subject alternative name, or correct http.host",
            path.display()
        ),
    ))
}

/// Checks the chain in the certificate file; returns a warning when it may
/// be incomplete and an error when it certainly is.
fn check_chain(chain: &[X509Certificate<'_>], path: &Path) -> Result<Option<String>, TlsError> {
    let leaf = &chain[0];
    let self_signed = leaf.issuer().as_raw() == leaf.subject().as_raw();
    if self_signed
        || chain[1..]
            .iter()
            .any(|c| c.subject().as_raw() == leaf.issuer().as_raw())
    {
        return Ok(None);
    }
    // Public CAs always sign through intermediates and say where to fetch
    // them (Authority Information Access); a private CA may sign leaves
    // directly with the root clients trust.
    let from_public_ca = leaf
        .extensions()
        .iter()
        .any(|e| e.oid == OID_PKIX_AUTHORITY_INFO_ACCESS);
    if from_public_ca {
        return Err(TlsError::new(
            "http.tls.certificate",
            format!(
                "the certificate chain in {} is incomplete: the certificate was issued by `{}`, which is not in the file. Fix: append the intermediate certificates after the server certificate (most CAs ship them as `fullchain.pem` or `chain.pem`)",
                path.display(),
                leaf.issuer()
            ),
        ));
    }
    Ok(Some(format!(
        "{} holds only the server certificate, issued by `{}`; this works only when clients trust that issuer directly. If it is an intermediate CA, append the intermediate certificates",
        path.display(),
        leaf.issuer()
    )))
}

fn client_verifier(
    settings: &TlsSettings,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, TlsError> {
    if settings.client_auth == ClientAuth::None {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    for (i, path) in settings.clientcas.iter().enumerate() {
        let key = format!("http.tls.clientcas[{i}]");
        for cert in certificates(&key, path)? {
            roots.add(cert).map_err(|e| {
                TlsError::new(
                    &key,
                    format!("{}: not a usable CA certificate: {e}", path.display()),
                )
            })?;
        }
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), settings.provider.clone());
    if settings.client_auth == ClientAuth::Optional {
        builder = builder.allow_unauthenticated();
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| TlsError::new("http.tls.clientcas", format!("cannot verify clients: {e}")))
}

/// Loads and checks everything the TLS settings point at, as of `now`.
///
/// # Errors
/// A precise message naming the key, the file and the fix.
pub fn load(settings: &TlsSettings, now: OffsetDateTime) -> Result<Loaded, TlsError> {
    let cert_path = &settings.certificate;
    let chain_der = certificates("http.tls.certificate", cert_path)?;
    let key_der = private_key(settings)?;
    let signing = settings
        .provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|e| {
            TlsError::new(
                "http.tls.key",
                format!(
                    "{}: unsupported private key: {e}. Fix: use an RSA, ECDSA (P-256/P-384) or Ed25519 key",
                    settings.key.display()
                ),
            )
        })?;
    let certified = CertifiedKey::new(chain_der.clone(), signing);
    if let Err(rustls::Error::InconsistentKeys(_)) = certified.keys_match() {
        return Err(TlsError::new(
            "http.tls.key",
            format!(
                "the private key in {} does not match the certificate in {}. Fix: use the key the certificate was issued for (compare `openssl x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`)",
                settings.key.display(),
                cert_path.display()
            ),
        ));
    }
    let parsed = chain_der
        .iter()
        .map(|d| parse("http.tls.certificate", cert_path, d))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = &parsed[0];
    let not_before = leaf.validity().not_before.to_datetime();
    let not_after = leaf.validity().not_after.to_datetime();
    if now > not_after {
        return Err(TlsError::new(
            "http.tls.certificate",
            format!(
                "the certificate in {} expired on {} (valid from {} to {}; now {}). Fix: renew it with the CA that signed it; with a CA made by portcullis: {}",
                cert_path.display(),
                date(not_after),
                date(not_before),
                date(not_after),
                date(now),
                renew_command(leaf, cert_path)
            ),
        ));
    }
    if now < not_before {
        return Err(TlsError::new(
            "http.tls.certificate",
            format!(
                "the certificate in {} is not valid yet: valid from {} to {}; now {}. Fix: check the system clock, or wait until it becomes valid",
                cert_path.display(),
                date(not_before),
                date(not_after),
                date(now)
            ),
        ));
    }
    if let Some(host) = &settings.host {
        check_host(leaf, host, cert_path)?;
    }
    let mut warnings = Vec::new();
    if let Some(w) = check_chain(&parsed, cert_path)? {
        warnings.push(w);
    }
    let left = not_after - now;
    if left < settings.expiry_warning {
        warnings.push(format!(
            "the certificate in {} expires on {} (in {} days). Renew it; portcullis picks up the new file without a restart",
            cert_path.display(),
            date(not_after),
            left.whole_days()
        ));
    }
    let builder = ServerConfig::builder_with_provider(settings.provider.clone())
        .with_protocol_versions(settings.versions)
        .map_err(|e| TlsError::new("http.tls", format!("inconsistent TLS settings: {e}")))?;
    let builder = match client_verifier(settings)? {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain_der, key_der).map_err(|e| {
        TlsError::new(
            "http.tls",
            format!(
                "cannot use {} with {}: {e}",
                cert_path.display(),
                settings.key.display()
            ),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our suite order (fastest first, or the operator's list) wins.
    config.ignore_client_order = true;
    Ok(Loaded {
        config: Arc::new(config),
        not_after,
        warnings,
    })
}

/// The `portcullis cert generate` command that renews `leaf` for the same
/// names, with the CA kept beside it (as `cert generate` writes them).
pub fn renew_command(leaf: &X509Certificate<'_>, cert_path: &Path) -> String {
    let dir = cert_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .display()
        .to_string();
    let mut cmd = format!("portcullis cert generate --ca {dir} --out {dir}");
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => cmd.push_str(&format!(" --host {d}")),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        cmd.push_str(&format!(" --ip {ip}"));
                    }
                }
                _ => {}
            }
        }
    }
    cmd.push_str(" (portcullis then reloads it without a restart)");
    cmd
}

#[cfg(test)]
mod tests {
    use super::dns_matches;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_matches("*.example.com", "reg.example.com"));
        assert!(!dns_matches("*.example.com", "a.reg.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("Reg.Example.com", "reg.example.com"));
    }
}
