#!/usr/bin/env python3
"""Side-by-side benchmark: portcullis against docker-registry (distribution 2.8).

Started by bench/run.sh, which builds portcullis and owns the scratch directory.
Python standard library only; the traffic generators are curl and wrk, and all
traffic goes to 127.0.0.1. See bench/README.md for usage and knobs.

Output: progress and a plain table on stderr, the same table as markdown on
stdout, and everything (raw figures included) as JSON in bench/results/.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
MIB = 1024 * 1024

ALL_SCENARIOS = ["push", "pull", "get", "auth", "mem", "token"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

BENCH_USER = "bench"
BENCH_PASS = "bench-password"

# token scenario: portcullis's built-in token service (auth.tokenserver)
TOKEN_SERVICE = "portcullis"
TOKEN_ISSUER = "portcullis"
TOKEN_EXPIRATION_S = 300  # auth.tokenserver.expiration: 5m
TOKEN_CLIENT_ID = "bench"


# --------------------------------------------------------------------------
# settings


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        sys.exit(f"bench: {name}={raw!r} is not an integer")


class Settings:
    def __init__(self) -> None:
        self.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        self.blob_mb = env_int("BENCH_BLOB_MB", 64 if self.quick else 1024)
        self.conc_mb = env_int("BENCH_CONCURRENT_MB", 32 if self.quick else 1024)
        self.conc_clients = env_int("BENCH_CONCURRENT_CLIENTS", 8)
        self.repeats = max(1, env_int("BENCH_REPEATS", 4))
        # a 1 GiB GET from the page cache takes ~0.5 s, so it is noisier than a push
        self.pull_repeats = max(1, env_int("BENCH_PULL_REPEATS", 5))
        self.wrk_duration = env_int("BENCH_WRK_DURATION", 3 if self.quick else 10)
        self.wrk_warmup = env_int("BENCH_WRK_WARMUP", 1 if self.quick else 2)
        # bcrypt-bound requests finish in waves of ~32 every few seconds on the
        # reference, so the auth run needs to be longer to average over waves
        self.auth_duration = env_int("BENCH_AUTH_DURATION", 10 if self.quick else 30)
        self.wrk_conns = env_int("BENCH_WRK_CONNECTIONS", 32)
        self.wrk_threads = env_int("BENCH_WRK_THREADS", min(2, os.cpu_count() or 1))
        self.bcrypt_cost = env_int("BENCH_BCRYPT_COST", 12)
        self.rss_interval_ms = env_int("BENCH_RSS_INTERVAL_MS", 100)
        self.idle_settle_s = env_int("BENCH_IDLE_SETTLE", 2)
        self.data_dir = os.environ.get("BENCH_DATA_DIR") or "/var/tmp/portcullis-bench-data"
        self.work_dir = os.environ.get("BENCH_WORKDIR") or ""
        self.results = os.environ.get("BENCH_RESULTS") or os.path.join(HERE, "results", "latest.json")
        self.portcullis_cmd = os.environ.get("BENCH_PORTCULLIS_CMD") or (
            # Where run.sh built it: CARGO_TARGET_DIR (relative to the repository) or target/.
            os.path.join(REPO_ROOT, os.environ.get("CARGO_TARGET_DIR") or "target", "release", "portcullis")
            + " serve --config {config}"
        )
        self.reference_cmd = os.environ.get("BENCH_REFERENCE_CMD") or "docker-registry serve {config}"

    def as_dict(self) -> dict:
        return {
            "quick": self.quick,
            "blob_mb": self.blob_mb,
            "concurrent_mb": self.conc_mb,
            "concurrent_clients": self.conc_clients,
            "repeats": self.repeats,
            "pull_repeats": self.pull_repeats,
            "wrk_duration_s": self.wrk_duration,
            "wrk_warmup_s": self.wrk_warmup,
            "auth_duration_s": self.auth_duration,
            "wrk_connections": self.wrk_conns,
            "wrk_threads": self.wrk_threads,
            "bcrypt_cost": self.bcrypt_cost,
            "rss_interval_ms": self.rss_interval_ms,
            "portcullis_cmd": self.portcullis_cmd,
            "reference_cmd": self.reference_cmd,
        }


S = Settings()
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# process helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(val.split()[0]) * 1024  # kB -> bytes
    return out


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_idle(pid: int, timeout: float = 60.0) -> None:
    """Wait until the process stops burning CPU (e.g. bcrypt for abandoned
    requests after wrk stops), so one measurement does not bleed into the next."""
    deadline = time.monotonic() + timeout
    hz = os.sysconf("SC_CLK_TCK")
    prev = cpu_ticks(pid)
    quiet = 0
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = cpu_ticks(pid)
        # under ~8% of one core for two consecutive quarter-seconds
        quiet = quiet + 1 if (cur - prev) <= max(1, hz * 0.25 * 0.08) else 0
        prev = cur
        if quiet >= 2:
            return
    log(f"  note: pid {pid} still busy after {timeout:.0f}s; measuring anyway")


# --------------------------------------------------------------------------
# registries


class Server:
    def __init__(self, key: str, label: str, cmd_template: str) -> None:
        self.key = key
        self.label = label
        self.cmd_template = cmd_template
        self.proc: subprocess.Popen | None = None
        self.root = ""
        self.dir = ""
        self.port = 0
        self.auth = "none"  # none | htpasswd | token
        self.headers: dict = {}  # Authorization sent with every registry request
        self.state: dict = {}  # what has been pushed into this instance

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, work: str, auth: str = "none", auth_config: list | None = None,
              headers: dict | None = None) -> None:
        """auth_config: the `auth:` section of config.yml as lines (none when empty);
        headers: what authenticated requests send (Basic for htpasswd; the token
        scenario sets Bearer later, once it has a token)."""
        self.stop()
        self.dir = tempfile.mkdtemp(prefix=f"{self.key}-", dir=work)
        self.root = os.path.join(self.dir, "data")
        os.makedirs(self.root)
        self.port = free_port()
        self.auth = auth
        self.headers = dict(headers or {})
        self.state = {}
        config = os.path.join(self.dir, "config.yml")
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.root}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: portcullis-bench-secret",
        ]
        lines += auth_config or []
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        argv = [a.replace("{config}", config) for a in shlex.split(self.cmd_template)]
        self.logfile = os.path.join(self.dir, "server.log")
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it cleanly
            )
        self.wait_ready()
        log(f"  {self.label} up on {self.base} (pid {self.pid}, auth={auth})")

    def log_tail(self, n: int = 20) -> str:
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.label} exited with status {self.proc.returncode} during startup:\n{self.log_tail()}"
                )
            try:
                status, _, _ = http_request(self.base, "GET", "/v2/", timeout=2)
                if status in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"{self.label} did not answer GET /v2/ within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, wipe: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if wipe and self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""


# --------------------------------------------------------------------------
# HTTP (small requests via http.client; bulk transfer via curl)


def basic_header(password: str = BENCH_PASS) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{BENCH_USER}:{password}".encode()).decode()


def http_request(base: str, method: str, target: str, body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 60):
    url = urllib.parse.urljoin(base + "/", target)
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise BenchError(f"refusing non-loopback URL {url}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        conn.close()


def auth_headers(srv: Server) -> dict:
    return dict(srv.headers)


def start_upload(srv: Server, repo: str) -> str:
    status, headers, body = http_request(srv.base, "POST", f"/v2/{repo}/blobs/uploads/",
                                         body=b"", headers=auth_headers(srv))
    if status != 202 or not headers.get("Location"):
        raise BenchError(f"{srv.label}: POST upload for {repo} -> {status} {body[:300]!r}")
    loc = urllib.parse.urljoin(srv.base + f"/v2/{repo}/blobs/uploads/", headers["Location"])
    return loc


def with_digest(location: str, digest: str) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={urllib.parse.quote(digest, safe='')}"


def push_small_blob(srv: Server, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = start_upload(srv, repo)
    headers = {"Content-Type": "application/octet-stream", **auth_headers(srv)}
    status, _, body = http_request(srv.base, "PUT", with_digest(loc, digest), body=data, headers=headers)
    if status != 201:
        raise BenchError(f"{srv.label}: PUT blob {digest} -> {status} {body[:300]!r}")
    return digest


def curl_auth(srv: Server) -> list:
    return [a for k, v in srv.headers.items() for a in ("-H", f"{k}: {v}")]


def push_blob_file(srv: Server, repo: str, path: str, digest: str) -> float:
    """Monolithic POST + PUT (curl -T streams the file). Returns wall seconds."""
    t0 = time.monotonic()
    loc = start_upload(srv, repo)
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-T", path,
           "-H", "Content-Type: application/octet-stream", "-H", "Expect:", *curl_auth(srv),
           with_digest(loc, digest)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    if res.returncode != 0 or res.stdout.strip() != "201":
        raise BenchError(f"{srv.label}: PUT {os.path.basename(path)} -> curl rc={res.returncode} "
                         f"http={res.stdout.strip()} {res.stderr.strip()}")
    return elapsed


def pull_blob(srv: Server, repo: str, digest: str, size: int) -> float:
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
           *curl_auth(srv), f"{srv.base}/v2/{repo}/blobs/{digest}"]
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    parts = res.stdout.split()
    if res.returncode != 0 or len(parts) != 3 or parts[0] != "200" or int(float(parts[1])) != size:
        raise BenchError(f"{srv.label}: GET blob -> curl rc={res.returncode} out={res.stdout!r} {res.stderr.strip()}")
    return float(parts[2]) or wall


def push_manifest(srv: Server, repo: str, tag: str) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(2048)
    cdig = push_small_blob(srv, repo, config)
    ldig = push_small_blob(srv, repo, layer)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cdig, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": ldig, "size": len(layer)}],
        "annotations": {"org.opencontainers.image.title": "portcullis-bench"},
    }, separators=(",", ":")).encode()
    headers = {"Content-Type": OCI_MANIFEST, **auth_headers(srv)}
    status, _, body = http_request(srv.base, "PUT", f"/v2/{repo}/manifests/{tag}", body=manifest, headers=headers)
    if status != 201:
        raise BenchError(f"{srv.label}: PUT manifest -> {status} {body[:300]!r}")
    # sanity: the exact request wrk will send must succeed, or req/s would be meaningless
    status, rh, body = http_request(srv.base, "GET", f"/v2/{repo}/manifests/{tag}",
                                    headers={"Accept": OCI_MANIFEST, **auth_headers(srv)})
    if status != 200 or body != manifest:
        raise BenchError(f"{srv.label}: GET manifest check -> {status} {body[:300]!r}")
    if srv.auth != "none":
        status, _, _ = http_request(srv.base, "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        if status != 401:
            raise BenchError(f"{srv.label}: anonymous GET manifest with auth enabled -> {status}, expected 401")
    return manifest


# --------------------------------------------------------------------------
# token service client (portcullis's auth.tokenserver)


def keys_bundle_argv(config: str) -> list:
    """`portcullis keys bundle --config C`, derived from the serve command (its
    `serve` argument becomes `keys bundle`) unless BENCH_PORTCULLIS_KEYS_CMD is set."""
    raw = os.environ.get("BENCH_PORTCULLIS_KEYS_CMD")
    if raw:
        return [a.replace("{config}", config) for a in shlex.split(raw)]
    argv = shlex.split(S.portcullis_cmd)
    if "serve" not in argv:
        raise BenchError("cannot derive `keys bundle` from BENCH_PORTCULLIS_CMD (no `serve` argument); "
                         "set BENCH_PORTCULLIS_KEYS_CMD")
    i = argv.index("serve")
    return [a.replace("{config}", config) for a in argv[:i] + ["keys", "bundle"] + argv[i + 1:]]


def token_query(repo: str, actions: str, offline: bool = False) -> str:
    q = [("service", TOKEN_SERVICE), ("scope", f"repository:{repo}:{actions}")]
    if offline:
        q += [("offline_token", "true"), ("client_id", TOKEN_CLIENT_ID)]
    return "/token?" + urllib.parse.urlencode(q, safe=":/,")


def refresh_form(refresh_token: str, repo: str) -> str:
    return urllib.parse.urlencode([("grant_type", "refresh_token"), ("refresh_token", refresh_token),
                                   ("client_id", TOKEN_CLIENT_ID), ("service", TOKEN_SERVICE),
                                   ("scope", f"repository:{repo}:pull")])


def jwt_claims(token: str) -> dict:
    import base64

    parts = token.split(".")
    if len(parts) != 3:
        raise BenchError(f"token is not a JWT: {token[:60]!r}")
    pad = "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(parts[1] + pad))


def check_token_response(what: str, status: int, body: bytes, repo: str, actions: list,
                         want_refresh: bool = False) -> dict:
    """A token response must be 200 with an access token for `actions` on `repo`,
    issued by portcullis to the bench user for this service."""
    if status != 200:
        raise BenchError(f"{what} -> {status} {body[:300]!r}")
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise BenchError(f"{what}: not JSON: {body[:300]!r}") from e
    tok = doc.get("access_token") or ""
    if not tok or doc.get("token", tok) != tok:
        raise BenchError(f"{what}: no access_token (or token != access_token): {body[:300]!r}")
    if want_refresh and not doc.get("refresh_token"):
        raise BenchError(f"{what}: no refresh_token: {body[:300]!r}")
    c = jwt_claims(tok)
    granted = [a for acc in c.get("access", []) if acc.get("type") == "repository" and acc.get("name") == repo
               for a in acc.get("actions", [])]
    if (c.get("iss") != TOKEN_ISSUER or c.get("aud") not in (TOKEN_SERVICE, [TOKEN_SERVICE])
            or c.get("sub") != BENCH_USER or not set(actions) <= set(granted)):
        raise BenchError(f"{what}: unexpected claims {c}")
    return doc


def fetch_token(srv: Server, repo: str, actions: str, offline: bool = False) -> dict:
    """GET /token with Basic credentials; the checked JSON response."""
    status, _, body = http_request(srv.base, "GET", token_query(repo, actions, offline),
                                   headers={"Authorization": basic_header()})
    return check_token_response(f"{srv.label}: GET /token ({actions})", status, body, repo,
                                actions.split(","), want_refresh=offline)


# --------------------------------------------------------------------------
# wrk

# Checks every response of a token run (status 200, a JWT in access_token) and
# counts them per thread; done() prints the totals for run_wrk to parse.
WRK_TOKEN_CHECK = r"""
good = 0
bad = 0
function response(status, headers, body)
  if status == 200 and string.find(body, '"access_token"%s*:%s*"ey') then
    good = good + 1
  else
    bad = bad + 1
  end
