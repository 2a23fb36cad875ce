#!/usr/bin/env bash
# TLS pull with a real registry client (issue 5): skopeo (Go's crypto/tls,
# the same stack as the Docker daemon) copies an image with one 1 GiB layer
# into a dir: on /dev/shm, over plain HTTP and over TLS from portcullis, and
# over TLS from docker-registry with the same certificate, all serving the
# same storage. Reports the best of BENCH_TLS_RUNS (3) per case and the
# ratios. A real client verifies every digest and writes what it pulls, so
# this shows what TLS costs a user's pull; bench/tls/run.sh shows the raw
# transport (curl to /dev/null). Knobs: BENCH_TLS_MB (1024), BENCH_NO_BUILD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mb="${BENCH_TLS_MB:-1024}"
runs="${BENCH_TLS_RUNS:-3}"
for tool in docker-registry skopeo curl python3; do
    command -v "$tool" >/dev/null || { echo "skopeo bench: $tool not found" >&2; exit 2; }
done
bin="$repo/target/release/portcullis"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    (cd "$repo" && cargo build --release -p portcullis >&2)
fi
work="$(mktemp -d /var/tmp/portcullis-bench-skopeo.XXXXXX)"
out=/dev/shm/portcullis-bench-skopeo-$$
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" "$out"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$bin" cert generate --host localhost --ip 127.0.0.1 --out "$work/certs" >/dev/null
mkdir -p "$work/trust" && cp "$work/certs/ca.crt" "$work/trust/"
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
for u in "http://127.0.0.1:$pp/v2/" "https://127.0.0.1:$pt/v2/" "https://127.0.0.1:$rt/v2/"; do
    for _ in $(seq 100); do curl -sf --cacert "$work/certs/ca.crt" -o /dev/null "$u" && break; sleep 0.1; done
done

echo "writing and pushing an image with a $mb MiB layer (untimed)" >&2
python3 - "$work/oci" "$mb" <<'PY'
import hashlib, json, os, sys
root, mb = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/blobs/sha256")
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
layer = put(os.urandom(mb * 1024 * 1024))
config = put(json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
manifest = put(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}).encode())
with open(f"{root}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
with open(f"{root}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
PY
skopeo copy -q "oci:$work/oci:1" "docker://127.0.0.1:$pp/bench/skopeo:1" --dest-tls-verify=false
rm -rf "$work/oci"

pull() { # source, skopeo option -> best MiB/s of $runs
    local b=0
    for _ in $(seq "$runs"); do
        rm -rf "$out"
        s=$(date +%s.%N)
        skopeo copy -q "$2" "$1" "dir:$out"
        e=$(date +%s.%N)
        b=$(python3 -c "print(max($b, $mb/($e-$s)))")
    done
    echo "$b"
}
plain=$(pull "docker://127.0.0.1:$pp/bench/skopeo:1" --src-tls-verify=false)
over_tls=$(pull "docker://localhost:$pt/bench/skopeo:1" "--src-cert-dir=$work/trust")
ref=$(pull "docker://localhost:$rt/bench/skopeo:1" "--src-cert-dir=$work/trust")
echo "skopeo pulls: plain $plain, TLS $over_tls, docker-registry TLS $ref MiB/s" >&2

python3 - "$plain" "$over_tls" "$ref" "$runs" <<'PY'
import sys
plain, tls, ref = (float(x) for x in sys.argv[1:4])
runs = sys.argv[4]
print("| scenario | portcullis | reference | ratio | target | result |")
print("|---|---:|---:|---:|---|---|")
r = tls / plain
print(f"| skopeo pull over TLS vs plain HTTP (MiB/s, best of {runs}) | {tls:,.1f} | {plain:,.1f} (plain) | {r:.2f}x | >= 0.7x | {'PASS' if r >= 0.7 else 'FAIL'} |")
print(f"| skopeo pull over TLS, portcullis vs docker-registry (MiB/s, best of {runs}) | {tls:,.1f} | {ref:,.1f} (docker-registry) | {tls/ref:.2f}x | (for scale) | |")
PY
