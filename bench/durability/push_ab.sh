#!/usr/bin/env bash
# Push-only A/B of registry builds (or docker-registry), for the cost of
# durable pushes: each variant is started once, with its own storage root,
# then the variants take turns pushing 1 GiB blobs monolithically (POST, then
# curl -T PUT ?digest=), `sync` before every push, so the figures of one
# round were taken under the same load. Prints one line per push and the
# best and median MiB/s per variant.
#
#   bench/durability/push_ab.sh NAME='CMD {config}' NAME2='CMD2 {config}' ...
#   e.g. before='/tmp/portcullis-before serve --config {config}' \
#        after='target/release/portcullis serve --config {config}' \
#        ref='docker-registry serve {config}'
#
# Knobs: ROUNDS (5), BLOB_MB (1024), DATA_DIR (/var/tmp/portcullis-bench-data:
# the files bench/run.sh generates, blob-<MB>M-<i>.bin with .sha256 sidecars,
# generated here when missing), WORK (/var/tmp). Needs curl and python3.
# Each pushed blob is removed from the variant's storage after its push.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
ROUNDS=${ROUNDS:-5}
BLOB_MB=${BLOB_MB:-1024}
DATA_DIR=${DATA_DIR:-/var/tmp/portcullis-bench-data}
work=$(mktemp -d "${WORK:-/var/tmp}/push-ab.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ $# -ge 1 ] || { echo "usage: $0 NAME='CMD {config}' ..." >&2; exit 2; }

mkdir -p "$DATA_DIR"
files=()
for i in $(seq 0 $((ROUNDS - 1))); do
    f="$DATA_DIR/blob-${BLOB_MB}M-$i.bin"
    if [ ! -f "$f" ] || [ "$(stat -c %s "$f")" -ne $((BLOB_MB << 20)) ]; then
        head -c $((BLOB_MB << 20)) /dev/urandom > "$f.tmp" && mv "$f.tmp" "$f"
        rm -f "$f.sha256"
    fi
    [ -f "$f.sha256" ] || printf '%s\nsha256:%s\n' "x" "$(sha256sum "$f" | cut -d' ' -f1)" > "$f.sha256"
    files+=("$f")
done

names=(); urls=(); roots=()
port=5900
for spec in "$@"; do
    name=${spec%%=*}; cmd=${spec#*=}
    port=$((port + 1))
    dir="$work/$name"; mkdir -p "$dir/root"
    { quiet_config "$dir/root"; cat <<YML
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: push-ab-secret
YML
    } > "$dir/config.yml"
    # shellcheck disable=SC2086
    ${cmd//\{config\}/$dir/config.yml} > "$dir/server.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
    names+=("$name"); urls+=("http://127.0.0.1:$port"); roots+=("$dir/root")
done

push() { # url file -> seconds
    local base=$1 f=$2 d loc
    d=$(sed -n 2p "$f.sha256")
    loc=$(curl -sf -D - -o /dev/null -X POST "$base/v2/ab/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    case $loc in http*) ;; *) loc="$base$loc" ;; esac
    case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
    curl -sf -o /dev/null -w '%{time_total}' -T "$f" -H 'Content-Type: application/octet-stream' "$loc"
}

results="$work/results"
for r in $(seq 0 $((ROUNDS - 1))); do
    cat "${files[$r]}" > /dev/null   # client's data from the page cache, for everyone alike
    order=("${!names[@]}")
    [ $((r % 2)) -eq 1 ] && order=($(printf '%s\n' "${order[@]}" | tac))
    for i in "${order[@]}"; do
        sync
        if ! s=$(push "${urls[$i]}" "${files[$r]}"); then
            echo "round $((r + 1)) ${names[$i]}: push failed (see $work/${names[$i]}/server.log)" >&2
            exit 1
        fi
        # Each round stores 1 GiB per variant: drop it, or long runs fill the disk.
        rm -rf "${roots[$i]}/docker"
        echo "round $((r + 1)) ${names[$i]}: ${s}s = $(python3 -c "print(f'{$BLOB_MB / $s:.1f}')") MiB/s" >&2
        echo "${names[$i]} $s" >> "$results"
    done
done
python3 - "$results" "$BLOB_MB" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    n, s = line.split()
    runs.setdefault(n, []).append(int(sys.argv[2]) / float(s))
for n, v in runs.items():
    print(f"{n}: best {max(v):.1f} MiB/s, median {statistics.median(v):.1f} MiB/s, runs {[round(x) for x in v]}")
PY
