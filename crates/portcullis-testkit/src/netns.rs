//! A test host of the test's own: a network namespace joined to this one by
//! a veth pair, with a non-loopback address for the server inside.
//!
//! The Docker daemon treats registries on `127.0.0.0/8` as insecure (no
//! certificate checks, no client certificates), so a test that needs Docker
//! to verify TLS runs the registry on such a host. [`TestHost::create`]
//! does what DESIGN.md shows, with iproute2:
//!
//! ```text
//! ip netns add NAME; ip link add H type veth peer name R; ip link set R netns NAME
//! ip addr add 198.18.x.1/30 dev H; ip link set H up
//! ip -n NAME addr add 198.18.x.2/30 dev R; ip -n NAME link set R up; ip -n NAME link set lo up
//! ```
//!
//! The server runs inside with [`TestHost::command`] (`ip netns exec NAME
//! ...`) and listens on [`TestHost::ip`], `198.18.x.2`; everything else (the
//! Docker daemon, curl, openssl, the test's HTTP client) stays in the
//! machine's namespace and reaches it through the veth. That address exists
//! only inside the namespace; the machine gets only the `/30`'s other end.
//! On drop, whatever still runs in the namespace is killed, and the
//! namespace and the link are deleted.
//!
//! Needs root (`CAP_SYS_ADMIN` and `CAP_NET_ADMIN`) and `ip`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::gate::{find_in_path, is_root};
use crate::process::{run, signal, wrap};

/// How long one `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(20);
/// `198.18.0.0`, the start of the benchmarking range `198.18.0.0/15`
/// (RFC 2544), which no real network uses.
const RANGE_START: u32 = u32::from_be_bytes([198, 18, 0, 0]);
/// How many `/30` subnets the range holds.
const SUBNETS: u32 = (1 << 17) / 4;
/// How many hosts one test process may create ([`TestHost::create`] panics
/// after that).
const PER_PROCESS: u32 = 16;
/// How many subnets [`TestHost::create`] tries when its first choice is
/// already in use on this machine.
const TRIES: u32 = 8;

/// A network namespace with a veth link to this one; a cheap handle
/// (clones share it), torn down when the last clone drops.
#[derive(Clone, Debug)]
pub struct TestHost(Arc<Namespace>);

/// What [`TestHost`] shares; dropping it tears the host down.
#[derive(Debug)]
struct Namespace {
    /// The namespace, `pc<pid>n<n>`.
    name: String,
    /// The veth end in this namespace, `pc<pid>n<n>h`; its peer inside is
    /// `pc<pid>n<n>r`.
    link: String,
    /// The server's address, inside the namespace.
    ip: Ipv4Addr,
}

impl TestHost {
    /// Makes a new test host: a namespace named after the process id and a
    /// per-process counter, a veth pair, and a `/30` of `198.18.0.0/15`
    /// derived from the same two numbers (so parallel test processes pick
    /// different ones; one already in use on this machine is skipped). A
    /// stale namespace or link of the same name (left by an earlier process
    /// with this pid) is removed first.
    ///
    /// Panics, with what `ip` said, if the host cannot be made (not root,
    /// no network namespaces or veth support).
    pub fn create() -> Self {
        assert!(
            is_root(),
            "cannot create a test host: network namespaces need root (uid 0); \
             gate the test on `root ip` (portcullis_testkit::e2e_gate)"
        );
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < PER_PROCESS,
            "TestHost::create: at most {PER_PROCESS} test hosts per test process"
        );
        let pid = std::process::id();
        let name = format!("pc{pid}n{n}");
        let link = format!("{name}h");
        let peer = format!("{name}r");
        // Interface names are limited to 15 bytes (IFNAMSIZ - 1).
        assert!(link.len() <= 15, "interface name {link:?} is too long");

