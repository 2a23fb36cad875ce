#!/usr/bin/env bash
# portcullis vs docker-registry, side by side. Usage: bench/run.sh [push pull get auth mem token]
# Markdown table on stdout, progress on stderr, JSON in bench/results/latest.json.
# Knobs (environment): see bench/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

# Reject unknown scenarios before spending minutes on a build.
for arg in "$@"; do
    case "$arg" in
        push|pull|get|auth|mem|token|all) ;;
        -h|--help) exec python3 "$here/bench.py" --help ;;
        *) echo "bench: unknown scenario '$arg'; choose from: push pull get auth mem token" >&2; exit 2 ;;
    esac
done

# Build portcullis (release) when the binary is missing or older than its sources,
# unless a custom command was given or BENCH_NO_BUILD=1.
if [[ -z "${BENCH_PORTCULLIS_CMD:-}" && "${BENCH_NO_BUILD:-0}" == 0 ]]; then
    # Cargo's own rule: CARGO_TARGET_DIR, relative to where cargo runs ($repo).
    target_dir="${CARGO_TARGET_DIR:-target}"
    [[ "$target_dir" == /* ]] || target_dir="$repo/$target_dir"
    bin="$target_dir/release/portcullis"
    if [[ ! -x "$bin" ]] || [[ -n "$(find "$repo/crates" "$repo/Cargo.toml" "$repo/Cargo.lock" \
            -newer "$bin" -type f \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) \
            -print -quit 2>/dev/null)" ]]; then
        echo "bench: building portcullis (cargo build --release -p portcullis)" >&2
        if ! (cd "$repo" && cargo build --release -p portcullis >&2); then
            echo "bench: portcullis does not build; to exercise the harness alone, run e.g." >&2
            echo "  BENCH_PORTCULLIS_CMD='docker-registry serve {config}' BENCH_QUICK=1 bench/run.sh" >&2
            exit 1
        fi
    fi
fi

for tool in curl wrk htpasswd python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (Debian: apt-get install -y curl wrk apache2-utils python3)" >&2; exit 2; }
done

# Scratch space for the registries' storage roots; removed on every exit path.
# /var/tmp rather than /tmp, which is tmpfs (RAM) on many systems.
work="$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/portcullis-bench.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BENCH_WORKDIR="$work" python3 "$here/bench.py" "$@"
