//! A non-loopback IPv4 address of the machine's own, for as long as a test
//! needs it.
//!
//! The Docker daemon treats registries on `127.0.0.0/8` as insecure and
//! skips certificate verification for them, so a test that wants to see
//! Docker reject an untrusted certificate needs the registry on some other
//! address of this host. [`LocalAddress::create`] makes one with iproute2:
//! a veth pair (`dummy` links are not available on these machines) with a
//! `/32` from the benchmarking range `198.18.0.0/15` (RFC 2544) on one end.
//! The kernel delivers traffic to it locally, like to any address of the
//! host. The link is deleted on drop.
//!
//! Needs root (`CAP_NET_ADMIN`) and `ip`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::process::run;

/// How long one `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(20);
/// `198.18.0.0`, the start of the benchmarking range `198.18.0.0/15`.
const RANGE_START: u32 = u32::from_be_bytes([198, 18, 0, 0]);
/// How many addresses the range holds.
const RANGE_SIZE: u32 = 1 << 17;
/// How many addresses one test process may create ([`LocalAddress::create`]
/// panics after that).
const PER_PROCESS: u32 = 16;

/// A veth pair with a `198.18.x.y/32` on one end; deleted on drop.
#[derive(Debug)]
pub struct LocalAddress {
    /// The end that holds the address; deleting it deletes its peer too.
    link: String,
    ip: Ipv4Addr,
}

impl LocalAddress {
    /// Gives this host a new address in `198.18.0.0/15`, derived from the
    /// process id (and a per-process counter), on a veth pair named
    /// `pc<pid>-<n>a` / `pc<pid>-<n>b`. A stale pair of the same name (left
    /// by an earlier process with the same pid) is deleted first.
    ///
    /// Panics, with what `ip` said, if the address cannot be created (not
    /// root, no veth support, address already taken).
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < PER_PROCESS,
            "LocalAddress::create: at most {PER_PROCESS} addresses per test process"
        );
        let pid = std::process::id();
        let link = format!("pc{pid}-{n}a");
        let peer = format!("pc{pid}-{n}b");
        // Interface names are limited to 15 bytes (IFNAMSIZ - 1).
        assert!(link.len() <= 15, "interface name {link:?} is too long");
        // Skip the first and last address of the range.
        let offset = (pid.wrapping_mul(PER_PROCESS).wrapping_add(n)) % (RANGE_SIZE - 2) + 1;
        let ip = Ipv4Addr::from(RANGE_START + offset);

        // A stale pair from an earlier process with this pid.
        if ip_cmd(&["link", "show", "dev", &link]).status.success() {
            expect_ip(&["link", "del", "dev", &link], "delete the stale link");
        }
        let holders = ip_cmd(&["-o", "-4", "addr", "show", "to", &format!("{ip}/32")]);
        let holders = String::from_utf8_lossy(&holders.stdout);
        assert!(
            holders.trim().is_empty(),
            "cannot give this host {ip}: it is already assigned:\n{holders}"
        );

        expect_ip(
            &["link", "add", &link, "type", "veth", "peer", "name", &peer],
            "create a veth pair",
        );
        // From here on, drop deletes the pair, even if a step below panics.
        let address = Self { link, ip };
        let cidr = format!("{ip}/32");
        expect_ip(
            &["addr", "add", &cidr, "dev", &address.link],
            "add the address",
        );
        expect_ip(&["link", "set", &address.link, "up"], "bring the link up");
        expect_ip(&["link", "set", &peer, "up"], "bring the peer up");
        address
    }

    /// The address (`198.18.x.y` or `198.19.x.y`).
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.ip)
    }

    /// The name of the link that holds it.
    pub fn link(&self) -> &str {
        &self.link
    }
}

impl Drop for LocalAddress {
    fn drop(&mut self) {
        let out = ip_cmd(&["link", "del", "dev", &self.link]);
        if !out.status.success() {
            eprintln!(
                "warning: could not delete link {} ({}): {}",
                self.link,
                self.ip,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// The `ip` program (it lives in sbin, which may not be on `PATH`).
fn ip_program() -> PathBuf {
    super::find_in_path("ip").unwrap_or_else(|| {
        panic!("cannot give this host a test address: `ip` (iproute2) not found")
    })
}

/// Runs `ip ARGS...`, whatever its outcome.
fn ip_cmd(args: &[&str]) -> Output {
    run(Command::new(ip_program()).args(args), None, IP_TIMEOUT)
}

/// Runs `ip ARGS...`; panics with `what` and `ip`'s output unless it
/// succeeds.
fn expect_ip(args: &[&str], what: &str) {
    let out = ip_cmd(args);
    assert!(
        out.status.success(),
        "cannot give this host a test address: `ip {}` ({what}) failed with {}: {} \
         (needs root with CAP_NET_ADMIN and veth support)",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
