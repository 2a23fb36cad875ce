//! `portcullis cert generate`: a private CA and a server certificate signed
//! by it, so that TLS works without `insecure-registries`.
//!
//! Files written to `--out DIR`: `ca.crt`, `ca.key` (mode 0600),
//! `server.crt` (the server certificate followed by the CA certificate, a
//! complete chain) and `server.key` (0600). With `--ca DIR` the CA in
//! `DIR/ca.crt` and `DIR/ca.key` signs the new certificate instead, so a
//! server certificate is renewed without clients trusting anything new.
//!
//! `portcullis cert client` (in [`client`]) signs client certificates with
//! the same CA, for `http.tls.clientidentity`.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

mod client;

/// How long a new CA is valid.
const CA_DAYS: i64 = 3650;

#[derive(Subcommand)]
pub enum CertCommand {
    /// Write a CA and a server certificate for HTTPS (ca.crt, ca.key, server.crt, server.key).
    Generate {
        /// A DNS name clients use to reach the registry (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// An IP address clients use to reach the registry (repeatable).
        #[arg(long = "ip", value_name = "ADDRESS")]
        ips: Vec<IpAddr>,
        /// Where to write the files.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Reuse the CA in DIR/ca.crt and DIR/ca.key instead of making a new one.
        #[arg(long, value_name = "DIR")]
        ca: Option<PathBuf>,
        /// How many days the server certificate is valid.
        #[arg(long, default_value_t = 397, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
        /// The port clients use, for the printed instructions only.
        #[arg(long, default_value_t = 5000)]
        port: u16,
    },
    /// Sign a client certificate with the CA (client.cert, client.key): its CN names a user,
    /// or a robot as OWNER+ROBOT, for `http.tls.clientidentity`.
    Client {
        /// Who the certificate identifies: a user name, or OWNER+ROBOT for a robot token.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The CA that signs it: DIR/ca.crt and DIR/ca.key, from `cert generate`.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// Where to write client.cert and client.key (replaced if present: renewal).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How many days the client certificate is valid.
        #[arg(long, default_value_t = 397, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
        /// An e-mail address to add as a subject alternative name (repeatable),
        /// for `clientidentity: san-email`.
        #[arg(long = "san-email", value_name = "EMAIL")]
        emails: Vec<String>,
    },
}

pub fn run(command: CertCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertCommand::Generate {
            hosts,
            ips,
            out,
            ca,
            days,
            port,
        } => {
            let written = generate(&Request {
                hosts: &hosts,
                ips: &ips,
                out: &out,
                ca: ca.as_deref(),
                days,
            })?;
            print!("{}", instructions(&written, &hosts, &ips, port));
            Ok(ExitCode::SUCCESS)
        }
        CertCommand::Client {
            name,
            ca,
            out,
            days,
            emails,
        } => {
            let req = client::ClientRequest {
                name: &name,
                ca: &ca,
                out: &out,
                days,
                emails: &emails,
            };
            client::generate(&req)?;
            print!("{}", client::instructions(&req));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What to generate.
pub struct Request<'a> {
    pub hosts: &'a [String],
    pub ips: &'a [IpAddr],
    pub out: &'a Path,
    pub ca: Option<&'a Path>,
    pub days: u32,
}

/// What was written.
pub struct Written {
    pub out: PathBuf,
    /// The CA was made now (not reused).
    pub new_ca: bool,
}

/// Writes the CA (unless reused) and the server certificate.
///
/// # Errors
/// No name or address, an invalid name, an unreadable or mismatched CA, a
/// CA that would be overwritten, or a file that cannot be written.
pub fn generate(req: &Request<'_>) -> anyhow::Result<Written> {
    if req.hosts.is_empty() && req.ips.is_empty() {
        bail!(
            "give at least one --host NAME or --ip ADDRESS: the names clients use to reach the registry"
        );
    }
    let mut sans = Vec::new();
    for host in req.hosts {
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*'))
            && host.parse::<IpAddr>().is_err();
        if !valid {
            bail!("--host `{host}` is not a DNS name; give IP addresses with --ip");
        }
        let name = host
            .clone()
            .try_into()
            .with_context(|| format!("--host `{host}` is not a DNS name"))?;
        sans.push(SanType::DnsName(name));
    }
    sans.extend(req.ips.iter().map(|ip| SanType::IpAddress(*ip)));

    fs::create_dir_all(req.out).with_context(|| format!("cannot create {}", req.out.display()))?;
    let now = OffsetDateTime::now_utc();

    // The CA: reused, or made now.
    let (ca_cert_pem, ca_key, new_ca) = if let Some(dir) = req.ca {
        let (cert, key) = read_ca(dir)?;
        (cert, key, false)
    } else {
        for name in ["ca.crt", "ca.key"] {
            let p = req.out.join(name);
            if p.exists() {
                bail!(
                    "{} already exists; to renew the server certificate with this CA, add --ca {}; to start over with a new CA (every client must trust it again), remove it first",
                    p.display(),
                    req.out.display()
                );
            }
        }
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "portcullis");
        dn.push(DnType::CommonName, format!("portcullis CA {}", now.date()));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_DAYS);
        params.serial_number = Some(serial());
        let cert = params
            .self_signed(&key)
            .context("cannot make the CA certificate")?;
        (cert.pem(), key, true)
    };
    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, &ca_key)
        .context("cannot use the CA certificate to sign")?;

    // The server certificate.
    let cn = req
        .hosts
        .first()
        .cloned()
        .or_else(|| req.ips.first().map(ToString::to_string))
        .unwrap_or_default();
    let (cert, key) = sign_leaf(
        &issuer,
        &cn,
        sans,
        ExtendedKeyUsagePurpose::ServerAuth,
        req.days,
    )
    .context("cannot sign the server certificate")?;

    let out = req.out;
    if new_ca {
        write(&out.join("ca.key"), ca_key.serialize_pem().as_bytes(), true)?;
        write(&out.join("ca.crt"), ca_cert_pem.as_bytes(), false)?;
    } else if let Some(dir) = req.ca
        && !same_dir(dir, out)
    {
        // Clients need the CA certificate next to the others; the CA key
        // stays only where it was.
        let bytes = fs::read(dir.join("ca.crt"))
            .with_context(|| format!("cannot read {}", dir.join("ca.crt").display()))?;
        write(&out.join("ca.crt"), &bytes, false)?;
    }
    write(
        &out.join("server.key"),
        key.serialize_pem().as_bytes(),
        true,
    )?;
    let chain = format!("{}{}", cert.pem(), ca_cert_pem);
    write(&out.join("server.crt"), chain.as_bytes(), false)?;
    Ok(Written {
        out: out.to_path_buf(),
        new_ca,
    })
}