        remove_stale(&name, &link);
        let net = free_subnet(pid.wrapping_mul(PER_PROCESS).wrapping_add(n));
        expect_ip(&["netns", "add", &name], "create the network namespace");
        // From here on, drop deletes the namespace and the link, even if a
        // step below panics.
        let host = Namespace {
            name,
            link,
            ip: Ipv4Addr::from(net + 2),
        };
        let name = host.name.as_str();
        let link = host.link.as_str();
        let outer = format!("{}/30", Ipv4Addr::from(net + 1));
        let inner = format!("{}/30", host.ip);
        expect_ip(
            &["link", "add", link, "type", "veth", "peer", "name", &peer],
            "create a veth pair",
        );
        expect_ip(
            &["link", "set", &peer, "netns", name],
            "move the veth peer into the namespace",
        );
        expect_ip(&["addr", "add", &outer, "dev", link], "address this end");
        expect_ip(&["link", "set", link, "up"], "bring this end up");
        expect_ip(
            &["-n", name, "addr", "add", &inner, "dev", &peer],
            "address the end inside",
        );
        expect_ip(
            &["-n", name, "link", "set", &peer, "up"],
            "bring the end inside up",
        );
        expect_ip(
            &["-n", name, "link", "set", "lo", "up"],
            "bring up loopback inside",
        );
        Self(Arc::new(host))
    }

    /// The server's address (`198.18.x.2` or `198.19.x.2`), which exists
    /// only inside the namespace.
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.0.ip)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The veth end in the machine's namespace.
    pub fn link(&self) -> &str {
        &self.0.link
    }

    /// `cmd` (its program, arguments, environment and directory) as a
    /// command that runs it inside the namespace: `ip netns exec NAME
    /// PROGRAM ARGS...`. `ip` execs the program, so signals sent to the
    /// command's process reach the program itself.
    pub fn command(&self, cmd: &Command) -> Command {
        wrap(cmd, ip_program(), &["netns", "exec", self.name()])
    }
}

impl fmt::Display for TestHost {
    /// `IP (network namespace NAME, link LINK)`, for a test's log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (network namespace {}, link {})",
            self.0.ip, self.0.name, self.0.link
        )
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        kill_inside(&self.name);
        let out = ip_cmd(&["netns", "del", &self.name]);
        if !out.status.success() {
            eprintln!(
                "warning: could not delete network namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // Deleting the namespace destroys the peer inside, and with it this
        // end; delete it in case it is still there.
        if link_exists(&self.link) {
            let out = ip_cmd(&["link", "del", "dev", &self.link]);
            if !out.status.success() && link_exists(&self.link) {
                eprintln!(
                    "warning: could not delete link {} ({}): {}",
                    self.link,
                    self.ip,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
}

/// Removes a namespace and a link of these names left by an earlier test
/// process that had this pid.
fn remove_stale(name: &str, link: &str) {
    let listed = ip_cmd(&["netns", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    if listed
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
    {
        kill_inside(name);
        expect_ip(&["netns", "del", name], "delete the stale namespace");
    }
    if link_exists(link) {
        expect_ip(&["link", "del", "dev", link], "delete the stale link");
    }
}

/// The first of [`TRIES`] `/30` subnets, starting from the one `seed`
/// derives, that has no address on this machine yet.
fn free_subnet(seed: u32) -> u32 {
    let mut taken = Vec::new();
    for k in 0..TRIES {
        // 7919 is prime, so the candidates are spread over the range.
        let index = seed.wrapping_add(k.wrapping_mul(7919)) % SUBNETS;
        let net = RANGE_START + index * 4;
        let cidr = format!("{}/30", Ipv4Addr::from(net));
        let holders = ip_cmd(&["-o", "-4", "addr", "show", "to", &cidr]);
        let holders = String::from_utf8_lossy(&holders.stdout).trim().to_owned();
        if holders.is_empty() {
            return net;
        }
        taken.push(holders);
    }
    panic!(
        "cannot create a test host: {TRIES} subnets of 198.18.0.0/15 are all in use:\n{}",
        taken.join("\n")
    );
}

/// Kills (SIGKILL) every process still running in the namespace `name`.
fn kill_inside(name: &str) {
    let out = ip_cmd(&["netns", "pids", name]);
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if let Ok(pid) = pid.parse::<i64>() {
            signal(pid, "KILL");
        }
    }
}

fn link_exists(link: &str) -> bool {
    ip_cmd(&["link", "show", "dev", link]).status.success()
}

/// The `ip` program (it lives in sbin, which may not be on `PATH`).
fn ip_program() -> PathBuf {
    find_in_path("ip")
        .unwrap_or_else(|| panic!("cannot create a test host: `ip` (iproute2) not found"))
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
        "cannot create a test host: `ip {}` ({what}) failed with {}: {} \
         (needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN, network namespaces and veth)",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
