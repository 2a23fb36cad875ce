#!/usr/bin/env bash
# Catalog first page with 100,000 repositories (issue 4): portcullis (Basic auth,
# per-user policy) vs docker-registry (no auth) on the same storage root.
# Markdown table on stdout, progress on stderr.
# Knobs: BENCH_CATALOG_REPOS (100000), BENCH_CATALOG_REPEATS (20),
#        BENCH_CATALOG_ROOT (/var/tmp/portcullis-bench-catalog, kept and reused),
#        BENCH_CATALOG_STALE=0 (skip the 30 s wait that times the periodic rewalk),
#        BENCH_NO_BUILD=1 (do not rebuild target/release/portcullis).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
total="${BENCH_CATALOG_REPOS:-100000}"
repeats="${BENCH_CATALOG_REPEATS:-20}"
cache="${BENCH_CATALOG_ROOT:-/var/tmp/portcullis-bench-catalog}"

for tool in docker-registry htpasswd python3; do
    command -v "$tool" >/dev/null || { echo "catalog: $tool not found (Debian: apt-get install -y docker-registry apache2-utils)" >&2; exit 2; }
done

bin="$repo/target/release/portcullis"
if [[ "${BENCH_NO_BUILD:-0}" == 0 ]] && { [[ ! -x "$bin" ]] || [[ -n "$(find "$repo/crates" "$repo/Cargo.toml" "$repo/Cargo.lock" \
        -newer "$bin" -type f \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) -print -quit 2>/dev/null)" ]]; }; then
    echo "catalog: building portcullis (cargo build --release -p portcullis)" >&2
    (cd "$repo" && cargo build --release -p portcullis >&2)
fi

# The storage root, built once per repository count and reused.
root="$cache/root-$total"
if [[ -f "$root/.complete" ]]; then
    echo "catalog: reusing $root" >&2
else
    rm -rf "$root"
    mkdir -p "$root"
    echo "catalog: creating $total repositories under $root" >&2
    secs="$(python3 "$here/make_root.py" "$root" "$total")"
    echo "$secs" > "$root/.complete"
    echo "catalog: created in ${secs} s" >&2
fi

work="$(mktemp -d /tmp/portcullis-catalog.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pport="$(free_port)"
rport="$(free_port)"
while [[ "$rport" == "$pport" ]]; do rport="$(free_port)"; done

{ htpasswd -nbB -C 4 alice alice; htpasswd -nbB -C 4 admin admin; } | sed '/^$/d' > "$work/htpasswd"

# shellcheck source=../lib.sh
source "$here/../lib.sh"
common="$(quiet_config "$root")"

cat > "$work/portcullis.yml" <<EOF
$common
http:
  addr: 127.0.0.1:$pport
auth:
  htpasswd:
    realm: r
    path: $work/htpasswd
access:
  rules:
    - subjects: [authenticated]
      repositories: ["\${user}/**"]
      actions: [pull, push]
    - subjects: ["user:admin"]
      repositories: ["**"]
      actions: ["*"]
EOF

cat > "$work/registry.yml" <<EOF
$common
http:
  addr: 127.0.0.1:$rport
EOF

"$bin" serve --config "$work/portcullis.yml" > "$work/portcullis.log" 2>&1 &
pids+=($!)
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
pids+=($!)

wait_up() {  # any HTTP answer on /v2/ (401 with auth) means it is listening
    local port="$1" name="$2" log="$3"
    for _ in $(seq 1 200); do
        code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)"
        [[ "$code" != 000 ]] && return 0
        sleep 0.05
    done
    echo "catalog: $name did not start; its log:" >&2
    cat "$log" >&2
    exit 1
}
wait_up "$pport" portcullis "$work/portcullis.log"
wait_up "$rport" docker-registry "$work/registry.log"

echo "catalog: $(date -u '+%Y-%m-%d %H:%M UTC'), $total repositories (root created in $(cat "$root/.complete") s)" >&2
python3 "$here/measure.py" "$pport" "$rport" "$repeats" "$total"
