#!/usr/bin/env python3
"""What the abuse protections cost: portcullis with them all OFF, with them all ON,
and docker-registry, side by side in one run; and `portcullis audit verify`
throughput on a generated, validly chained audit log.

Started by bench/abuse/run.sh, which builds portcullis and owns the scratch
directory. Reuses bench/bench.py's helpers (servers, wrk, token client).
Standard library only; all traffic goes to 127.0.0.1. Knobs: see bench/abuse/README.md.

Output: progress and a plain table on stderr, the same table as markdown on
stdout, everything (raw wrk runs included) as JSON in bench/results/abuse.json.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import bench as B  # noqa: E402  (bench/bench.py: Server, run_wrk, fetch_token, ...)

S = B.S
log = B.log
BenchError = B.BenchError

REPO = "bench/app"
TAG = "v1"
ORIGIN = "https://ui.example.com"
TOKEN_EXPIRATION_M = 30  # one token per server for the whole run
ON_SECTIONS = ["cors", "debug", "ratelimit", "audit"]


class Settings:
    def __init__(self) -> None:
        q = S.quick
        self.rounds = max(1, B.env_int("BENCH_ROUNDS", 3))
        self.duration = max(1, B.env_int("BENCH_WRK_DURATION", 2 if q else 10))
        self.warmup = max(0, B.env_int("BENCH_WRK_WARMUP", 1 if q else 2))
        self.audit_lines = max(10, B.env_int("BENCH_AUDIT_LINES", 1_000_000))
        self.audit_repeats = max(1, B.env_int("BENCH_AUDIT_REPEATS", 2 if q else 3))
        self.results = os.environ.get("BENCH_RESULTS") or os.path.join(B.HERE, "results", "abuse.json")
        self.audit_cmd = os.environ.get("BENCH_PORTCULLIS_AUDIT_CMD") or ""
        # which "ON" sections (all by default; a subset to find what costs what)
        self.on = [x for x in re.split(r"[ ,]+", os.environ.get("BENCH_ON") or " ".join(ON_SECTIONS)) if x]
        bad = sorted(set(self.on) - set(ON_SECTIONS))
        if bad or not self.on:
            sys.exit(f"bench/abuse: BENCH_ON: unknown {bad or 'empty'}; choose from {','.join(ON_SECTIONS)}")

    def as_dict(self) -> dict:
        return {"quick": S.quick, "rounds": self.rounds, "wrk_duration_s": self.duration,
                "wrk_warmup_s": self.warmup, "wrk_connections": S.wrk_conns, "wrk_threads": S.wrk_threads,
                "bcrypt_cost": S.bcrypt_cost, "audit_lines": self.audit_lines,
                "audit_repeats": self.audit_repeats, "on": ",".join(self.on), "portcullis_cmd": S.portcullis_cmd,
                "reference_cmd": S.reference_cmd, "audit_cmd": " ".join(audit_argv())}


A = Settings()


def audit_argv() -> list:
    """`portcullis audit verify`, derived from the serve command (everything
    before its `serve` argument) unless BENCH_PORTCULLIS_AUDIT_CMD is set."""
    if A.audit_cmd:
        return shlex.split(A.audit_cmd)
    argv = shlex.split(S.portcullis_cmd)
    if "serve" not in argv:
        raise BenchError("cannot derive `audit verify` from BENCH_PORTCULLIS_CMD (no `serve` argument); "
                         "set BENCH_PORTCULLIS_AUDIT_CMD")
    return argv[: argv.index("serve")] + ["audit", "verify"]


# --------------------------------------------------------------------------
# configurations


def on_lines(work: str, key: str) -> tuple:
    """The "everything ON" sections. B.Server.start appends these lines right
    after `http.secret`, so the indented ones continue the `http:` mapping.
    Lockout needs no lines: it is on by default, in OFF too."""
    audit_dir = os.path.join(work, f"audit-{key}")
    os.makedirs(audit_dir)
    debug_port = B.free_port()
    sections = {
        "cors": ["  cors:", f'    allowedorigins: ["{ORIGIN}"]'],
        "debug": ["  debug:", f"    addr: 127.0.0.1:{debug_port}", "    prometheus:", "      enabled: true"],
        "ratelimit": ["ratelimit:",
                      "  pull: {limit: 100000000, window: 1h}",
                      "  push: {limit: 100000000, window: 1h}",
                      "  token: {limit: 100000000, window: 1m}",
                      "  authfailure: {limit: 1000000, window: 1m}"],
        "audit": ["audit:", "  file:", f"    path: {os.path.join(audit_dir, 'audit.log')}"]
        + ([f"  pulls: {os.environ['BENCH_AUDIT_PULLS']}"] if os.environ.get("BENCH_AUDIT_PULLS") else []),
    }
    # the http: ones first (they continue http:), then the top-level ones
    lines = [ln for name in ON_SECTIONS if name in A.on for ln in sections[name]]
    return lines, debug_port if "debug" in A.on else 0, os.path.join(audit_dir, "audit.log") if "audit" in A.on else ""


def token_lines(htpasswd: str) -> list:
    return [
        "auth:",
        "  htpasswd:",
        "    realm: portcullis",
        f"    path: {htpasswd}",
        "  tokenserver:",
        f"    issuer: {B.TOKEN_ISSUER}",
        f"    service: {B.TOKEN_SERVICE}",
        f"    expiration: {TOKEN_EXPIRATION_M}m",
    ]


class Target:
    """One server under test and the request wrk sends it."""

    def __init__(self, key: str, label: str, srv: B.Server, mode: str, on: bool) -> None:
        self.key, self.label, self.srv, self.mode, self.on = key, label, srv, mode, on
        self.debug_port = 0
        self.audit_path = ""
        self.headers: dict = {}  # what wrk sends

    @property
    def url(self) -> str:
        return f"{self.srv.base}/v2/{REPO}/manifests/{TAG}"


class Abuse:
    def __init__(self, work: str) -> None:
        self.work = work
        self.targets: dict = {}
        self.results: dict = {}
        self.errors: dict = {}
        self.bench = B.Bench(work)  # for ensure_htpasswd only

    def servers(self) -> list:
        return [t.srv for t in self.targets.values()]

    def add(self, key: str, label: str, cmd: str, mode: str, on: bool, config: list) -> Target:
        t = Target(key, label, B.Server(key, label, cmd), mode, on)
        lines = list(config)
        if on:
            extra, t.debug_port, t.audit_path = on_lines(self.work, key)
            lines = extra + lines
        self.targets[key] = t
        t.srv.start(self.work, "token" if mode == "bearer" else "none", lines)
        return t

    # ---- setup

    def setup(self) -> None:
        log("starting portcullis OFF, portcullis ON and docker-registry, anonymous")
        self.add("get-off", "portcullis OFF", S.portcullis_cmd, "get", False, [])
        self.add("get-on", "portcullis ON", S.portcullis_cmd, "get", True, [])
        self.add("get-ref", "docker-registry", S.reference_cmd, "get", False, [])
        log("starting the same three in token mode (docker-registry: auth.token trusting portcullis OFF's key)")
        htpasswd = self.bench.ensure_htpasswd()
        off = self.add("bearer-off", "portcullis OFF", S.portcullis_cmd, "bearer", False, token_lines(htpasswd))
        self.add("bearer-on", "portcullis ON", S.portcullis_cmd, "bearer", True, token_lines(htpasswd))
        bundle = os.path.join(self.work, "token-rootcertbundle.pem")
        argv = B.keys_bundle_argv(os.path.join(off.srv.dir, "config.yml"))
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if res.returncode != 0 or "-----BEGIN CERTIFICATE-----" not in res.stdout:
            raise BenchError(f"keys bundle: rc={res.returncode}: {(res.stderr or res.stdout).strip()[:300]}")
        with open(bundle, "w") as f:
            f.write(res.stdout)
        self.add("bearer-ref", "docker-registry", S.reference_cmd, "bearer", False, [
            "auth:", "  token:", f"    realm: {off.srv.base}/token", f"    service: {B.TOKEN_SERVICE}",
            f"    issuer: {B.TOKEN_ISSUER}", f"    rootcertbundle: {bundle}"])

        for t in self.targets.values():
            issuer = self.targets["bearer-off"] if t.key == "bearer-ref" else t
            if t.mode == "bearer":
                t.srv.headers = {"Authorization": "Bearer " + B.fetch_token(issuer.srv, REPO, "pull,push")["access_token"]}
            B.push_manifest(t.srv, REPO, TAG)  # also checks the GET, and 401 without a token in token mode
            if t.mode == "bearer":
                # GET /token?service=portcullis&scope=repository:bench/app:pull with Basic, once
                t.srv.headers = {"Authorization": "Bearer " + B.fetch_token(issuer.srv, REPO, "pull")["access_token"]}
            t.headers = {"Accept": B.OCI_MANIFEST, **t.srv.headers}
            if t.on and "cors" in A.on:
                t.headers["Origin"] = ORIGIN
            self.check(t)

    def check(self, t: Target) -> None:
        """The exact request wrk will send answers 200; ON is on and OFF is off."""
        status, h, body = B.http_request(t.srv.base, "GET", f"/v2/{REPO}/manifests/{TAG}", headers=t.headers)
        if status != 200:
            raise BenchError(f"{t.label} ({t.mode}): GET manifest -> {status} {body[:300]!r}")
        if t.srv.key.endswith("-ref"):
            return
        acao, rl = h.get("Access-Control-Allow-Origin"), h.get("RateLimit-Limit")
        if not t.on:
            if acao or rl:
                raise BenchError(f"{t.label} ({t.mode}): OFF sent CORS or RateLimit headers: {acao!r} {rl!r}")
            return
        if "cors" in A.on and acao != ORIGIN:
            raise BenchError(f"{t.label} ({t.mode}): Access-Control-Allow-Origin {acao!r}, expected {ORIGIN}")
        if "ratelimit" in A.on and not rl:
            raise BenchError(f"{t.label} ({t.mode}): no RateLimit-Limit header on a manifest GET")
        if "debug" in A.on:
            status, _, body = B.http_request(f"http://127.0.0.1:{t.debug_port}", "GET", "/metrics")
            if status != 200 or b"portcullis_" not in body:
                raise BenchError(f"{t.label} ({t.mode}): debug /metrics -> {status} {body[:200]!r}")
        deadline = time.monotonic() + 10
        # Aggregated pulls are written once a minute: only all and sample:N
        # show a pull line at once.
        aggregated = os.environ.get("BENCH_AUDIT_PULLS", "all") == "aggregate"
        while t.audit_path and not aggregated and not (os.path.exists(t.audit_path)
                                    and b'"event":"manifest.pull"' in open(t.audit_path, "rb").read()):
            if time.monotonic() > deadline:
                raise BenchError(f"{t.label} ({t.mode}): no manifest.pull line in {t.audit_path} after 10 s")
            time.sleep(0.1)
        log(f"  {t.label} ({t.mode}): checked that {', '.join(A.on)} are on")

    # ---- 1. manifest GETs

    def wait_all_idle(self, timeout: float = 60.0) -> None:
        """B.wait_idle for every running server at once (one at a time would
        cost half a second each): all under ~8% of a core for two quarter-seconds,
        e.g. until ON's audit writer has caught up after wrk stops."""
        pids = [s.pid for s in self.servers() if s.proc is not None and s.proc.poll() is None]
        hz = os.sysconf("SC_CLK_TCK")
        prev = {p: B.cpu_ticks(p) for p in pids}
        quiet = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.25)
            cur = {p: B.cpu_ticks(p) for p in pids}
            busy = [p for p in pids if cur[p] - prev[p] > max(1, hz * 0.25 * 0.08)]
            prev = cur
            quiet = 0 if busy else quiet + 1
            if quiet >= 2:
                return
        log(f"  note: pids {busy} still busy after {timeout:.0f}s; measuring anyway")

    def run_gets(self) -> None:
        budget = A.rounds * len(self.targets) * (A.duration + A.warmup + 5)
        if budget > (TOKEN_EXPIRATION_M - 5) * 60:
            raise BenchError(f"BENCH_ROUNDS x BENCH_WRK_DURATION too long for the {TOKEN_EXPIRATION_M} min tokens")
        order = list(self.targets.values())
        runs: dict = {k: [] for k in self.targets}
        for r in range(A.rounds):
            k = (r * len(order)) // A.rounds  # rotate, so no target always goes first or last
            log(f"round {r + 1}/{A.rounds}")
            for t in order[k:] + order[:k]:
                if r == 0 and A.warmup:
                    B.run_wrk(t.url, t.headers, A.warmup)
                self.wait_all_idle()
                res = B.run_wrk(t.url, t.headers, A.duration)
                if res["non_2xx"] or res["requests"] == 0:
                    raise BenchError(f"{t.label} ({t.mode}): wrk saw {res['non_2xx']} non-2xx responses "
                                     f"out of {res['requests']}")
                res.pop("raw", None)
                runs[t.key].append(res)
                log(f"  {t.mode:6} {t.label:15}: {res['rps']:10.1f} req/s (p50 {res['p50_ms']} ms, "
                    f"p99 {res['p99_ms']} ms, socket errors {res['socket_errors']})")
        self.wait_all_idle()
        for mode in ("get", "bearer"):
            med = {side: statistics.median(x["rps"] for x in runs[f"{mode}-{side}"]) for side in ("off", "on", "ref")}
            per_round = [runs[f"{mode}-on"][i]["rps"] / runs[f"{mode}-off"][i]["rps"] for i in range(A.rounds)]
            self.results[mode] = {"unit": "req/s", **med,
                                  "on_off": med["on"] / med["off"], "on_ref": med["on"] / med["ref"],
                                  "on_off_per_round": [round(x, 3) for x in per_round],
                                  "runs": {side: runs[f"{mode}-{side}"] for side in ("off", "on", "ref")}}

    def real_audit(self) -> None:
        """Verify what the ON servers wrote during the wrk runs: the format check
        for the generator, and a second throughput figure."""
        for key in ("get-on", "bearer-on"):
            t = self.targets[key]
            if not t.audit_path:
                continue
            t.srv.stop(wipe=False)  # a clean stop flushes the log and its head anchor
            files = sorted(os.path.join(os.path.dirname(t.audit_path), f)
                           for f in os.listdir(os.path.dirname(t.audit_path)) if not f.endswith((".head", ".tmp")))
            t0 = time.monotonic()
            res = subprocess.run(audit_argv() + files, capture_output=True, text=True)
            secs = time.monotonic() - t0
            m = re.search(r"intact: (\d+) lines in (\d+) file", res.stdout)
            if res.returncode != 0 or not m:
                raise BenchError(f"audit verify of {t.label}'s own log ({len(files)} files): rc={res.returncode} "
                                 f"{(res.stderr or res.stdout).strip()[:300]}")
            lines = int(m.group(1))
            size = sum(os.path.getsize(f) for f in files)
            with open(files[-1], "rb") as f:
                sample = f.readline().decode()
            self.results.setdefault("audit_real", {})[key] = {
                "lines": lines, "files": len(files), "bytes": size, "seconds": round(secs, 3),
                "lines_per_s": lines / secs, "stdout": res.stdout.strip(), "sample_line": sample.strip()}
            log(f"  {t.label} ({t.mode}) wrote {lines:,} audit lines ({size / B.MIB:.0f} MiB, {len(files)} file(s)); "
                f"audit verify: intact, {lines / secs:,.0f} lines/s")
            check_key_order(sample)

    # ---- 2. audit verify on a generated log

    def audit(self) -> None:
        path = os.path.join(self.work, "generated", "audit.log")
        os.makedirs(os.path.dirname(path))
        log(f"generating {A.audit_lines:,} chained audit lines (bench/abuse/gen_audit.py)")
        res = subprocess.run([sys.executable, os.path.join(HERE, "gen_audit.py"), path, str(A.audit_lines)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise BenchError(f"gen_audit.py failed: {res.stderr.strip()[:300]}")
        gen = json.loads(res.stdout)
        log(f"  {gen['lines']:,} lines, {gen['bytes'] / B.MIB:.0f} MiB in {gen['seconds']} s")
        with open(path, "rb") as f:
            check_key_order(f.readline().decode())
        verify = audit_argv() + ["--from-genesis", path]
        want = f"intact: {A.audit_lines} lines in 1 file(s), from line 1, up to the head anchor"

        # a) intact: exit 0 (this run also reads the file into the page cache)
        res = subprocess.run(verify, capture_output=True, text=True)
        if res.returncode != 0 or res.stdout.strip() != want:
            raise BenchError(f"generated log does not verify: rc={res.returncode} "
                             f"{(res.stderr or res.stdout).strip()[:300]}")
        log(f"  intact: exit 0, {res.stdout.strip()!r}")
        # b) one byte edited (the last millisecond digit of the middle line's time): exit 1 at that line
        with open(path, "r+b") as f:
            f.seek(gen["mid_offset"])
            line = f.readline()
            pos = gen["mid_offset"] + line.index(b'Z","event"') - 1
            f.seek(pos)
            old = f.read(1)
            f.seek(pos)
            f.write(b"0" if old != b"0" else b"1")
            f.flush()
            tampered = subprocess.run(verify, capture_output=True, text=True)
            f.seek(pos)
            f.write(old)
        expect = f"{path}:{gen['mid_line']}: edited"
        if tampered.returncode != 1 or expect not in tampered.stderr:
            raise BenchError(f"one byte edited at line {gen['mid_line']}: rc={tampered.returncode}, expected 1 "
                             f"naming {expect!r}: {(tampered.stderr or tampered.stdout).strip()[:300]}")
        log(f"  one byte edited at line {gen['mid_line']:,}: exit 1, {tampered.stderr.splitlines()[0]!r}")
        # c) timed
        times = []
        for i in range(A.audit_repeats):
            t0 = time.monotonic()
            res = subprocess.run(verify, capture_output=True, text=True)
            secs = time.monotonic() - t0
            if res.returncode != 0 or res.stdout.strip() != want:
                raise BenchError(f"audit verify run {i + 1}: rc={res.returncode} {res.stderr.strip()[:300]}")
            times.append(secs)
            log(f"  audit verify #{i + 1}: {secs:.2f} s = {A.audit_lines / secs:,.0f} lines/s, "
                f"{gen['bytes'] / B.MIB / secs:,.0f} MiB/s")
        secs = statistics.median(times)
        self.results["audit"] = {"unit": "lines/s", "lines": A.audit_lines, "bytes": gen["bytes"],
                                 "generate_s": gen["seconds"], "seconds": [round(x, 3) for x in times],
                                 "lines_per_s": A.audit_lines / secs, "mib_per_s": gen["bytes"] / B.MIB / secs,
                                 "intact": want, "tampered_line": gen["mid_line"],
                                 "tampered_stderr": tampered.stderr.strip().splitlines()[0]}
        os.remove(path)

    def run(self) -> None:
        for name, fn in (("setup", self.setup), ("get", self.run_gets), ("audit_real", self.real_audit)):
            try:
                fn()
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                log(f"ERROR in {name}: {e}")
                self.errors[name] = str(e)
                break
        for s in self.servers():
            s.stop()
        try:
            self.audit()
        except (BenchError, OSError, subprocess.SubprocessError, ValueError) as e:
            log(f"ERROR in audit: {e}")
            self.errors["audit"] = str(e)


def check_key_order(line: str) -> None:
    """A line's keys are Record's fields in declaration order (what the
    generator assumes), then prev and hash."""
    sys.path.insert(0, HERE)
    from gen_audit import FIELDS

    keys = list(json.loads(line, object_pairs_hook=lambda kv: [k for k, _ in kv]))
    body, tail = keys[:-2], keys[-2:]
    pos = [FIELDS.index(k) if k in FIELDS else -1 for k in body]
    if tail != ["prev", "hash"] or -1 in pos or pos != sorted(pos) or body[0] != "seq":
        raise BenchError(f"audit line keys not in Record's order: {keys}")


# --------------------------------------------------------------------------
# report


def fmt(v, unit: str = "") -> str:
    return B.fmt(v, unit)


def rows(res: dict, errors: dict) -> list:
    out = []

    def add(scn, metric, off, on, ref, rat, target, ok, unit="req/s"):
        out.append({"scenario": scn, "metric": metric, "off": off, "on": on, "ref": ref, "ratio": rat,
                    "target": target, "result": "-" if ok is None else ("PASS" if ok else "FAIL"), "unit": unit})

    runs = f"{S.wrk_conns} conns, {A.duration} s, median of {A.rounds} rounds"
    if "get" in res:
        x = res["get"]
        add("1. manifest GET, anonymous", f"by tag, {runs} (req/s)", x["off"], x["on"], x["ref"], None, "", None)
        add("1. manifest GET, anonymous", "ON / OFF", None, None, None, x["on_off"], ">= 0.85x", x["on_off"] >= 0.85)
        add("1. manifest GET, anonymous", "ON / docker-registry", None, None, None, x["on_ref"], ">= 10x",
            x["on_ref"] >= 10)
    if "bearer" in res:
        x = res["bearer"]
        add("2. manifest GET, bearer", f"one pull token, {runs} (req/s)", x["off"], x["on"], x["ref"], None, "", None)
        add("2. manifest GET, bearer", "ON / OFF", None, None, None, x["on_off"], ">= 0.85x", x["on_off"] >= 0.85)
        add("2. manifest GET, bearer", "ON / docker-registry (auth.token, portcullis's key)", None, None, None,
            x["on_ref"], "info", None)
    if "audit" in res:
        x = res["audit"]
        add("3. audit verify", f"generated log, {x['lines']:,} lines, {x['bytes'] / B.MIB:.0f} MiB, "
            f"median of {len(x['seconds'])} (lines/s)", None, x["lines_per_s"], None, None,
            ">= 100,000 lines/s", x["lines_per_s"] >= 100_000, "lines/s")
        add("3. audit verify", f"format check: intact -> exit 0; one byte edited at line {x['tampered_line']:,} "
            f"-> exit 1 'edited'", None, None, None, None, "both", True, "")
    for key, label in (("get-on", "anonymous"), ("bearer-on", "bearer")):
        x = res.get("audit_real", {}).get(key)
        if x:
            add("3. audit verify", f"the log portcullis ON wrote in the {label} runs, {x['lines']:,} lines, "
                f"{x['files']} file(s), one run (lines/s)", None, x["lines_per_s"], None, None, "info", None,
                "lines/s")
    for name, err in errors.items():
        out.append({"scenario": name, "metric": "error: " + err.splitlines()[0][:100], "off": None, "on": None,
                    "ref": None, "ratio": None, "target": "", "result": "ERROR", "unit": ""})
    return out


def report(ab: Abuse, mi: dict) -> int:
    now = datetime.datetime.now().astimezone()
    table = rows(ab.results, ab.errors)
    doc = {"date": now.isoformat(timespec="seconds"), "machine": mi, "settings": A.as_dict(),
           "results": ab.results, "errors": ab.errors, "table": table}
    os.makedirs(os.path.dirname(A.results), exist_ok=True)
    with open(A.results, "w") as f:
        json.dump(doc, f, indent=2, default=str)

    hdr = ["scenario", "metric", "portcullis OFF", "portcullis ON", "docker-registry", "ratio", "target", "result"]

    def cell(v, unit):
        return "" if v is None else fmt(v, unit)

    cells = [[r["scenario"], r["metric"], cell(r["off"], r["unit"]), cell(r["on"], r["unit"]),
              cell(r["ref"], r["unit"]), cell(r["ratio"], "x"), r["target"], r["result"]] for r in table]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(hdr)]
    line = "  ".join(h.ljust(w) for h, w in zip(hdr, widths))
    print("\n" + line + "\n" + "-" * len(line), file=sys.stderr)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)), file=sys.stderr)
    print(f"\nJSON: {A.results}\n", file=sys.stderr)

    md = [f"Measured {now:%Y-%m-%d %H:%M %Z} on {mi['nproc']} x {mi['cpu'] or 'unknown CPU'}, "
          f"{mi['mem_mib']} MiB RAM, Linux {mi['kernel']}; portcullis {mi['commit']}, "
          f"{mi['reference_version'] or 'docker-registry'}"
          + (" (BENCH_QUICK=1: short runs, not representative)" if S.quick else "") + ".",
          "",
          "| " + " | ".join(hdr) + " |",
          "|" + "|".join(["---"] * 2 + ["---:"] * 4 + ["---"] * 2) + "|"]
    for c in cells:
        md.append("| " + " | ".join(v.replace("|", "\\|") for v in c) + " |")
    what = {"cors": "`http.cors` (wrk sends `Origin: " + ORIGIN + "`)",
            "debug": "`http.debug` with Prometheus",
            "ratelimit": "`ratelimit` pull/push/token/authfailure (limits never reached)",
            "audit": "`audit.file` (every pull written)"}
    subset = "" if A.on == ON_SECTIONS else f" (BENCH_ON={','.join(A.on)})"
    extra = ["",
             f"ON{subset} = " + ", ".join(what[x] for x in A.on) + "; lockout is on by default in OFF and ON. "
             "Bearer: portcullis `auth.htpasswd` + `auth.tokenserver`, one pull token per server from "
             "`GET /token` with Basic; docker-registry runs `auth.token` trusting portcullis OFF's key and "
             "gets that server's token."]
    for mode in ("get", "bearer"):
        if mode in ab.results:
            x = ab.results[mode]
            per = ", ".join(f"{v:.2f}" for v in x["on_off_per_round"])
            extra.append(f"- {mode}: ON/OFF per round {per}")
            for side, label in (("off", "portcullis OFF"), ("on", "portcullis ON"), ("ref", "docker-registry")):
                rr = x["runs"][side]
                extra.append(f"  - {label}: req/s per round " + ", ".join(f"{v['rps']:,.0f}" for v in rr)
                             + f"; p50 {fmt(statistics.median(v['p50_ms'] for v in rr))} ms, "
                             f"p99 {fmt(statistics.median(v['p99_ms'] for v in rr))} ms, "
                             f"socket errors {sum(v['socket_errors'] for v in rr)}")
    if "audit" in ab.results:
        x = ab.results["audit"]
        extra.append(f"- audit verify (generated, from the page cache): " + ", ".join(f"{s:.2f} s" for s in x["seconds"])
                     + f"; {x['mib_per_s']:,.0f} MiB/s; generating took {x['generate_s']} s; "
                     f"tampered: `{x['tampered_stderr']}`")
    md += extra
    print("\n".join(md))
    return 1 if ab.errors else 0


def main(argv: list) -> int:
    if argv:
        print(__doc__.strip() + "\n\nusage: bench/abuse/run.sh  (no arguments; knobs via environment)",
              file=sys.stderr)
        return 0 if argv[0] in ("-h", "--help") else 2
    own_work = not S.work_dir
    work = S.work_dir or tempfile.mkdtemp(prefix="portcullis-abuse-", dir="/var/tmp")
    ab = Abuse(work)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    log(f"work dir {work}; settings: " + ", ".join(f"{k}={v}" for k, v in A.as_dict().items()
                                                  if not k.endswith("_cmd")))
    mi = B.machine_info()
    try:
        ab.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for s in ab.servers():
            s.stop()
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    return report(ab, mi)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
