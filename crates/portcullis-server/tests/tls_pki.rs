//! Certificates for the TLS tests, made with rcgen. Included by the other
//! `tls_*` test files with `#[path]`; on its own it holds no tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

/// A certificate authority that can sign.
pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

/// A signed certificate and its key.
pub struct Leaf {
    pub pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

pub fn ca(name: &str) -> Ca {
    ca_signed(name, None)
}

/// A CA, self-signed or (an intermediate) signed by `parent`.
pub fn ca_signed(name: &str, parent: Option<&Ca>) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = match parent {
        Some(p) => params.signed_by(&key, &p.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for `names` (DNS names or IP addresses).
pub fn server(ca: &Ca, names: &[&str]) -> Leaf {
    leaf_with(ca, names, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    })
}

/// A client certificate with common name `cn`.
pub fn client(ca: &Ca, cn: &str) -> Leaf {
    leaf_with(ca, &[], |p| {
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    })
}

pub fn leaf_with(ca: &Ca, names: &[&str], f: impl FnOnce(&mut CertificateParams)) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    f(&mut params);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

/// An Authority Information Access extension with a CA issuers URL, as
/// public CAs put in every certificate.
pub fn aia_extension() -> CustomExtension {
    let uri = b"http://ca.example/intermediate.crt";
    let mut access = vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    access.push(0x86);
    access.push(u8::try_from(uri.len()).unwrap());
    access.extend_from_slice(uri);
    let mut description = vec![0x30, u8::try_from(access.len()).unwrap()];
    description.extend(access);
    let mut content = vec![0x30, u8::try_from(description.len()).unwrap()];
    content.extend(description);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], content)
}

/// Writes `contents` to `dir/name` through a rename, as deployment tools do.
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Serves `config` (whose `http.addr` should use port 0) in the background;
/// returns the port it listens on.
pub async fn serve(config: portcullis_config::Config) -> u16 {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Err(e) = portcullis_server::serve(&config, move |addr| {
            let _ = tx.send(addr);
        })
        .await
        {
            panic!("server failed: {e}");
        }
    });
    let addr = rx.await.expect("server did not start");
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}
