#!/usr/bin/env python3
"""Login timing: is a wrong password for a known user answered as slowly as
any password for an unknown one? Starts portcullis (lockout off, so every
try is checked) and, for reference, docker-registry, both with the same
htpasswd file (bcrypt cost 10), then sends TRIES requests of each kind,
interleaved, to GET /v2/ and reports the medians and their ratio.

Usage: bench/login_timing/run.py [PORTCULLIS_BINARY]  (default: target/release/portcullis)
Knobs: LOGIN_TRIES (200).
"""

import base64
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TRIES = int(os.environ.get("LOGIN_TRIES", "200"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v2/")
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def timed(port, user, password):
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start = time.perf_counter()
    c.request("GET", "/v2/", headers={"Authorization": f"Basic {auth}"})
    r = c.getresponse()
    r.read()
    elapsed = time.perf_counter() - start
    c.close()
    return r.status, elapsed


def measure(name, port):
    known, unknown = [], []
    for i in range(TRIES):
        s1, t1 = timed(port, "alice", f"wrong-{i}")
        s2, t2 = timed(port, f"nobody{i}", f"wrong-{i}")
        if s1 != 401 or s2 != 401:
            raise SystemExit(f"{name}: expected 401 for both, got {s1} and {s2}")
        known.append(t1)
        unknown.append(t2)
    k, u = statistics.median(known), statistics.median(unknown)
    return k * 1000, u * 1000


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/portcullis"
    work = tempfile.mkdtemp(prefix="login-timing.")
    procs = []
    try:
        htpasswd = os.path.join(work, "htpasswd")
        line = subprocess.run(["htpasswd", "-nbB", "-C", "10", "alice", "right-password"],
                              check=True, capture_output=True, text=True).stdout.strip()
        with open(htpasswd, "w") as f:
            f.write(line + "\n")
        rows = []
        for name, cmd, extra in [
            ("portcullis", [binary, "serve", "--config"], "lockout:\n  disabled: true\n"),
            ("docker-registry", ["docker-registry", "serve"], ""),
        ]:
            if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
                rows.append((name, None, None))
                continue
            port = free_port()
            config = os.path.join(work, f"{name}.yml")
            with open(config, "w") as f:
                f.write(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {work}/{name}\n"
                    f"http:\n  addr: 127.0.0.1:{port}\n"
                    f"auth:\n  htpasswd:\n    realm: r\n    path: {htpasswd}\n" + extra
                )
            proc = subprocess.Popen(cmd + [config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            wait_ready(port, proc)
            k, u = measure(name, port)
            rows.append((name, k, u))
            proc.terminate()
            proc.wait(timeout=10)
        print(f"| server | known user, wrong password (median ms) | unknown user (median ms) | unknown / known |")
        print("|---|---|---|---|")
        for name, k, u in rows:
            if k is None:
                print(f"| {name} | not found | | |")
            else:
                print(f"| {name} | {k:.2f} | {u:.2f} | {u / k:.3f} |")
        print(f"\n{TRIES} tries of each, interleaved, one connection per try.")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
