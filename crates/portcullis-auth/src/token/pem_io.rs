//! PEM files: reading certificates and private keys, writing PEM, and
//! replacing files atomically with the right permissions.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;

/// The DER of every `CERTIFICATE` block; other blocks are ignored, as Go does.
pub(crate) fn certs_from_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not valid PEM: {e}"))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if certs.is_empty() {
        return Err("no PEM \"CERTIFICATE\" block found".into());
    }
    Ok(certs)
}

/// Finds the private key in a PEM file and returns it as PKCS#8 DER.
pub(crate) fn private_key_from_pem(text: &[u8]) -> Result<Vec<u8>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not valid PEM: {e}"))?;
    for block in blocks {
        match block.tag() {
            "PRIVATE KEY" => return Ok(block.into_contents()),
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey as _;
                use rsa::pkcs8::EncodePrivateKey as _;
                let contents = Zeroizing::new(block.into_contents());
                let key = rsa::RsaPrivateKey::from_pkcs1_der(&contents)
                    .map_err(|e| format!("invalid RSA private key: {e}"))?;
                let doc = key
                    .to_pkcs8_der()
                    .map_err(|e| format!("cannot convert RSA key: {e}"))?;
                return Ok(doc.as_bytes().to_vec());
            }
            "EC PRIVATE KEY" => {
                return Err(
                    "SEC1 \"EC PRIVATE KEY\" files are not supported; convert it to \
                            PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`"
                        .into(),
                );
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err("the key is encrypted; store it unencrypted with mode 0600 \
                            (`openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.plain`)"
                    .into());
            }
            _ => {}
        }
    }
    Err("no PEM \"PRIVATE KEY\" block found".into())
}

/// PEM with 64-column lines, in a buffer that is wiped when dropped.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Replaces `path` atomically with `contents`, created with `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates the file with mode 0600, so a key is never readable
    // by others, not even for a moment.
    let mut tmp = tempfile::Builder::new()
        .prefix(".portcullis-tmp-")
        .tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        // Make the rename durable; failure here does not undo the write.
        let _ = d.sync_all();
    }
    Ok(())
}
