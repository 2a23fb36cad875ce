//! `http.tls` turned into rustls settings: protocol versions, cipher suites,
//! client authentication and the name `http.host` promises.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::{CipherSuite, Named, TlsConfig, TlsVersion};
use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::{self, cipher_suite as cs};

use super::TlsError;

/// Whether clients must present a certificate: the configuration's mode.
pub use portcullis_config::ClientAuthMode as ClientAuth;

/// Everything needed to (re)build the rustls server configuration.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub clientcas: Vec<PathBuf>,
    pub versions: &'static [&'static SupportedProtocolVersion],
    pub provider: Arc<CryptoProvider>,
    pub client_auth: ClientAuth,
    /// How often files are polled for changes; zero turns polling off.
    pub reload_interval: Duration,
    pub expiry_warning: Duration,
    /// The host name (or IP address) of an `https` `http.host`, which the
    /// certificate must name.
    pub host: Option<String>,
    /// Which name of a verified client certificate identifies the caller.
    pub client_identity: super::ClientIdentity,
}

static TLS12_AND_13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The rustls suite of a cipher suite from the configuration: the one place
/// the configuration's names meet rustls. `None` for the suites rustls does
/// not implement (CBC, RC4, 3DES, RSA key exchange).
fn rustls_suite(suite: CipherSuite) -> Option<rustls::SupportedCipherSuite> {
    use CipherSuite as C;
    Some(match suite {
        C::Aes128GcmSha256 => cs::TLS13_AES_128_GCM_SHA256,
        C::Aes256GcmSha384 => cs::TLS13_AES_256_GCM_SHA384,
        C::Chacha20Poly1305Sha256 => cs::TLS13_CHACHA20_POLY1305_SHA256,
        C::EcdheEcdsaWithAes128GcmSha256 => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        C::EcdheEcdsaWithAes256GcmSha384 => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        C::EcdheEcdsaWithChacha20Poly1305Sha256 => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        C::EcdheRsaWithAes128GcmSha256 => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        C::EcdheRsaWithAes256GcmSha384 => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        C::EcdheRsaWithChacha20Poly1305Sha256 => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        C::EcdheEcdsaWithAes128CbcSha
        | C::EcdheEcdsaWithAes256CbcSha
        | C::EcdheRsaWithAes128CbcSha
        | C::EcdheRsaWithAes256CbcSha
        | C::RsaWithRc4128Sha
        | C::RsaWith3desEdeCbcSha
        | C::RsaWithAes128CbcSha
        | C::RsaWithAes256CbcSha
        | C::RsaWithAes128CbcSha256
        | C::RsaWithAes128GcmSha256
        | C::RsaWithAes256GcmSha384
        | C::EcdheEcdsaWithRc4128Sha
        | C::EcdheRsaWithRc4128Sha
        | C::EcdheRsaWith3desEdeCbcSha
        | C::EcdheEcdsaWithAes128CbcSha256
        | C::EcdheRsaWithAes128CbcSha256 => return None,
    })
}

/// The names of the suites rustls implements, for error messages.
fn supported_suite_names() -> String {
    CipherSuite::ALL
        .iter()
        .filter(|s| rustls_suite(**s).is_some())
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default suites with AES-128-GCM first, then AES-256-GCM, then
/// ChaCha20: with AES-NI the first is the fastest of equally safe choices, and
/// the server's order is used (`ignore_client_order`), since OpenSSL clients
/// ask for AES-256 first.
fn fastest_first(
    mut suites: Vec<rustls::SupportedCipherSuite>,
) -> Vec<rustls::SupportedCipherSuite> {
    let rank = |s: &rustls::SupportedCipherSuite| {
        let name = format!("{:?}", s.suite());
        if name.contains("AES_128_GCM") {
            0
        } else if name.contains("AES_256_GCM") {
            1
        } else {
            2
        }
    };
    suites.sort_by_key(rank);
    suites
}

/// The cipher suites for `http.tls.ciphersuites`. As in Go, the list
/// restricts TLS 1.2 suites; TLS 1.3 suites are restricted only when the list
/// names at least one of them.
fn cipher_suites(
    names: &[Named<CipherSuite>],
) -> Result<Vec<rustls::SupportedCipherSuite>, TlsError> {
    let all = ring::DEFAULT_CIPHER_SUITES.to_vec();
    if names.is_empty() {
        return Ok(fastest_first(all));
    }
    let mut chosen = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let suite = name.known().and_then(rustls_suite).ok_or_else(|| {
            TlsError::new(
                format!("http.tls.ciphersuites[{i}]"),
                format!(
                    "cipher suite `{name}` is not supported: rustls implements only AEAD suites with forward secrecy (no CBC, RC4, 3DES or RSA key exchange). Fix: remove it, or use one of: {}",
                    supported_suite_names()
                ),
            )
        })?;
        if !chosen.contains(&suite) {
            chosen.push(suite);
        }
    }
    let names_tls13 = chosen
        .iter()
        .any(|s| s.version() == &rustls::version::TLS13);
    if !names_tls13 {
        let mut with13: Vec<_> = all
            .into_iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        with13.extend(chosen);
        chosen = with13;
    }
    Ok(chosen)
}

