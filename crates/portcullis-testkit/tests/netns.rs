//! [`TestHost`] against the real kernel: the server's address exists only
//! inside the namespace, a server started there is reached from here
//! through the veth, whatever runs inside is killed on drop, and nothing is
//! left behind. Needs root and `ip`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_testkit::{Attempt, Supervised, TestHost, e2e_gate, free_port, run, wait_for};

fn ip(args: &[&str]) -> String {
    let out = run(Command::new("ip").args(args), None, Duration::from_secs(20));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_test_host_is_reachable_through_its_veth_and_leaves_nothing_behind() {
    if !e2e_gate("root ip python3") {
        return;
    }
    let host = TestHost::create();
    let name = host.name().to_owned();
    let link = host.link().to_owned();
    let addr = host.ip();
    assert!(addr.to_string().starts_with("198.1"), "{addr}");
    assert!(
        ip(&["-o", "addr", "show", "to", &format!("{addr}/32")])
            .trim()
            .is_empty(),
        "{addr} is on this machine's namespace"
    );
    assert!(
        ip(&["-n", &name, "-o", "addr"]).contains(&format!("{addr}/30")),
        "{addr} is inside {name}"
    );

    // A server inside, on the host's address, answering one line.
    let port = free_port();
    let script = format!(
        "import socket\ns=socket.socket()\ns.bind(('{addr}',{port}))\ns.listen()\n\
         c,_=s.accept()\nc.sendall(b'hello from inside\\n')\nc.close()\nimport time\ntime.sleep(600)\n"
    );
    let mut inner = Command::new("python3");
    inner.args(["-c", &script]);
    let _server = Supervised::spawn(&host.command(&inner), Stdio::null(), Stdio::null())
        .expect("start the server inside");
    let target = SocketAddr::new(addr, port);
    let mut reply = String::new();
    wait_for(
        Duration::from_secs(20),
        || match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
            Ok(mut conn) => {
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = conn.write_all(b"hi");
                let _ = conn.read_to_string(&mut reply);
                Attempt::Done
            }
            Err(e) => Attempt::Retry(format!("connect {target}: {e}")),
        },
    )
    .unwrap();
    assert_eq!(reply, "hello from inside\n");
    assert!(
        !ip(&["netns", "pids", &name]).trim().is_empty(),
        "the server runs inside {name}"
    );

    // The host goes first: it kills the server still sleeping inside.
    drop(host);
    assert!(
        !ip(&["netns", "list"])
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name.as_str())),
        "namespace {name} deleted"
    );
    assert!(
        !run(
            Command::new("ip").args(["link", "show", "dev", &link]),
            None,
            Duration::from_secs(20)
        )
        .status
        .success(),
        "link {link} deleted"
    );
}