end
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
  end
  io.write(string.format("bench-check: good %d bad %d\n", g, b))
end
"""


def wrk_script(work: str, name: str, method: str = "GET", body: str = "", content_type: str = "") -> str:
    """A wrk Lua script: the request (method, form body) plus the per-response check."""
    if not re.fullmatch(r"[A-Za-z0-9%._~+=&:/,-]*", body):
        raise BenchError(f"refusing to embed an unexpected body in Lua: {body[:80]!r}")
    lines = [f'wrk.method = "{method}"']
    if body:
        lines.append(f'wrk.body = "{body}"')
    if content_type:
        lines.append(f'wrk.headers["Content-Type"] = "{content_type}"')
    path = os.path.join(work, f"wrk-{name}.lua")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + WRK_TOKEN_CHECK)
    return path

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return round(float(m.group(1)) * _UNITS_MS[m.group(2)], 3) if m else float("nan")


def run_wrk(url: str, headers: dict, duration: int, script: str = "") -> dict:
    cmd = ["wrk", f"-t{S.wrk_threads}", f"-c{S.wrk_conns}", f"-d{duration}s", "--latency", "--timeout", "30s"]
    if script:
        cmd += ["-s", script]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    res = subprocess.run(cmd, capture_output=True, text=True)
    out = res.stdout
    if res.returncode != 0:
        raise BenchError(f"wrk failed (rc={res.returncode}): {res.stderr.strip()} {out}")
    r: dict = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"^bench-check: good (\d+) bad (\d+)", out, re.M)
    if script and not m:
        raise BenchError(f"wrk script {os.path.basename(script)} printed no bench-check line: {out[-300:]}")
    if m:
        r["checked_ok"], r["checked_bad"] = int(m.group(1)), int(m.group(2))
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        r[f"p{pct}_ms"] = _ms(m.group(1)) if m else None
    return r


def wrk_measure(srv: Server, repo: str, tag: str, duration: int) -> dict:
    url = f"{srv.base}/v2/{repo}/manifests/{tag}"
    return wrk_checked(srv, url, {"Accept": OCI_MANIFEST, **auth_headers(srv)}, duration)


def wrk_checked(srv: Server, url: str, headers: dict, duration: int, script: str = "",
                unit: str = "req/s") -> dict:
    """Warm-up, then the measured wrk run; any non-2xx response (or, with a
    checking script, any response that fails the check) is an error."""
    if S.wrk_warmup > 0:
        run_wrk(url, headers, S.wrk_warmup, script)
    wait_idle(srv.pid)
    r = run_wrk(url, headers, duration, script)
    wait_idle(srv.pid)  # e.g. bcrypt of requests wrk abandoned at the end
    if r["non_2xx"]:
        raise BenchError(f"{srv.label}: wrk saw {r['non_2xx']} non-2xx responses out of {r['requests']}")
    if r.get("checked_bad"):
        raise BenchError(f"{srv.label}: {r['checked_bad']} of {r['checked_bad'] + r['checked_ok']} responses "
                         f"had no token (status 200 with an access_token JWT expected)")
    if r["requests"] == 0:
        log(f"  note: {srv.label} completed no request in {duration}s")
    checked = f", {r['checked_ok']} responses checked" if "checked_ok" in r else ""
    log(f"  {srv.label}: {r['rps']:.1f} {unit} (p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
        f"socket errors {r['socket_errors']}{checked})")
    return r


# --------------------------------------------------------------------------
# data files


def ensure_file(size_mb: int, index: int) -> tuple:
    """Random file of size_mb MiB, generated once and reused across runs."""
    os.makedirs(S.data_dir, exist_ok=True)
    path = os.path.join(S.data_dir, f"blob-{size_mb}M-{index}.bin")
    size = size_mb * MIB
    if not (os.path.exists(path) and os.path.getsize(path) == size):
        log(f"  generating {path} ({size_mb} MiB of random data)")
        tmp = path + ".tmp"
        with open(tmp, "wb") as out:
            subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=out, check=True)
        os.replace(tmp, path)
        try:
            os.remove(path + ".sha256")
        except FileNotFoundError:
            pass
    sidecar = path + ".sha256"
    st = os.stat(path)
    stamp = f"{st.st_size} {st.st_mtime_ns}"
    try:
        with open(sidecar) as f:
            cached_stamp, cached_digest = f.read().split("\n")[:2]
        if cached_stamp == stamp:
            return path, cached_digest, size
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:  # also warms the page cache for both servers alike
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    with open(sidecar, "w") as f:
        f.write(f"{stamp}\n{digest}\n")
    return path, digest, size


def settle_disk() -> None:
    """Flush dirty pages (generated data, the previous registry's blob) so that
    writeback of someone else's data does not slow the next measurement."""
    os.sync()


def warm_cache(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(8 * MIB):
            pass


def disk_check(scenarios: list, work: str) -> None:
    files = set()
    if "push" in scenarios or "pull" in scenarios:
        files |= {(S.blob_mb, i) for i in range(S.repeats if "push" in scenarios else 1)}
    if "mem" in scenarios:
        files |= {(S.conc_mb, i) for i in range(S.conc_clients)}
    missing = sum(mb for mb, i in files
                  if not os.path.exists(os.path.join(S.data_dir, f"blob-{mb}M-{i}.bin"))) * MIB
    # push: every attempt stores a distinct blob in each of the two registries;
    # mem: one registry at a time holds all concurrent blobs (wiped afterwards).
    stored = max(2 * S.repeats * S.blob_mb if "push" in scenarios else 0,
                 S.conc_clients * S.conc_mb if "mem" in scenarios else 0) * MIB * 1.1
    os.makedirs(S.data_dir, exist_ok=True)
    same_fs = os.stat(S.data_dir).st_dev == os.stat(work).st_dev
    checks = [(work, stored + (missing if same_fs else 0))]
    if not same_fs:
        checks.append((S.data_dir, missing))
    for path, need in checks:
        st = os.statvfs(path)
        avail = st.f_bavail * st.f_frsize
        log(f"disk: {path}: {avail / 2**30:.1f} GiB free, this run needs about {need / 2**30:.1f} GiB")
        if avail < need:
            log(f"WARNING: not enough free space under {path}; lower BENCH_BLOB_MB / BENCH_CONCURRENT_MB "
                f"or point BENCH_DATA_DIR / BENCH_TMPDIR elsewhere")


# --------------------------------------------------------------------------
# scenarios


class Bench:
    def __init__(self, work: str) -> None:
        self.work = work
        self.p = Server("portcullis", "portcullis", S.portcullis_cmd)
        self.r = Server("reference", "docker-registry", S.reference_cmd)
        self.servers = [self.p, self.r]
        self.mode: str | None = None
        self.results: dict = {}
        self.errors: dict = {}
        self.htpasswd = ""

    def ensure_mode(self, mode: str) -> None:
        if self.mode == mode and all(s.proc and s.proc.poll() is None for s in self.servers):
            return
        log(f"starting both registries ({mode})")
        for s in self.servers:
            s.stop()
        self.mode = None
        if mode == "auth":
            htpasswd = self.ensure_htpasswd()
            for s in self.servers:
                s.start(self.work, "htpasswd", ["auth:", "  htpasswd:", "    realm: bench", f"    path: {htpasswd}"],
                        {"Authorization": basic_header()})
        elif mode == "token":
            self.start_token_mode()
        else:
            for s in self.servers:
                s.start(self.work)
        self.mode = mode

    def ensure_htpasswd(self) -> str:
        if not self.htpasswd:
            self.htpasswd = os.path.join(self.work, "htpasswd")
            log(f"  htpasswd -nbB -C {S.bcrypt_cost} (bcrypt cost {S.bcrypt_cost})")
            res = subprocess.run(["htpasswd", "-nbB", "-C", str(S.bcrypt_cost), BENCH_USER, BENCH_PASS],
                                 capture_output=True, text=True, check=True)
            with open(self.htpasswd, "w") as f:
                f.write(res.stdout.strip() + "\n")
        return self.htpasswd

    def start_token_mode(self) -> None:
        """portcullis with auth.htpasswd (its token service's users) and
        auth.tokenserver; then docker-registry with auth.token trusting the
        certificate that `portcullis keys bundle` prints for the signing key
        portcullis generated on its first start."""
        htpasswd = self.ensure_htpasswd()
        self.p.start(self.work, "token", [
            "auth:",
            "  htpasswd:",
            "    realm: portcullis",
            f"    path: {htpasswd}",
            "  tokenserver:",
            f"    issuer: {TOKEN_ISSUER}",
            f"    service: {TOKEN_SERVICE}",
            f"    expiration: {TOKEN_EXPIRATION_S // 60}m",
        ])
        bundle = os.path.join(self.work, "token-rootcertbundle.pem")
        argv = keys_bundle_argv(os.path.join(self.p.dir, "config.yml"))
        log(f"  {' '.join(shlex.quote(a) for a in argv)} > {bundle}")
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BenchError(f"keys bundle failed: {e}") from e
        if res.returncode != 0 or "-----BEGIN CERTIFICATE-----" not in res.stdout:
            raise BenchError(f"keys bundle: rc={res.returncode}, no PEM certificate on stdout: "
                             f"{(res.stderr or res.stdout).strip()[:300]}")
        with open(bundle, "w") as f:
            f.write(res.stdout)
        self.r.start(self.work, "token", [
            "auth:",
            "  token:",
            f"    realm: {self.p.base}/token",
            f"    service: {TOKEN_SERVICE}",
            f"    issuer: {TOKEN_ISSUER}",
            f"    rootcertbundle: {bundle}",
        ])

    def order(self, i: int) -> list:
        """Alternate who goes first, so drift does not favour one side."""
        return self.servers if i % 2 == 0 else list(reversed(self.servers))

    # 1. push
    def push(self) -> None:
        self.ensure_mode("noauth")
        files = [ensure_file(S.blob_mb, i) for i in range(S.repeats)]
        best = {s.key: 0.0 for s in self.servers}
        runs = {s.key: [] for s in self.servers}
        for i, (path, digest, size) in enumerate(files):
            warm_cache(path)
            for s in self.order(i):
                settle_disk()
                wait_idle(s.pid)
                secs = push_blob_file(s, f"bench/push{i}", path, digest)
                mibs = size / MIB / secs
                runs[s.key].append(round(mibs, 1))
                best[s.key] = max(best[s.key], mibs)
                s.state.setdefault("blobs", []).append((f"bench/push{i}", digest, size))
                log(f"  push #{i + 1} {s.label}: {size / MIB:.0f} MiB in {secs:.2f}s = {mibs:.1f} MiB/s")
        self.results["push"] = {"unit": "MiB/s", "portcullis": best["portcullis"], "reference": best["reference"],
                                "runs": runs, "size_mb": S.blob_mb}

    # 2. pull
    def pull(self) -> None:
        self.ensure_mode("noauth")
        path, digest, size = ensure_file(S.blob_mb, 0)
        for s in self.servers:
            if not s.state.get("blobs"):
                log(f"  pushing the pull blob to {s.label} (untimed)")
                push_blob_file(s, "bench/push0", path, digest)
                s.state["blobs"] = [("bench/push0", digest, size)]
        best = {s.key: 0.0 for s in self.servers}
        runs = {s.key: [] for s in self.servers}
        for i in range(S.pull_repeats):
            for s in self.order(i):
                repo, dgst, sz = s.state["blobs"][0]
                settle_disk()
                wait_idle(s.pid)
                secs = pull_blob(s, repo, dgst, sz)
                mibs = sz / MIB / secs
                runs[s.key].append(round(mibs, 1))
                best[s.key] = max(best[s.key], mibs)
                log(f"  pull #{i + 1} {s.label}: {sz / MIB:.0f} MiB in {secs:.2f}s = {mibs:.1f} MiB/s")
        self.results["pull"] = {"unit": "MiB/s", "portcullis": best["portcullis"], "reference": best["reference"],
                                "runs": runs, "size_mb": S.blob_mb}

    # 3. get
    def get(self) -> None:
        self.ensure_mode("noauth")
        out = {}
        for s in self.servers:
            if "manifest" not in s.state:
                push_manifest(s, "bench/manifest", "latest")
                s.state["manifest"] = True
        for s in self.servers:
            out[s.key] = wrk_measure(s, "bench/manifest", "latest", S.wrk_duration)
        self.results["get"] = {"unit": "req/s", "portcullis": out["portcullis"]["rps"],
                               "reference": out["reference"]["rps"],
                               "wrk": {k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in out.items()}}

    # 4. auth
    def auth(self) -> None:
        if "get" not in self.results:
            log("auth needs the no-auth baseline: running 'get' first")
            self.get()
        self.ensure_mode("auth")
        out = {}
        for s in self.servers:
            push_manifest(s, "bench/manifest", "latest")
        for s in self.servers:
            out[s.key] = wrk_measure(s, "bench/manifest", "latest", S.auth_duration)
        self.results["auth"] = {"unit": "req/s", "portcullis": out["portcullis"]["rps"],
                                "reference": out["reference"]["rps"],
                                "portcullis_noauth": self.results["get"]["portcullis"],
                                "reference_noauth": self.results["get"]["reference"],
                                "wrk": {k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in out.items()}}

    # 5. mem
    def mem(self) -> None:
        files = [ensure_file(S.conc_mb, i) for i in range(S.conc_clients)]
        for s in self.servers:
            s.stop()
        self.mode = None
        log("starting both registries fresh (idle RSS)")
        for s in self.servers:
            s.start(self.work)
        time.sleep(S.idle_settle_s)
        idle = {}
        for s in self.servers:
            wait_idle(s.pid)
            idle[s.key] = proc_status(s.pid)["VmRSS"]
            log(f"  {s.label} idle VmRSS {idle[s.key] / MIB:.1f} MiB")
        for path, _, _ in files:
            warm_cache(path)
        peak = {}
        for s in self.servers:
            peak[s.key] = self._concurrent_push(s, files)
            s.stop()  # frees its disk before the other one fills its own
        self.mode = None
        self.results["mem"] = {"unit": "MiB", "idle": {k: v / MIB for k, v in idle.items()},
                               "peak": peak, "clients": S.conc_clients, "size_mb": S.conc_mb}

    # 6. token
    def token(self) -> None:
        if "get" not in self.results:
            log("token needs the no-auth baseline: running 'get' first")
            self.get()
        if S.wrk_warmup + S.wrk_duration > TOKEN_EXPIRATION_S - 30:
            raise BenchError(f"BENCH_WRK_DURATION + BENCH_WRK_WARMUP must stay under the {TOKEN_EXPIRATION_S} s "
                             f"token lifetime (minus 30 s)")
        self.ensure_mode("token")
        repo, tag = "bench/manifest", "latest"
        manifests = {}
        for s in self.servers:
            # both registries trust portcullis's tokens; push with a pull,push token
            s.headers = {"Authorization": "Bearer " + fetch_token(self.p, repo, "pull,push")["access_token"]}
            manifests[s.key] = push_manifest(s, repo, tag)

        # a) manifest GET with a pull-only bearer token, fetched just before each run
        bearer = {}
        for s in self.servers:
            s.headers = {"Authorization": "Bearer " + fetch_token(self.p, repo, "pull")["access_token"]}
            status, _, body = http_request(s.base, "GET", f"/v2/{repo}/manifests/{tag}",
                                           headers={"Accept": OCI_MANIFEST, **s.headers})
            if status != 200 or body != manifests[s.key]:
                raise BenchError(f"{s.label}: GET manifest with a pull token -> {status} {body[:300]!r}")
            bearer[s.key] = wrk_measure(s, repo, tag, S.wrk_duration)

        # b) GET /token with Basic credentials, the same user every time
        p = self.p
        fetch_token(p, repo, "pull")  # the checks below, once, outside wrk
        status, _, body = http_request(p.base, "GET", token_query(repo, "pull"),
                                       headers={"Authorization": basic_header("wrong-" + BENCH_PASS)})
        if status != 401:
            raise BenchError(f"portcullis: GET /token with a wrong password -> {status}, expected 401")
        script = wrk_script(self.work, "token-basic")
        basic = wrk_checked(p, p.base + token_query(repo, "pull"), {"Authorization": basic_header()},
                            S.wrk_duration, script, "tokens/s")

        # c) POST /token, grant_type=refresh_token, with one refresh token
        refresh = fetch_token(p, repo, "pull", offline=True)["refresh_token"]
        form = refresh_form(refresh, repo)
        ctype = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = http_request(p.base, "POST", "/token", body=form.encode(), headers=ctype)
        check_token_response("portcullis: POST /token (refresh_token)", status, body, repo, ["pull"])
        status, _, body = http_request(p.base, "POST", "/token", headers=ctype,
                                       body=refresh_form(refresh[:-4] + "AAAA", repo).encode())
        if status not in (400, 401):
            raise BenchError(f"portcullis: POST /token with a forged refresh token -> {status}, expected 400")
        script = wrk_script(self.work, "token-refresh", "POST", form, ctype["Content-Type"])
        post = wrk_checked(p, p.base + "/token", {}, S.wrk_duration, script, "tokens/s")

        def strip(r: dict) -> dict:
            return {k: v for k, v in r.items() if k != "raw"}

        self.results["token"] = {
            "bearer_get": {"unit": "req/s", "portcullis": bearer["portcullis"]["rps"],
                           "reference": bearer["reference"]["rps"],
                           "portcullis_noauth": self.results["get"]["portcullis"],
                           "reference_noauth": self.results["get"]["reference"],
                           "wrk": {k: strip(v) for k, v in bearer.items()}},
            "issue_basic": {"unit": "tokens/s", "portcullis": basic["rps"], "reference": None,
                            "wrk": {"portcullis": strip(basic)}},
            "issue_refresh": {"unit": "tokens/s", "portcullis": post["rps"], "reference": None,
                              "wrk": {"portcullis": strip(post)}},
            "reference_note": "docker-registry has no token service",
        }

    def _concurrent_push(self, s: Server, files: list) -> dict:
        samples: list = []
        stop = threading.Event()

        def sampler() -> None:
            while not stop.is_set():
                try:
                    samples.append(proc_status(s.pid)["VmRSS"])
                except (OSError, KeyError):
                    pass
                stop.wait(S.rss_interval_ms / 1000)

        errors: list = []

        def client(i: int, path: str, digest: str) -> None:
            try:
                push_blob_file(s, f"bench/conc{i}", path, digest)
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append(str(e))

        settle_disk()
        wait_idle(s.pid)
        t = threading.Thread(target=sampler, daemon=True)
        t.start()
        t0 = time.monotonic()
        clients = [threading.Thread(target=client, args=(i, p, d)) for i, (p, d, _) in enumerate(files)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        secs = time.monotonic() - t0
        time.sleep(0.3)
        stop.set()
        t.join()
        st = proc_status(s.pid)
        if errors:
            raise BenchError(f"{s.label}: concurrent push failed: {errors[0]}")
        total = sum(sz for _, _, sz in files)
        res = {"sampled_peak": max(samples) / MIB if samples else 0.0, "vmhwm": st["VmHWM"] / MIB,
               "samples": len(samples), "seconds": round(secs, 2), "aggregate_mibs": round(total / MIB / secs, 1)}
        res["peak"] = max(res["sampled_peak"], res["vmhwm"])
        log(f"  {s.label}: {len(files)} x {files[0][2] / MIB:.0f} MiB concurrently in {secs:.1f}s; "
            f"peak VmRSS {res['sampled_peak']:.1f} MiB (VmHWM {res['vmhwm']:.1f} MiB)")
        return res

    def run(self, scenarios: list) -> None:
        for name in ALL_SCENARIOS:
            if name not in scenarios:
                continue
            log(f"== {name}")
            try:
                getattr(self, name)()
            except BenchError as e:
                log(f"ERROR in {name}: {e}")
                self.errors[name] = str(e)
                for s in self.servers:  # start clean for the next scenario
                    s.stop()
                self.mode = None
        for s in self.servers:
            s.stop()


# --------------------------------------------------------------------------
# report


def ratio(a: float, b: float):
    return a / b if b else None


def rows(results: dict, errors: dict) -> list:
    """(scenario, metric, portcullis, reference, ratio, target, verdict)."""
    out = []

    def add(scn, metric, p, r, rat, target, ok, unit, reference_text=None):
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        row = {"scenario": scn, "metric": metric, "portcullis": p, "reference": r, "ratio": rat,
               "target": target, "result": verdict, "unit": unit}
        if reference_text:
            row["reference_text"] = reference_text
        out.append(row)

    if "push" in results:
        x = results["push"]
        rt = ratio(x["portcullis"], x["reference"])
        add("1. blob push", f"{x['size_mb']} MiB monolithic, best of {S.repeats} (MiB/s)",
            x["portcullis"], x["reference"], rt, "ratio >= 4x", rt is not None and rt >= 4, "MiB/s")
    if "pull" in results:
        x = results["pull"]
        rt = ratio(x["portcullis"], x["reference"])
        add("2. blob pull", f"{x['size_mb']} MiB GET, best of {S.pull_repeats} (MiB/s)",
            x["portcullis"], x["reference"], rt, "ratio >= 0.9x", rt is not None and rt >= 0.9, "MiB/s")
    if "get" in results:
        x = results["get"]
        rt = ratio(x["portcullis"], x["reference"])
        add("3. manifest GET", f"by tag, {S.wrk_conns} conns, {S.wrk_duration} s, no auth (req/s)",
            x["portcullis"], x["reference"], rt, "ratio >= 10x", rt is not None and rt >= 10, "req/s")
    if "auth" in results:
        x = results["auth"]
        rt = ratio(x["portcullis"], x["reference"])
        add("4. manifest GET + auth", f"htpasswd bcrypt-{S.bcrypt_cost}, {S.wrk_conns} conns, {S.auth_duration} s (req/s)",
            x["portcullis"], x["reference"], rt, "vs docker-registry: info", None, "req/s")
        own = ratio(x["portcullis"], x["portcullis_noauth"])
        ref_own = ratio(x["reference"], x["reference_noauth"])
        add("4. manifest GET + auth", "with auth / without auth (same registry)",
            own, ref_own, None, "portcullis >= 0.5x", own is not None and own >= 0.5, "x")
    if "mem" in results:
        x = results["mem"]
        p, r = x["idle"]["portcullis"], x["idle"]["reference"]
        add("5. memory", "idle RSS after startup (MiB)", p, r, ratio(p, r), "portcullis < 30 MiB", p < 30, "MiB")
        p, r = x["peak"]["portcullis"]["peak"], x["peak"]["reference"]["peak"]
        add("5. memory", f"peak RSS, {x['clients']} concurrent {x['size_mb']} MiB pushes (MiB)",
            p, r, ratio(p, r), "portcullis < 100 MiB", p < 100, "MiB")
    if "token" in results:
        x = results["token"]["bearer_get"]
        rt = ratio(x["portcullis"], x["reference"])
        add("6. manifest GET + bearer", f"ES256 token from portcullis, {S.wrk_conns} conns, {S.wrk_duration} s (req/s)",
            x["portcullis"], x["reference"], rt, "vs docker-registry: info", None, "req/s")
        own = ratio(x["portcullis"], x["portcullis_noauth"])
        ref_own = ratio(x["reference"], x["reference_noauth"])
        add("6. manifest GET + bearer", "with bearer / without auth (same registry)",
            own, ref_own, None, "portcullis >= 0.8x", own is not None and own >= 0.8, "x")
        none = "none (no token service)"
        x = results["token"]["issue_basic"]
        add("6. token issuance", f"GET /token, Basic bcrypt-{S.bcrypt_cost}, same user, {S.wrk_conns} conns, "
            f"{S.wrk_duration} s (tokens/s)", x["portcullis"], None, None, ">= 2,000 tokens/s",
            x["portcullis"] >= 2000, "tokens/s", none)
        x = results["token"]["issue_refresh"]
        add("6. token issuance", f"POST /token, refresh_token grant, {S.wrk_conns} conns, "
            f"{S.wrk_duration} s (tokens/s)", x["portcullis"], None, None, ">= 2,000 tokens/s",
            x["portcullis"] >= 2000, "tokens/s", none)
    for name, err in errors.items():
        out.append({"scenario": name, "metric": "error: " + err.splitlines()[0][:100], "portcullis": None,
                    "reference": None, "ratio": None, "target": "", "result": "ERROR", "unit": ""})
    return out


def fmt(v, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if unit == "x":
        return f"{v:.0f}x" if v >= 100 else f"{v:.2f}x" if v >= 0.1 else f"{v:.2g}x"
    return f"{v:,.1f}" if v < 1e5 else f"{v:,.0f}"


def machine_info() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass

    def cmd(*argv) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = cmd("git", "rev-parse", "--short", "HEAD")
    dirty = bool(cmd("git", "status", "--porcelain", "--untracked-files=no"))
    if os.environ.get("BENCH_PORTCULLIS_CMD"):
        commit = f"(BENCH_PORTCULLIS_CMD; tree at {commit}"
        dirty_note = "-dirty)" if dirty else ")"
        return_commit = commit + dirty_note
    else:
        return_commit = commit + ("-dirty" if dirty else "")
    ref_ver = cmd(*shlex.split(S.reference_cmd.replace("{config}", ""))[:1], "--version")
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_mib": mem, "kernel": platform.release(),
            "commit": return_commit, "reference_version": ref_ver,
            "wrk": cmd("wrk", "--version").splitlines()[0] if cmd("wrk", "--version") else "",
            "curl": cmd("curl", "--version").splitlines()[0] if cmd("curl", "--version") else ""}


def report(bench: Bench, scenarios: list, mi: dict) -> int:
    now = datetime.datetime.now().astimezone()
    table = rows(bench.results, bench.errors)
    doc = {"date": now.isoformat(timespec="seconds"), "machine": mi, "settings": S.as_dict(),
           "scenarios": scenarios, "results": bench.results, "errors": bench.errors, "table": table}
    os.makedirs(os.path.dirname(S.results), exist_ok=True)
    with open(S.results, "w") as f:
        json.dump(doc, f, indent=2, default=str)

    hdr = ["scenario", "metric", "portcullis", "docker-registry", "ratio p/ref", "target", "result"]
    cells = [[r["scenario"], r["metric"], fmt(r["portcullis"], r["unit"]),
              r.get("reference_text") or fmt(r["reference"], r["unit"]),
              fmt(r["ratio"], "x"), r["target"], r["result"]] for r in table]

    # plain table on stderr
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(hdr)]
    line = "  ".join(h.ljust(w) for h, w in zip(hdr, widths))
    print("\n" + line + "\n" + "-" * len(line), file=sys.stderr)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)), file=sys.stderr)
    print(f"\nJSON: {S.results}\n", file=sys.stderr)

    # markdown on stdout
    md = [f"Measured {now:%Y-%m-%d %H:%M %Z} on {mi['nproc']} x {mi['cpu'] or 'unknown CPU'}, "
          f"{mi['mem_mib']} MiB RAM, Linux {mi['kernel']}; portcullis {mi['commit']}, "
          f"{mi['reference_version'] or 'docker-registry'}"
          + (" (BENCH_QUICK=1: smoke-test sizes, not representative)" if S.quick else "") + ".",
          "",
          "| " + " | ".join(hdr) + " |",
          "|" + "|".join(["---"] * 2 + ["---:"] * 3 + ["---"] * 2) + "|"]
    for c in cells:
        md.append("| " + " | ".join(v.replace("|", "\\|") for v in c) + " |")
    extra = []
    for key in ("get", "auth"):
        if key in bench.results:
            w = bench.results[key]["wrk"]
            for side, label in (("portcullis", "portcullis"), ("reference", "docker-registry")):
                x = w[side]
                extra.append(f"- {key}, {label}: {x['requests']} requests, latency p50 {fmt(x['p50_ms'])} ms, "
                             f"p99 {fmt(x['p99_ms'])} ms, socket errors {x['socket_errors']}")
    if "token" in bench.results:
        t = bench.results["token"]
        for side, label in (("portcullis", "portcullis"), ("reference", "docker-registry")):
            x = t["bearer_get"]["wrk"][side]
            extra.append(f"- token bearer GET, {label}: {x['requests']} requests, latency p50 {fmt(x['p50_ms'])} ms, "
                         f"p99 {fmt(x['p99_ms'])} ms, socket errors {x['socket_errors']}")
        for key, label in (("issue_basic", "GET /token (Basic)"), ("issue_refresh", "POST /token (refresh)")):
            x = t[key]["wrk"]["portcullis"]
            extra.append(f"- {label}, portcullis: {x['requests']} tokens, each response checked "
                         f"({x['checked_ok']} ok, {x['checked_bad']} bad), latency p50 {fmt(x['p50_ms'])} ms, "
                         f"p99 {fmt(x['p99_ms'])} ms, socket errors {x['socket_errors']}")
    if "push" in bench.results:
        x = bench.results["push"]["runs"]
        extra.append(f"- push runs (MiB/s): portcullis {x['portcullis']}, docker-registry {x['reference']}")
    if "pull" in bench.results:
        x = bench.results["pull"]["runs"]
        extra.append(f"- pull runs (MiB/s): portcullis {x['portcullis']}, docker-registry {x['reference']}")
    if "mem" in bench.results:
        for side, label in (("portcullis", "portcullis"), ("reference", "docker-registry")):
            x = bench.results["mem"]["peak"][side]
            extra.append(f"- concurrent push, {label}: sampled peak {x['sampled_peak']:.1f} MiB, VmHWM "
                         f"{x['vmhwm']:.1f} MiB, {x['seconds']} s, {x['aggregate_mibs']} MiB/s aggregate")
    if extra:
        md += ["", *extra]
    print("\n".join(md))
    return 1 if bench.errors else 0


