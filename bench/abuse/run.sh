#!/usr/bin/env bash
# What the abuse protections cost, in one run: manifest GETs (anonymous, and with
# a bearer token) against portcullis with CORS, debug/Prometheus, rate limits and
# the audit file all OFF, all ON, and docker-registry; then `portcullis audit
# verify` throughput on a generated, validly chained audit log of 1,000,000 lines.
# Usage: bench/abuse/run.sh   (knobs via environment: see bench/abuse/README.md)
# Markdown table on stdout, progress on stderr, JSON in bench/results/abuse.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

case "${1:-}" in
    "") ;;
    -h|--help) exec python3 "$here/abuse.py" --help ;;
    *) echo "bench/abuse: no arguments expected (knobs are environment variables)" >&2; exit 2 ;;
esac

# Build portcullis (release) when the binary is missing or older than its sources,
# unless a custom command was given or BENCH_NO_BUILD=1 (the same rule as bench/run.sh).
if [[ -z "${BENCH_PORTCULLIS_CMD:-}" && "${BENCH_NO_BUILD:-0}" == 0 ]]; then
    target_dir="${CARGO_TARGET_DIR:-target}"
    [[ "$target_dir" == /* ]] || target_dir="$repo/$target_dir"
    bin="$target_dir/release/portcullis"
    if [[ ! -x "$bin" ]] || [[ -n "$(find "$repo/crates" "$repo/Cargo.toml" "$repo/Cargo.lock" \
            -newer "$bin" -type f \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) \
            -print -quit 2>/dev/null)" ]]; then
        echo "bench/abuse: building portcullis (cargo build --release -p portcullis)" >&2
        (cd "$repo" && cargo build --release -p portcullis >&2) || { echo "bench/abuse: portcullis does not build" >&2; exit 1; }
    fi
fi

tools=(curl wrk htpasswd python3)
[[ -n "${BENCH_REFERENCE_CMD:-}" ]] || tools+=(docker-registry)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "bench/abuse: $tool not found (Debian: apt-get install -y docker-registry curl wrk apache2-utils python3)" >&2; exit 2; }
done

# Scratch space (six storage roots, two audit logs, the generated log of about
# 600 MB); removed on every exit path. /var/tmp rather than /tmp (often tmpfs).
work="$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/portcullis-abuse.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BENCH_WORKDIR="$work" python3 "$here/abuse.py" "$@"
