//! `http.tls`: the files exist, and the names of versions, cipher suites
//! and client-certificate modes are ones distribution accepts.

use std::path::Path;

use super::Validator;
use crate::crypto::{CipherSuite, ClientAuthMode, ClientIdentityMode, Named, TlsVersion};
use crate::model::TlsConfig;
use crate::schema;

impl Validator<'_> {
    pub(super) fn tls(&mut self, tls: &TlsConfig) {
        let fix = "set both http.tls.certificate and http.tls.key to PEM files (portcullis does not fetch certificates from Let's Encrypt)";
        if tls.certificate.is_empty() {
            self.err("http.tls.certificate", "is missing", fix);
        } else {
            self.readable(
                "http.tls.certificate",
                Path::new(&tls.certificate),
                "point it at a PEM certificate chain",
            );
        }
        if tls.key.is_empty() {
            self.err("http.tls.key", "is missing", fix);
        } else {
            self.readable(
                "http.tls.key",
                Path::new(&tls.key),
                "point it at the PEM private key of the certificate",
            );
        }
        for (i, ca) in tls.clientcas.iter().enumerate() {
            self.readable(
                &format!("http.tls.clientcas[{i}]"),
                Path::new(ca),
                "point it at a PEM file of CA certificates",
            );
        }
        if let Some(Named::Unknown(min)) = &tls.minimumtls {
            self.err(
                "http.tls.minimumtls",
                format!("unknown TLS version `{min}`"),
                format!(
                    "use one of: {}",
                    TlsVersion::names().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if tls.clientcas.is_empty()
            && let Some(mode) = &tls.clientauth
        {
            let fix = match mode.known() {
                Some(ClientAuthMode::Optional) => {
                    Some("list the CA files in http.tls.clientcas, or remove http.tls.clientauth")
                }
                Some(ClientAuthMode::Required) => Some("list the CA files in http.tls.clientcas"),
                Some(ClientAuthMode::None) | None => None,
            };
            if let Some(fix) = fix {
                self.err(
                    "http.tls.clientauth",
                    format!("`{mode}` needs CA certificates to verify client certificates against"),
                    fix,
                );
            }
        }
        self.client_identity(tls);
        for (i, suite) in tls.ciphersuites.iter().enumerate() {
            if let Named::Unknown(suite) = suite {
                let hint = schema::nearest(suite, CipherSuite::names())
                    .map(|n| format!("; did you mean `{n}`"))
                    .unwrap_or_default();
                self.err(
                    &format!("http.tls.ciphersuites[{i}]"),
                    format!("unknown cipher suite `{suite}`{hint}"),
                    "use Go's cipher suite names, such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                );
            }
        }
    }

    /// `http.tls.clientidentity` needs verified client certificates, and a
    /// policy that portcullis itself decides (not an external token issuer).
    fn client_identity(&mut self, tls: &TlsConfig) {
        let Some(mode) = &tls.clientidentity else {
            return;
        };
        if mode.known() == Some(ClientIdentityMode::None) {
            return;
        }
        let key = "http.tls.clientidentity";
        let auth_none =
            tls.clientauth.as_ref().and_then(Named::known) == Some(ClientAuthMode::None);
        if tls.clientcas.is_empty() || auth_none {
            self.err(
                key,
                format!("`{mode}` needs verified client certificates"),
                "list the client CA files in http.tls.clientcas and set http.tls.clientauth to optional or required",
            );
        }
        let auth = &self.config.auth;
        let external_issuer_only = auth.token.is_some() && auth.tokenserver.is_none();
        if external_issuer_only {
            self.err(
                key,
                "an external token issuer (auth.token) decides what callers may do, so a certificate identity would be ignored",
                "remove http.tls.clientidentity, or issue tokens with portcullis (auth.tokenserver)",
            );
        }
    }
}