fn versions(
    minimum: Option<&Named<TlsVersion>>,
) -> Result<&'static [&'static SupportedProtocolVersion], TlsError> {
    match minimum {
        None | Some(Named::Known(TlsVersion::Tls12)) => Ok(TLS12_AND_13),
        Some(Named::Known(TlsVersion::Tls13)) => Ok(TLS13_ONLY),
        Some(Named::Known(v @ (TlsVersion::Tls10 | TlsVersion::Tls11))) => Err(TlsError::new(
            "http.tls.minimumtls",
            format!(
                "`{v}` cannot be served: portcullis uses rustls, which implements only TLS 1.2 and 1.3 (TLS 1.0 and 1.1 are deprecated by RFC 8996). Fix: set minimumtls to tls1.2 or tls1.3, or remove it"
            ),
        )),
        Some(Named::Unknown(other)) if other.is_empty() => Ok(TLS12_AND_13),
        Some(Named::Unknown(other)) => Err(TlsError::new(
            "http.tls.minimumtls",
            format!("unknown TLS version `{other}`. Fix: use tls1.2 or tls1.3"),
        )),
    }
}

/// The host part of an `https://` URL: no scheme, user info, port or path;
/// IPv6 addresses without brackets.
pub(crate) fn https_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| {
        url.get(..8)
            .filter(|p| p.eq_ignore_ascii_case("https://"))
            .map(|_| &url[8..])
    })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

impl TlsSettings {
    /// Reads `http.tls` (and `http.host`) into settings, refusing what
    /// rustls cannot do.
    ///
    /// # Errors
    /// An unsupported TLS version, cipher suite or client auth mode.
    pub fn from_config(tls: &TlsConfig, http_host: Option<&str>) -> Result<Self, TlsError> {
        let required = |key: &str, value: &str| {
            if value.is_empty() {
                Err(TlsError::new(
                    key,
                    "is missing. Fix: set both http.tls.certificate and http.tls.key to PEM files",
                ))
            } else {
                Ok(PathBuf::from(value))
            }
        };
        let certificate = required("http.tls.certificate", &tls.certificate)?;
        let key = required("http.tls.key", &tls.key)?;
        // As in distribution: client CAs alone mean certificates are required.
        let default_auth = if tls.clientcas.is_empty() {
            ClientAuth::None
        } else {
            ClientAuth::Required
        };
        let client_auth = match &tls.clientauth {
            Some(Named::Known(mode)) => *mode,
            None => default_auth,
            Some(Named::Unknown(other)) if other.is_empty() => default_auth,
            Some(Named::Unknown(other)) => {
                return Err(TlsError::new(
                    "http.tls.clientauth",
                    format!("unknown mode `{other}`. Fix: use none, optional or required"),
                ));
            }
        };
        if client_auth != ClientAuth::None && tls.clientcas.is_empty() {
            return Err(TlsError::new(
                "http.tls.clientauth",
                "client certificates cannot be verified without CA certificates. Fix: list the CA files in http.tls.clientcas",
            ));
        }
        let client_identity = super::ClientIdentity::parse(tls.clientidentity.as_ref())?;
        if client_identity != super::ClientIdentity::None && client_auth == ClientAuth::None {
            return Err(TlsError::new(
                "http.tls.clientidentity",
                "needs verified client certificates. Fix: list the client CA files in http.tls.clientcas and set http.tls.clientauth to optional or required",
            ));
        }
        let suites = cipher_suites(&tls.ciphersuites)?;
        let provider = Arc::new(CryptoProvider {
            cipher_suites: suites,
            ..ring::default_provider()
        });
        Ok(Self {
            certificate,
            key,
            clientcas: tls.clientcas.iter().map(PathBuf::from).collect(),
            versions: versions(tls.minimumtls.as_ref())?,
            provider,
            client_auth,
            reload_interval: tls.reloadinterval.unwrap_or(Duration::from_secs(2)),
            expiry_warning: tls
                .expirywarning
                .unwrap_or(Duration::from_secs(30 * 24 * 3600)),
            host: http_host.and_then(https_host),
            client_identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_https_urls() {
        assert_eq!(
            https_host("https://Reg.Example:5000/x"),
            Some("reg.example".into())
        );
        assert_eq!(https_host("https://[::1]:5000"), Some("::1".into()));
        assert_eq!(https_host("https://u:p@h"), Some("h".into()));
        assert_eq!(https_host("http://h"), None);
    }

    #[test]
    fn go_suites_map() {
        let s = cipher_suites(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).unwrap();
        assert!(s.contains(&cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
        assert!(s.contains(&cs::TLS13_AES_128_GCM_SHA256));
        assert!(!s.contains(&cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384));
        let e = cipher_suites(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()]).unwrap_err();
        assert!(e.to_string().contains("TLS_RSA_WITH_AES_128_CBC_SHA"));
        assert!(
            versions(Some(&"tls1.1".into()))
                .unwrap_err()
                .to_string()
                .contains("rustls")
        );
    }
}
