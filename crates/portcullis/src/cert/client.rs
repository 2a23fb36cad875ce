//! `portcullis cert client`: a client certificate signed by the CA of
//! `cert generate`, whose subject common name identifies the caller when the
//! server has `http.tls.clientidentity: cn`.
//!
//! Files written to `--out DIR`, under the names Docker looks for in
//! `/etc/docker/certs.d/HOST:PORT/`: `client.cert` (the certificate followed
//! by the CA certificate) and `client.key` (mode 0600). Existing files are
//! replaced: running it again renews the certificate.

use std::path::Path;

use anyhow::{Context, bail};
use portcullis_auth::identity::UserName;
use portcullis_auth::robots::LOGIN_SEPARATOR;
use rcgen::{ExtendedKeyUsagePurpose, Issuer, SanType};

use super::{read_ca, sign_leaf, write};

/// What to sign.
pub struct ClientRequest<'a> {
    /// The identity: a user name, or `OWNER+ROBOT`.
    pub name: &'a str,
    /// The directory holding `ca.crt` and `ca.key`.
    pub ca: &'a Path,
    /// Where `client.cert` and `client.key` go.
    pub out: &'a Path,
    pub days: u32,
    /// E-mail subject alternative names.
    pub emails: &'a [String],
}

/// Signs the client certificate and writes `client.cert` and `client.key`.
///
/// # Errors
/// A name the server could not take as an identity, an invalid e-mail, an
/// unreadable or mismatched CA, or a file that cannot be written.
pub fn generate(req: &ClientRequest<'_>) -> anyhow::Result<()> {
    check_name(req.name)?;
    let mut sans = Vec::new();
    for email in req.emails {
        check_email(email)?;
        let value = email
            .as_str()
            .try_into()
            .with_context(|| format!("--san-email `{email}` is not an ASCII e-mail address"))?;
        sans.push(SanType::Rfc822Name(value));
    }
    let (ca_cert_pem, ca_key) = read_ca(req.ca).with_context(|| {
        format!(
            "--ca {} must hold the CA that signs client certificates (ca.crt and ca.key, as \
             `portcullis cert generate` writes them)",
            req.ca.display()
        )
    })?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, &ca_key)
        .context("cannot use the CA certificate to sign")?;

    let (cert, key) = sign_leaf(
        &issuer,
        req.name,
        sans,
        ExtendedKeyUsagePurpose::ClientAuth,
        req.days,
    )
    .context("cannot sign the client certificate")?;

    std::fs::create_dir_all(req.out)
        .with_context(|| format!("cannot create {}", req.out.display()))?;
    write(
        &req.out.join("client.key"),
        key.serialize_pem().as_bytes(),
        true,
    )?;
    let chain = format!("{}{}", cert.pem(), ca_cert_pem);
    write(&req.out.join("client.cert"), chain.as_bytes(), false)
}

/// Refuses a name the server would not accept as a caller: what
/// `UserName` refuses, and for `OWNER+ROBOT` an owner or robot name that
/// `portcullis token create` would not accept either.
fn check_name(name: &str) -> anyhow::Result<()> {
    let invalid = |why: String| {
        anyhow::anyhow!(
            "--name {name:?} cannot identify anyone: {why}. Give a user name (as in the htpasswd \
             file) or OWNER{LOGIN_SEPARATOR}ROBOT for a robot token"
        )
    };
    UserName::new(name).map_err(|e| invalid(e.to_string()))?;
    if let Some((owner, robot)) = name.split_once(LOGIN_SEPARATOR) {
        if owner.is_empty() {
            return Err(invalid(format!(
                "the owner before `{LOGIN_SEPARATOR}` is empty"
            )));
        }
        // Robot names are what `portcullis token create --name` accepts.
        if !portcullis_auth::robots::valid_name(robot) {
            return Err(invalid(format!(
                "the robot name `{robot}` after `{LOGIN_SEPARATOR}` must be 1 to \
                 64 lower-case letters, digits, `-` and `_`"
            )));
        }
    }
    Ok(())
}

/// An e-mail SAN is an identity too (`clientidentity: san-email`).
fn check_email(email: &str) -> anyhow::Result<()> {
    let shaped = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if !shaped || UserName::new(email).is_err() || !email.is_ascii() {
        bail!("--san-email `{email}` is not an e-mail address (LOCAL@DOMAIN, ASCII, no `:`)");
    }
    Ok(())
}

/// What to do with the files, printed after they are written.
pub fn instructions(req: &ClientRequest<'_>) -> String {
    let out = std::fs::canonicalize(req.out).unwrap_or_else(|_| req.out.to_path_buf());
    let ca = std::fs::canonicalize(req.ca).unwrap_or_else(|_| req.ca.to_path_buf());
    let (o, c, name) = (out.display(), ca.display(), req.name);
    let mut s = format!(
        "Wrote a client certificate for `{name}` ({o}/client.cert with the chain, {o}/client.key)\n\
         signed by the CA in {c}. Run this again to renew it.\n\n\
         Accept it (configuration; the CA may be the one of the server certificate):\n\
         \x20 http:\n\
         \x20   tls:\n\
         \x20     clientcas: [{c}/ca.crt]\n\
         \x20     clientauth: optional    # or required: no connection without a certificate\n\
         \x20     clientidentity: cn\n"
    );
    if let Some(email) = req.emails.first() {
        s.push_str(&format!(
            "  (or clientidentity: san-email, to identify the caller as `{email}`)\n"
        ));
    }
    s.push_str(&format!(
        "\nDocker (no `docker login` needed; push and pull act as `{name}`):\n  \
         sudo mkdir -p /etc/docker/certs.d/HOST:PORT\n  \
         sudo cp {c}/ca.crt {o}/client.cert {o}/client.key /etc/docker/certs.d/HOST:PORT/\n  \
         (Docker reads that directory only for registries it verifies: not for 127.0.0.0/8\n  \
         or `insecure-registries`, where it sends no client certificate.)\n\n\
         curl:\n  \
         curl --cacert {c}/ca.crt --cert {o}/client.cert --key {o}/client.key https://HOST:PORT/v2/_catalog\n\n"
    ));
    if let Some((owner, robot)) = name.split_once(LOGIN_SEPARATOR) {
        s.push_str(&format!(
            "`{name}` is a robot: the certificate acts as the robot token `{robot}` of `{owner}`\n\
             (which must exist: portcullis token create --owner {owner} --name {robot} ...),\n\
             with that token's repositories and actions.\n"
        ));
    } else {
        s.push_str(&format!(
            "`{name}` is a user: when there is an htpasswd file, it must be in it. A name\n\
             OWNER{LOGIN_SEPARATOR}ROBOT would act as that robot token's account instead.\n"
        ));
    }
    s.push_str(
        "Keep client.key private: whoever holds it is this caller until the certificate expires.\n",
    );
    s
}
