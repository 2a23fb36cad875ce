//! The TLS files of `http.tls`, read and checked without serving anything:
//! the settings (versions, cipher suites, client-certificate modes, mapped
//! to rustls), the certificate, key and client CAs loaded into a rustls
//! server configuration with what is worth warning about, and the name a
//! verified client certificate stands for. `serve` builds its listener from
//! these; `config check` and `access explain --cert` run the same code.

mod client_cert;
mod load;
mod settings;

pub use client_cert::{ClientCertificate, ClientIdentity, client_certificate};
pub use load::{Loaded, load};
pub use settings::{ClientAuth, TlsSettings};

/// A TLS setting or file that cannot be used, with the key it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsError {
    pub key: String,
    pub message: String,
}

impl TlsError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}
