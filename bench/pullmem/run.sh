#!/usr/bin/env bash
# Memory under many slow pulls: portcullis and docker-registry side by side.
# Each registry gets one blob; N clients (default 200) pull it at a limited
# rate (default 256 KiB/s) for D seconds (default 15); the server's peak RSS
# (VmHWM, and VmRSS sampled every 100 ms) is reported with the ratio.
# Usage: bench/pullmem/run.sh [CLIENTS] [SECONDS] [RATE]
# Needs: docker-registry, curl, python3; builds target/release/portcullis
# (under $CARGO_TARGET_DIR when set) unless BENCH_NO_BUILD=1 or
# PORTCULLIS_BIN names the binary to measure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$here")")"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
clients="${1:-200}"; seconds="${2:-15}"; rate="${3:-256k}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
bin="${PORTCULLIS_BIN:-$target_dir/release/portcullis}"
if [[ -z "${PORTCULLIS_BIN:-}" && "${BENCH_NO_BUILD:-0}" == 0 ]]; then
    (cd "$repo" && cargo build --release -p portcullis >&2)
fi
for tool in docker-registry curl python3; do
    command -v "$tool" >/dev/null || { echo "pullmem: $tool not found" >&2; exit 2; }
done
work="$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/pullmem.XXXXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
ulimit -n 65536 2>/dev/null || true
head -c $((64 << 20)) /dev/urandom >"$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name command...
    local name="$1"; shift
    local port; port="$(free_port)"
    mkdir -p "$work/$name"
    { quiet_config "$work/$name/data"; printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"; } >"$work/$name/config.yml"
    "$@" "$work/$name/config.yml" >"$work/$name/log" 2>&1 &
    pids+=($!)
    started_pid=$! started_port=$port
}

measure() { # name pid port
    local name="$1" pid="$2" port="$3" base="http://127.0.0.1:$3"
    for _ in $(seq 100); do curl -fs "$base/v2/" >/dev/null && break; sleep 0.1; done
    local loc
    loc="$(curl -fsS -X POST -D - -o /dev/null "$base/v2/bench/pull/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')"
    [[ "$loc" == http* ]] || loc="$base$loc"
    local sep='?'; [[ "$loc" == *\?* ]] && sep='&'
    curl -fsS -X PUT -T "$work/blob" -H 'Content-Type: application/octet-stream' "$loc${sep}digest=$digest" >/dev/null
    local idle; idle="$(awk '/VmRSS/{print $2}' "/proc/$pid/status")"
    local cpids=()
    for _ in $(seq "$clients"); do
        curl -s --limit-rate "$rate" -o /dev/null --max-time "$seconds" "$base/v2/bench/pull/blobs/$digest" &
        cpids+=($!)
    done
    local peak=0 rss
    local end=$((SECONDS + seconds))
    while ((SECONDS < end)); do
        rss="$(awk '/VmRSS/{print $2}' "/proc/$pid/status")"
        ((rss > peak)) && peak=$rss
        sleep 0.1
    done
    for p in "${cpids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait "${cpids[@]}" 2>/dev/null || true
    local hwm; hwm="$(awk '/VmHWM/{print $2}' "/proc/$pid/status")"
    ((hwm > peak)) && peak=$hwm
    echo "$name $idle $peak"
}

start portcullis "$bin" serve --config
ppid=$started_pid pport=$started_port
start reference docker-registry serve
rpid=$started_pid rport=$started_port
p="$(measure portcullis "$ppid" "$pport")"
r="$(measure docker-registry "$rpid" "$rport")"
python3 - "$clients" "$seconds" "$rate" "$p" "$r" <<'PY'
import sys
clients, seconds, rate = sys.argv[1:4]
rows = [a.split() for a in sys.argv[4:6]]
(pn, pi, pp), (rn, ri, rp) = rows
mib = lambda kb: int(kb) / 1024
print(f"{clients} clients pulling one 64 MiB blob at {rate}/s each for {seconds} s")
print("| registry | idle RSS MiB | peak RSS MiB | peak per client KiB |")
print("|---|---:|---:|---:|")
for n, i, p in rows:
    print(f"| {n} | {mib(i):.1f} | {mib(p):.1f} | {(int(p) - int(i)) / int(clients):.0f} |")
print(f"ratio portcullis / docker-registry (peak): {int(pp) / int(rp):.2f}x; target: portcullis peak < 256 MiB with 200 clients")
PY
