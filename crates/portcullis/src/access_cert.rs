//! `portcullis access explain --certificate PEM`: who a client certificate
//! identifies under `http.tls.clientidentity`, and whether a CA of
//! `http.tls.clientcas` signed it, so a refused mTLS client can be
//! diagnosed without reading logs.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use portcullis_app::tls::{ClientIdentity, client_certificate};
use portcullis_auth::identity::Identity;
use portcullis_config::Config;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

/// Every certificate (DER) in a PEM file.
fn certificates(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| anyhow!("{} is not PEM: {e}", path.display()))?;
        if pem.label == "CERTIFICATE" {
            out.push(pem.contents);
        }
    }
    if out.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(out)
}

fn parse(der: &[u8]) -> anyhow::Result<X509Certificate<'_>> {
    Ok(x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow!("not a certificate: {e}"))?
        .1)
}

/// Which client CA file signed `leaf` directly, if any.
fn signer(leaf: &X509Certificate<'_>, cas: &[String]) -> anyhow::Result<Option<String>> {
    for file in cas {
        for der in certificates(Path::new(file))? {
            let ca = parse(&der)?;
            if ca.subject() == leaf.issuer() && leaf.verify_signature(Some(ca.public_key())).is_ok()
            {
                return Ok(Some(format!("`{}` in {file}", ca.subject())));
            }
        }
    }
    Ok(None)
}

/// The identity `path`'s certificate stands for, and what was found on the
/// way, for the explanation.
///
/// # Errors
/// No TLS or no `clientidentity`, an unreadable certificate, one that no
/// client CA signed or that is outside its validity, or a name that is no
/// user or robot; each says what to fix.
pub fn identify(cfg: &Config, path: &Path) -> anyhow::Result<(Identity, String)> {
    let Some(tls) = &cfg.http.tls else {
        bail!("http.tls is not set: portcullis only sees client certificates when it serves TLS");
    };
    let mode = ClientIdentity::parse(tls.clientidentity.as_ref()).map_err(|e| anyhow!("{e}"))?;
    if mode == ClientIdentity::None {
        bail!(
            "http.tls.clientidentity is not set, so client certificates identify nobody. Fix: set it to cn, san-dns, san-email or san-uri"
        );
    }
    let chain = certificates(path)?;
    let leaf = parse(&chain[0]).with_context(|| path.display().to_string())?;
    let subject = leaf.subject().to_string();
    if !leaf.validity().is_valid() {
        bail!(
            "certificate `{subject}` is valid only from {} to {}: the TLS handshake fails",
            leaf.validity().not_before,
            leaf.validity().not_after
        );
    }
    let signed = match signer(&leaf, &tls.clientcas)? {
        Some(ca) => format!("signed by {ca}"),
        None if chain.len() > 1 => {
            "not signed directly by a CA of http.tls.clientcas (an intermediate in the file may be; not checked here)".to_owned()
        }
        None => bail!(
            "certificate `{subject}` was not signed by any CA in http.tls.clientcas ({}): the TLS handshake fails. Fix: issue it from one of those CAs, or add its CA to clientcas",
            tls.clientcas.join(", ")
        ),
    };
    let name = client_certificate(mode, &chain[0])
        .name
        .clone()
        .map_err(|e| anyhow!("{e}"))?;
    let access = portcullis_app::policy::access_control(cfg)?;
    let identity = access
        .certificate_login(&name)
        .map_err(|e| anyhow!("{e}: the registry refuses its requests with 403"))?;
    let who = match &identity {
        Identity::Robot(r) => format!("robot `{}`", r.login()),
        other => format!("user `{}`", other.subject()),
    };
    let says = format!(
        "certificate `{subject}` ({signed}, valid until {}) names `{name}` under clientidentity {}: {who}",
        leaf.validity().not_after,
        tls.clientidentity
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    Ok((identity, says))
}
