//! Client certificates as identities (`http.tls.clientidentity`): which name
//! of a verified client certificate stands for the caller.
//!
//! rustls has already verified the chain against `http.tls.clientcas` when
//! this runs; here we only read the name out of the leaf. The name is then
//! resolved to a user or robot by `AccessControl::certificate_login`.

use std::sync::Arc;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use portcullis_config::{ClientIdentityMode, Named};

use super::TlsError;

/// Which name of a client certificate identifies the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientIdentity {
    /// Certificates only gate the connection; they identify nobody.
    #[default]
    None,
    /// The subject's common name.
    CommonName,
    /// The first DNS name among the subject alternative names.
    SanDns,
    /// The first e-mail address (rfc822Name) among the SANs.
    SanEmail,
    /// The first URI among the SANs.
    SanUri,
}

impl ClientIdentity {
    /// Parses `http.tls.clientidentity`.
    ///
    /// # Errors
    /// An unknown mode, naming the key and the accepted values.
    pub fn parse(value: Option<&Named<ClientIdentityMode>>) -> Result<Self, TlsError> {
        use ClientIdentityMode as M;
        Ok(match value {
            None | Some(Named::Known(M::None)) => Self::None,
            Some(Named::Known(M::Cn)) => Self::CommonName,
            Some(Named::Known(M::SanDns)) => Self::SanDns,
            Some(Named::Known(M::SanEmail)) => Self::SanEmail,
            Some(Named::Known(M::SanUri)) => Self::SanUri,
            Some(Named::Unknown(other)) if other.is_empty() => Self::None,
            Some(Named::Unknown(other)) => {
                return Err(TlsError::new(
                    "http.tls.clientidentity",
                    format!(
                        "unknown mode `{other}`. Fix: use none, cn, san-dns, san-email or san-uri"
                    ),
                ));
            }
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::None => "name",
            Self::CommonName => "subject common name (CN)",
            Self::SanDns => "DNS subject alternative name",
            Self::SanEmail => "e-mail subject alternative name",
            Self::SanUri => "URI subject alternative name",
        }
    }
}

/// What a connection's verified client certificate says, attached to every
/// request on that connection.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The identifying name, or why the certificate has none.
    pub name: Result<String, String>,
}

/// Reads the identifying name from a verified leaf certificate (DER).
#[must_use]
pub fn client_certificate(mode: ClientIdentity, leaf: &[u8]) -> Arc<ClientCertificate> {
    Arc::new(ClientCertificate {
        name: name_of(mode, leaf),
    })
}

fn name_of(mode: ClientIdentity, leaf: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf)
        .map_err(|e| format!("the client certificate cannot be parsed: {e}"))?;
    let missing = || {
        format!(
            "the client certificate (subject `{}`) has no {}, which http.tls.clientidentity asks for",
            cert.subject(),
            mode.describe()
        )
    };
    let found = match mode {
        ClientIdentity::None => None,
        ClientIdentity::CommonName => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        ClientIdentity::SanDns | ClientIdentity::SanEmail | ClientIdentity::SanUri => cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|san| {
                san.value
                    .general_names
                    .iter()
                    .find_map(|g| match (mode, g) {
                        (ClientIdentity::SanDns, GeneralName::DNSName(n))
                        | (ClientIdentity::SanEmail, GeneralName::RFC822Name(n))
                        | (ClientIdentity::SanUri, GeneralName::URI(n)) => Some((*n).to_owned()),
                        _ => None,
                    })
            }),
    };
    match found {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(cn: &str, sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_each_kind_of_name() {
        let der = leaf(
            "alice",
            vec![
                rcgen::SanType::DnsName("ci.example".try_into().unwrap()),
                rcgen::SanType::Rfc822Name("bob@example.com".try_into().unwrap()),
                rcgen::SanType::URI("spiffe://example/robot".try_into().unwrap()),
            ],
        );
        let name = |m| name_of(m, &der);
        assert_eq!(name(ClientIdentity::CommonName).unwrap(), "alice");
        assert_eq!(name(ClientIdentity::SanDns).unwrap(), "ci.example");
        assert_eq!(name(ClientIdentity::SanEmail).unwrap(), "bob@example.com");
        assert_eq!(
            name(ClientIdentity::SanUri).unwrap(),
            "spiffe://example/robot"
        );
    }

    #[test]
    fn a_missing_name_is_explained() {
        let der = leaf("alice", Vec::new());
        let e = name_of(ClientIdentity::SanEmail, &der).unwrap_err();
        assert!(e.contains("has no e-mail subject alternative name"), "{e}");
        assert!(e.contains("CN=alice"), "{e}");
        assert!(name_of(ClientIdentity::CommonName, b"junk").is_err());
    }

    #[test]
    fn modes_parse() {
        assert_eq!(ClientIdentity::parse(None).unwrap(), ClientIdentity::None);
        assert_eq!(
            ClientIdentity::parse(Some(&"CN".into())).unwrap(),
            ClientIdentity::CommonName
        );
        let e = ClientIdentity::parse(Some(&"subject".into())).unwrap_err();
        assert!(e.to_string().starts_with("http.tls.clientidentity:"), "{e}");
    }
}
