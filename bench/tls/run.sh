#!/usr/bin/env bash
# TLS benchmark (issue 5), side by side with docker-registry:
#   1. blob pull over TLS vs plain HTTP (portcullis): target >= 0.7x. Judged
#      twice: HTTP/1.1 over TLS (the same protocol as the plain pull, so the
#      ratio is the cost of TLS alone) and curl's default over TLS (HTTP/2,
#      chosen by ALPN, which adds HTTP/2's own cost in curl and in the server);
#   2. full TLS handshakes (`openssl s_time -new`, TLS 1.3), portcullis vs
#      docker-registry with the same certificate: target >= 1x, judged on
#      handshakes per real second (N parallel clients, wall clock measured
#      here) and on handshakes per second of *server* CPU time (utime+stime
#      from /proc/PID/stat). s_time's own "connections/user sec" divides by
#      the client's CPU time, so it says little about the server, and is not
#      used.
# Each pull also records the server's and curl's CPU seconds per GiB: on a
# small shared machine these are steadier than the MiB/s figures.
# Markdown on stdout, progress on stderr. Knobs: BENCH_TLS_MB (1024),
# BENCH_TLS_RUNS (5 pulls per case), BENCH_TLS_SECONDS (10 per s_time run),
# BENCH_TLS_CLIENTS (2 parallel s_time), BENCH_TLS_ROUNDS (2 alternating
# handshake rounds per server), BENCH_NO_BUILD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mb="${BENCH_TLS_MB:-1024}"
for tool in docker-registry openssl curl python3; do
    command -v "$tool" >/dev/null || { echo "tls bench: $tool not found" >&2; exit 2; }
done
bin="$repo/target/release/portcullis"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    (cd "$repo" && cargo build --release -p portcullis >&2)
fi
work="$(mktemp -d /var/tmp/portcullis-bench-tls.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$bin" cert generate --host localhost --ip 127.0.0.1 --out "$work/certs" >/dev/null
root="$work/root"; mkdir -p "$root"
pp=$(free_port); pt=$(free_port); rt=$(free_port)
common="log:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: $root\n"
tls="  tls:\n    certificate: $work/certs/server.crt\n    key: $work/certs/server.key\n"
printf "version: 0.1\n${common}http:\n  addr: 127.0.0.1:$pp\n" > "$work/plain.yml"
printf "version: 0.1\n${common}http:\n  addr: 127.0.0.1:$pt\n${tls}" > "$work/tls.yml"
printf "version: 0.1\n${common}http:\n  addr: 127.0.0.1:$rt\n${tls}" > "$work/ref.yml"
"$bin" serve --config "$work/plain.yml" 2>"$work/plain.log" & pids+=($!); pid_plain=$!
"$bin" serve --config "$work/tls.yml" 2>"$work/tls.log" & pids+=($!); pid_tls=$!
docker-registry serve "$work/ref.yml" >"$work/ref.log" 2>&1 & pids+=($!); pid_ref=$!
ca="$work/certs/ca.crt"
for u in "http://127.0.0.1:$pp/v2/" "https://127.0.0.1:$pt/v2/" "https://127.0.0.1:$rt/v2/"; do
    for _ in $(seq 100); do curl -sf --cacert "$ca" -o /dev/null "$u" && break; sleep 0.1; done
done

