#!/usr/bin/env bash
# TLS benchmark (issue 5), side by side with docker-registry:
#   1. blob pull over TLS vs plain HTTP (portcullis): target >= 0.7x;
#   2. full TLS handshakes per second (`openssl s_time -new`), portcullis vs
#      docker-registry with the same certificate: target >= 1x.
# Markdown on stdout, progress on stderr. Knobs: BENCH_TLS_MB (1024),
# BENCH_TLS_SECONDS (10), BENCH_NO_BUILD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mb="${BENCH_TLS_MB:-1024}"
secs="${BENCH_TLS_SECONDS:-10}"
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
"$bin" serve --config "$work/plain.yml" 2>"$work/plain.log" & pids+=($!)
"$bin" serve --config "$work/tls.yml" 2>"$work/tls.log" & pids+=($!)
docker-registry serve "$work/ref.yml" >"$work/ref.log" 2>&1 & pids+=($!)
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

best() { # url -> best MiB/s of 5
    local b=0
    for _ in 1 2 3 4 5; do
        t=$(curl -sf --cacert "$ca" -o /dev/null -w '%{time_total}' "$1")
        b=$(python3 -c "print(max($b, $mb/$t))")
    done
    echo "$b"
}
plain=$(best "http://127.0.0.1:$pp/v2/bench/tls/blobs/$digest")
over_tls=$(best "https://127.0.0.1:$pt/v2/bench/tls/blobs/$digest")
echo "pull: plain $plain MiB/s, TLS $over_tls MiB/s" >&2

hs() { # port -> full handshakes per second
    openssl s_time -connect "127.0.0.1:$1" -CAfile "$ca" -new -time "$secs" 2>/dev/null \
        | awk '/connections in [0-9.]+s;/ {for (i=1;i<=NF;i++) if ($i ~ /connections\/user/) print $(i-1)}' | head -1
}
hs_p=$(hs "$pt"); hs_r=$(hs "$rt")
echo "handshakes: portcullis $hs_p/s, docker-registry $hs_r/s" >&2

python3 - "$plain" "$over_tls" "$hs_p" "$hs_r" <<'PY'
import sys
plain, tls, hp, hr = (float(x or 0) for x in sys.argv[1:5])
r1 = tls / plain if plain else 0
r2 = hp / hr if hr else 0
print("| scenario | portcullis | reference | ratio | target | result |")
print("|---|---:|---:|---:|---|---|")
print(f"| blob pull over TLS vs plain HTTP (MiB/s, best of 5) | {tls:,.1f} | {plain:,.1f} (plain) | {r1:.2f}x | >= 0.7x | {'PASS' if r1 >= 0.7 else 'FAIL'} |")
print(f"| full TLS handshakes per second (`openssl s_time -new`) | {hp:,.1f} | {hr:,.1f} (docker-registry) | {r2:.2f}x | >= 1x | {'PASS' if r2 >= 1 else 'FAIL'} |")
PY