/// A new key and an end-entity certificate for it, signed by `issuer`:
/// common name `cn`, `sans`, one extended key usage, valid from an hour ago
/// for `days`.
fn sign_leaf(
    issuer: &Issuer<'_, impl rcgen::SigningKey>,
    cn: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    days: u32,
) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
    let now = OffsetDateTime::now_utc();
    let key = KeyPair::generate().context("cannot generate a key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
    params.serial_number = Some(serial());
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert, key))
}

/// Reads `DIR/ca.crt` and `DIR/ca.key`, and checks that they belong together.
fn read_ca(dir: &Path) -> anyhow::Result<(String, KeyPair)> {
    let cert_path = dir.join("ca.crt");
    let key_path = dir.join("ca.key");
    let cert = fs::read_to_string(&cert_path)
        .with_context(|| format!("cannot read the CA certificate {}", cert_path.display()))?;
    let key_pem = fs::read_to_string(&key_path)
        .with_context(|| format!("cannot read the CA key {}", key_path.display()))?;
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{} is not a PEM private key", key_path.display()))?;
    let der = pem_der(&cert)
        .with_context(|| format!("{} is not a PEM certificate", cert_path.display()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow::anyhow!("{} is not a certificate: {e}", cert_path.display()))?;
    if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
        bail!(
            "{} is not the key of {}",
            key_path.display(),
            cert_path.display()
        );
    }
    if !parsed.is_ca() {
        bail!("{} is not a CA certificate", cert_path.display());
    }
    Ok((cert, key))
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
fn pem_der(text: &str) -> anyhow::Result<Vec<u8>> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(text.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if pem.label != "CERTIFICATE" {
        bail!("found a {} block instead", pem.label);
    }
    Ok(pem.contents)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A random positive 128-bit serial number.
fn serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Writes a file; a private one is created with mode 0600, and kept so if
/// it existed with a wider mode.
fn write(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let mode = if private { 0o600 } else { 0o644 };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What to do with the files, printed after they are written.
fn instructions(w: &Written, hosts: &[String], ips: &[IpAddr], port: u16) -> String {
    let dir = fs::canonicalize(&w.out).unwrap_or_else(|_| w.out.clone());
    let d = dir.display();
    let mut names: Vec<String> = hosts.to_vec();
    names.extend(ips.iter().map(|ip| match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }));
    let mut s = String::new();
    if w.new_ca {
        s.push_str(&format!(
            "Wrote a new CA ({d}/ca.crt, {d}/ca.key) and a server certificate signed by it\n\
             ({d}/server.crt with the chain, {d}/server.key).\n\
             Keep ca.key private and offline if you can: whoever holds it can impersonate any site\n\
             to the machines that trust ca.crt. Renew the server certificate with the same CA:\n  \
             portcullis cert generate --ca {d} --out {d} ...\n\n"
        ));
    } else {
        s.push_str(&format!(
            "Wrote a new server certificate ({d}/server.crt with the chain, {d}/server.key) signed\n\
             by the existing CA: clients that already trust it need no change.\n\n"
        ));
    }
    s.push_str(&format!(
        "Serve it (configuration):\n\
         \x20 http:\n\
         \x20   tls:\n\
         \x20     certificate: {d}/server.crt\n\
         \x20     key: {d}/server.key\n\n\
         Trust the CA in Docker (per registry; no daemon restart needed):\n"
    ));
    for name in &names {
        s.push_str(&format!(
            "  sudo mkdir -p /etc/docker/certs.d/{name}:{port}\n  \
             sudo cp {d}/ca.crt /etc/docker/certs.d/{name}:{port}/ca.crt\n"
        ));
    }
    s.push_str(&format!(
        "\nTrust the CA system-wide (curl, podman, containerd, ...):\n  \
         Debian/Ubuntu: sudo cp {d}/ca.crt /usr/local/share/ca-certificates/portcullis.crt && sudo update-ca-certificates\n  \
         Fedora/RHEL:   sudo cp {d}/ca.crt /etc/pki/ca-trust/source/anchors/portcullis.crt && sudo update-ca-trust\n\n\
         Why not `insecure-registries`: it does not fix the certificate error, it turns off\n\
         certificate checking (and even allows plain HTTP) for that registry, so anyone on the path\n\
         can read the passwords and tokens Docker sends and swap the images it pulls. Trusting this\n\
         CA keeps every check on, and only for the certificates you signed.\n"
    ));
    s
}