echo "pushing a $mb MiB blob (untimed)" >&2
blob="$work/blob"; head -c "$((mb * 1024 * 1024))" /dev/urandom > "$blob"
digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"
loc=$(curl -sf -D - -o /dev/null -X POST "http://127.0.0.1:$pp/v2/bench/tls/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
curl -sf -o /dev/null -X PUT -T "$blob" -H 'Expect:' "$loc?digest=$digest"
cat "$blob" > /dev/null

python3 - "$mb" "$ca" "$digest" "$pp" "$pt" "$rt" "$pid_plain" "$pid_tls" "$pid_ref" <<'PY'
import os, re, resource, subprocess, sys, time

mb = int(sys.argv[1]); ca, digest = sys.argv[2], sys.argv[3]
pp, pt, rt = sys.argv[4:7]
pid_plain, pid_tls, pid_ref = (int(x) for x in sys.argv[7:10])
runs = int(os.environ.get("BENCH_TLS_RUNS", "5"))
secs = int(os.environ.get("BENCH_TLS_SECONDS", "10"))
clients = int(os.environ.get("BENCH_TLS_CLIENTS", "2"))
rounds = int(os.environ.get("BENCH_TLS_ROUNDS", "2"))
tick = os.sysconf("SC_CLK_TCK")

def log(*a):
    print(*a, file=sys.stderr, flush=True)

def server_cpu(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / tick

def client_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def pulls(name, url, pid, extra=()):
    """Best MiB/s of `runs` pulls, and server and client CPU s per GiB."""
    best, proto, s_cpu, c_cpu = 0.0, "?", 0.0, 0.0
    for _ in range(runs):
        s0, c0 = server_cpu(pid), client_cpu()
        out = subprocess.run(
            ["curl", "-sf", "--cacert", ca, "-o", "/dev/null", *extra,
             "-w", "%{time_total} %{size_download} %{http_version}", url],
            check=True, capture_output=True, text=True).stdout.split()
        s_cpu += server_cpu(pid) - s0
        c_cpu += client_cpu() - c0
        t, size, proto = float(out[0]), int(out[1]), out[2]
        if size != mb * 1024 * 1024:
            sys.exit(f"tls bench: {name}: pulled {size} bytes, expected {mb} MiB")
        best = max(best, mb / t)
    gib = runs * mb / 1024
    res = dict(best=best, proto=proto, server=s_cpu / gib, client=c_cpu / gib)
    log(f"pull {name}: best {best:,.1f} MiB/s over HTTP/{proto}; "
        f"CPU s/GiB server {res['server']:.3f}, curl {res['client']:.3f}")
    return res

blob = f"/v2/bench/tls/blobs/{digest}"
plain = pulls("plain HTTP/1.1", f"http://127.0.0.1:{pp}{blob}", pid_plain)
t11 = pulls("TLS HTTP/1.1", f"https://127.0.0.1:{pt}{blob}", pid_tls, ["--http1.1"])
tdef = pulls("TLS curl default", f"https://127.0.0.1:{pt}{blob}", pid_tls)
r11 = pulls("docker-registry TLS HTTP/1.1", f"https://127.0.0.1:{rt}{blob}", pid_ref, ["--http1.1"])
rdef = pulls("docker-registry TLS curl default", f"https://127.0.0.1:{rt}{blob}", pid_ref)

def handshakes(port, pid):
    """`clients` parallel `s_time -new` runs: connections, wall s, server CPU s."""
    s0, t0 = server_cpu(pid), time.monotonic()
    procs = [subprocess.Popen(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-CAfile", ca,
         "-new", "-time", str(secs)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(clients)]
    conns = 0
    for p in procs:
        out, _ = p.communicate()
        m = re.search(r"(\d+) connections in [0-9.]+s;", out)
        if not m:
            sys.exit(f"tls bench: no s_time result against port {port}")
        conns += int(m.group(1))
    return conns, time.monotonic() - t0, server_cpu(pid) - s0

hs = {"p": [0, 0.0, 0.0], "r": [0, 0.0, 0.0]}
for i in range(rounds):
    # Alternate the order so drift in the machine's load hits both alike.
    for key, port, pid in ([("p", pt, pid_tls), ("r", rt, pid_ref)] if i % 2 == 0
                           else [("r", rt, pid_ref), ("p", pt, pid_tls)]):
        c, w, cpu = handshakes(port, pid)
        log(f"handshakes {'portcullis' if key == 'p' else 'docker-registry'}: "
            f"{c} in {w:.1f} s, server CPU {cpu:.2f} s")
        for j, v in enumerate((c, w, cpu)):
            hs[key][j] += v
rate = {k: v[0] / v[1] for k, v in hs.items()}
per_cpu = {k: v[0] / v[2] if v[2] else 0.0 for k, v in hs.items()}

def row(name, p, ref, ref_note, target):
    ratio = p / ref if ref else 0.0
    ok = "PASS" if ratio >= target else "FAIL"
    print(f"| {name} | {p:,.1f} | {ref:,.1f} ({ref_note}) | {ratio:.2f}x | >= {target:g}x | {ok} |")

print("| scenario | portcullis | reference | ratio | target | result |")
print("|---|---:|---:|---:|---|---|")
row(f"blob pull, HTTP/1.1 over TLS vs plain HTTP/1.1 (MiB/s, best of {runs})",
    t11["best"], plain["best"], "plain", 0.7)
row(f"blob pull, curl's default over TLS (HTTP/{tdef['proto']}) vs plain HTTP/1.1 (MiB/s, best of {runs})",
    tdef["best"], plain["best"], "plain", 0.7)
row(f"full TLS 1.3 handshakes per real second ({clients} `openssl s_time -new` clients)",
    rate["p"], rate["r"], "docker-registry", 1)
row("full TLS 1.3 handshakes per second of server CPU (same runs)",
    per_cpu["p"], per_cpu["r"], "docker-registry", 1)
print()
print("CPU seconds per GiB pulled (server / curl), and docker-registry over TLS for comparison:")
print()
print("| pull | MiB/s (best) | server CPU s/GiB | curl CPU s/GiB |")
print("|---|---:|---:|---:|")
for name, r in (("portcullis, plain HTTP/1.1", plain),
                ("portcullis, HTTP/1.1 over TLS", t11),
                (f"portcullis, HTTP/{tdef['proto']} over TLS", tdef),
                ("docker-registry, HTTP/1.1 over TLS", r11),
                (f"docker-registry, HTTP/{rdef['proto']} over TLS", rdef)):
    print(f"| {name} | {r['best']:,.1f} | {r['server']:.3f} | {r['client']:.3f} |")
print()
for k, name in (("p", "portcullis"), ("r", "docker-registry")):
    c, w, cpu = hs[k]
    ms = 1000 * cpu / c if c else 0.0
    print(f"- handshakes, {name}: {c} in {w:.1f} s over {rounds} rounds, "
          f"server CPU {cpu:.2f} s ({ms:.3f} ms per handshake)")
PY
