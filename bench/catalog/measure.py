#!/usr/bin/env python3
"""Time /v2/_catalog pages on portcullis and docker-registry (see run.sh).

Usage: measure.py P_PORT R_PORT REPEATS TOTAL_REPOS
With BENCH_CATALOG_STALE=1 (the default) it then waits until the index is
more than 30 s old and times one more request (the periodic rewalk).
Prints a markdown table on stdout and progress on stderr. Each request opens
a fresh connection (like curl), and the time is from sending the request to
the end of the body.
"""
import base64
import http.client
import json
import os
import statistics
import sys
import time

ALICE = "Basic " + base64.b64encode(b"alice:alice").decode()
ADMIN = "Basic " + base64.b64encode(b"admin:admin").decode()


def get(port, path, auth=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Authorization": auth} if auth else {}
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    if resp.status != 200:
        sys.exit(f"catalog: GET {path} on :{port} -> {resp.status} {body[:200]!r}")
    return elapsed, json.loads(body)["repositories"], resp.getheader("Link")


def series(port, path, auth, repeats, check):
    times = []
    for _ in range(repeats):
        ms, repos, link = get(port, path, auth)
        check(repos, link)
        times.append(ms)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, -(-95 * len(times) // 100) - 1))]
    return statistics.median(times), p95


def expect(names, more=True):
    def check(repos, link):
        if repos != names:
            sys.exit(f"catalog: unexpected page: {repos[:5]}... ({len(repos)} names)")
        if more and not (link and "_catalog" in link):
            sys.exit(f"catalog: no Link header on a page with more to come: {link!r}")
    return check


def main() -> None:
    pport, rport, repeats, total = map(int, sys.argv[1:5])
    alice = sorted(f"alice/app{j}" for j in range(min(100, total)))
    everyone = sorted(
        [f"org{i % 100}/app{i}" for i in range(total - len(alice))] + alice)
    mid_last = "org50/app50000"
    mid = [n for n in everyone if n > mid_last][:100]

    rows = []
    started = time.monotonic()
    ms, repos, _ = get(pport, "/v2/_catalog?n=100", ALICE)
    if repos != alice:
        sys.exit(f"catalog: cold page for alice is wrong: {repos[:5]}...")
    print(f"catalog: cold (index walk) {ms:.0f} ms", file=sys.stderr)
    cold = ms

    cases = [
        ("portcullis, alice, `n=100` (her 100 repositories)", pport,
         "/v2/_catalog?n=100", ALICE, expect(alice, more=False)),
        ("portcullis, admin, `n=100` (first page of all)", pport,
         "/v2/_catalog?n=100", ADMIN, expect(everyone[:100])),
        (f"portcullis, admin, `n=100&last={mid_last}`", pport,
         f"/v2/_catalog?n=100&last={mid_last}", ADMIN, expect(mid)),
    ]
    for label, port, path, auth, check in cases:
        med, p95 = series(port, path, auth, repeats, check)
        rows.append((label, med, p95))
        print(f"catalog: {label}: median {med:.2f} ms, p95 {p95:.2f} ms", file=sys.stderr)
    warm_elapsed = time.monotonic() - started
    if warm_elapsed >= 30:
        print(f"catalog: warning: portcullis series took {warm_elapsed:.0f} s, "
              "past the index's 30 s lifetime; a sample may include a rewalk", file=sys.stderr)

    ref_cases = [
        ("docker-registry, `n=100` (first page of all)", rport,
         "/v2/_catalog?n=100", None, expect(everyone[:100])),
        (f"docker-registry, `n=100&last={mid_last}`", rport,
         f"/v2/_catalog?n=100&last={mid_last}", None, expect(mid)),
    ]
    for label, port, path, auth, check in ref_cases:
        med, p95 = series(port, path, auth, repeats, check)
        rows.append((label, med, p95))
        print(f"catalog: {label}: median {med:.2f} ms, p95 {p95:.2f} ms", file=sys.stderr)

    stale = None
    if os.environ.get("BENCH_CATALOG_STALE", "1") != "0":
        # The index is trusted for 30 s; the first request after that rewalks.
        wait = 31 - (time.monotonic() - started)
        if wait > 0:
            print(f"catalog: waiting {wait:.0f} s for the index to go stale", file=sys.stderr)
            time.sleep(wait)
        stale, repos, _ = get(pport, "/v2/_catalog?n=100", ALICE)
        if repos != alice:
            sys.exit("catalog: stale-index page for alice is wrong")
        print(f"catalog: first request after the 30 s index lifetime {stale:.0f} ms", file=sys.stderr)

    print(f"| request ({total:,} repositories, {repeats} runs each) | median ms | p95 ms |")
    print("|---|---:|---:|")
    print(f"| portcullis, first request after start (cold: builds the index) | {cold:.0f} | – |")
    for label, med, p95 in rows:
        print(f"| {label} | {med:.2f} | {p95:.2f} |")
    if stale is not None:
        print(f"| portcullis, alice, first request > 30 s after the last walk (rewalk) | {stale:.0f} | – |")
    ref_first, ref_mid = rows[3][1], rows[4][1]
    print()
    print(f"docker-registry / portcullis, medians: first page {ref_first / rows[0][1]:.0f}× "
          f"(vs alice), {ref_first / rows[1][1]:.0f}× (vs admin); "
          f"middle page {ref_mid / rows[2][1]:.0f}×.")
    target = "PASS" if rows[0][2] < 100 else "FAIL"
    print(f"Target (alice's first page < 100 ms): **{target}** (p95 {rows[0][2]:.2f} ms).")


if __name__ == "__main__":
    main()