# --------------------------------------------------------------------------


def main(argv: list) -> int:
    scenarios = []
    for a in argv:
        if a in ("-h", "--help"):
            print(__doc__.strip() + "\n\nusage: bench/run.sh [" + " ".join(ALL_SCENARIOS) + "]", file=sys.stderr)
            return 0
        if a == "all":
            scenarios = list(ALL_SCENARIOS)
            continue
        if a not in ALL_SCENARIOS:
            print(f"bench: unknown scenario {a!r}; choose from: {' '.join(ALL_SCENARIOS)}", file=sys.stderr)
            return 2
        scenarios.append(a)
    scenarios = scenarios or list(ALL_SCENARIOS)
    if ("auth" in scenarios or "token" in scenarios) and "get" not in scenarios:
        scenarios.append("get")  # the auth and token targets are relative to the no-auth figure
    for tool in ("curl", "wrk", "htpasswd", "head"):
        if not shutil.which(tool):
            print(f"bench: {tool} not found (Debian: apt-get install -y wrk curl apache2-utils)", file=sys.stderr)
            return 2

    own_work = not S.work_dir
    work = S.work_dir or tempfile.mkdtemp(prefix="portcullis-bench-", dir="/var/tmp")
    bench = Bench(work)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    log(f"scenarios: {' '.join(s for s in ALL_SCENARIOS if s in scenarios)}; work dir {work}; data {S.data_dir}")
    log("settings: " + ", ".join(f"{k}={v}" for k, v in S.as_dict().items() if not k.endswith("_cmd")))
    mi = machine_info()  # before the run: the commit is the one that was built
    try:
        disk_check(scenarios, work)
        bench.run(scenarios)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for s in bench.servers:
            s.stop()
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    return report(bench, scenarios, mi)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
