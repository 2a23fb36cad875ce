#!/usr/bin/env python3
"""Writes a validly chained portcullis audit log of N lines, as the sink writes it.

usage: gen_audit.py FILE LINES

The format (crates/portcullis-audit/src/chain.rs, record.rs):

- the body is serde_json's compact serialization of `Record`: keys in the
  struct's field order, `seq` first, absent fields left out, no spaces;
- sealing drops the body's closing `}`, appends `,"prev":"<previous hash>`
  and hashes those bytes (SHA-256, lowercase hex); the line is that text plus
  `","hash":"<hash>"}` and a newline. The first line's `prev` is 64 zeros;
- `FILE.head` anchors the last line: `{"seq":N,"hash":"<hex>"}`.

The events are a mix of what a busy registry writes (mostly manifest and blob
pulls, some logins, tokens, pushes, failures and denials), with values of
realistic lengths. Prints one JSON object on stdout: lines, bytes, seconds,
and the byte offset and number of a line in the middle (for the tamper check).
Standard library only.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
import time

GENESIS = "0" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
USER_AGENTS = ("containerd/1.7.22+unknown",
               "docker/27.3.1 go/go1.22.7 git-commit/41ca978 kernel/6.8.0-49-generic os/linux arch/amd64 "
               "UpstreamClient(Docker-Client/27.3.1 (linux))")

# Record's fields in declaration order (record.rs); serde writes them in this order.
FIELDS = ["seq", "time", "event", "request_id", "client", "forwarded", "user_agent", "identity", "method",
          "reason", "repository", "reference", "digest", "media_type", "previous", "status", "bytes",
          "action", "class", "retry_after", "rule", "scopes", "command", "detail", "count"]


def digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(i.to_bytes(8, "big")).hexdigest()


def events() -> list:
    """Templates (fields other than seq, time and request_id), cycled through.
    Weighted like a pull-heavy registry: 14 of 20 are pulls."""
    repos = [f"team{t}/service-{s}" for t in range(4) for s in range(5)]
    out = []
    for k in range(20):
        repo = repos[k % len(repos)]
        client = f"10.{k % 7}.{k % 13}.{20 + k}"
        who = f"user{k % 9}"
        if k < 8:
            out.append({"event": "manifest.pull", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": who,
                        "repository": repo, "reference": f"v1.{k}.0", "digest": digest(k),
                        "media_type": MANIFEST, "status": 200, "bytes": 1500 + 37 * k})
        elif k < 14:
            out.append({"event": "blob.pull", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": who,
                        "repository": repo, "reference": digest(100 + k), "digest": digest(100 + k),
                        "media_type": LAYER, "status": 200, "bytes": 31_000_000 + 4099 * k})
        elif k == 14:
            out.append({"event": "auth.success", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": who,
                        "method": "htpasswd"})
        elif k == 15:
            out.append({"event": "token.issued", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": who,
                        "scopes": [f"repository:{repo}:pull,push"]})
        elif k == 16:
            out.append({"event": "manifest.push", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": who,
                        "repository": repo, "reference": "latest", "digest": digest(200 + k),
                        "media_type": MANIFEST, "previous": digest(300 + k), "status": 201, "bytes": 2048})
        elif k == 17:
            out.append({"event": "blob.push", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": who,
                        "repository": repo, "digest": digest(400 + k), "status": 201, "bytes": 12_345_678})
        elif k == 18:
            out.append({"event": "auth.failure", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": "admin",
                        "method": "htpasswd", "reason": "wrong password or unknown user"})
        else:
            out.append({"event": "access.denied", "client": client, "user_agent": USER_AGENTS[k % 2], "identity": who,
                        "repository": "prod/payments", "action": "push",
                        "rule": "rule 3 (groups [devs] on prod/*: pull) does not grant push"})
    return out


def body(seq: int, when: str, rid: str, fields: dict) -> str:
    rec = {"seq": seq, "time": when, "request_id": rid, **fields}
    unknown = set(rec) - set(FIELDS)
    assert not unknown, unknown
    ordered = {k: rec[k] for k in FIELDS if k in rec}
    # serde_json: compact, non-ASCII kept as is (the templates are ASCII anyway)
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


def main(argv: list) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, n = argv[0], int(argv[1])
    t0 = time.monotonic()
    templates = events()
    # Everything but seq, time and request_id is constant per template: serialize
    # each template once with sentinels and splice the varying values in, which is
    # byte for byte what serde writes for the whole record.
    parts = []
    for f in templates:
        full = body(0, "@TIME@", "@RID@", f)
        head, rest = full.split('"@TIME@"', 1)
        mid_part, tail = rest.split('"@RID@"', 1)
        assert head == '{"seq":0,"time":' and tail.endswith("}"), full
        parts.append((mid_part, tail[:-1]))  # (',"event":…,"request_id":', ',"client":…')
    start = datetime.datetime(2026, 3, 1, 8, 0, 0, tzinfo=datetime.timezone.utc)
    prev = GENESIS
    mid = n // 2 + 1
    mid_offset = 0
    offset = 0
    sha = hashlib.sha256
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        buf = []
        ms_base = int(start.timestamp() * 1000)
        sec_cache: dict = {}
        for seq in range(1, n + 1):
            ms = ms_base + seq * 7  # one event every 7 ms
            s, milli = divmod(ms, 1000)
            stamp = sec_cache.get(s)
            if stamp is None:
                sec_cache.clear()
                stamp = datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
                sec_cache[s] = stamp
            mid_part, tail = parts[seq % len(parts)]
            sealed = (f'{{"seq":{seq},"time":"{stamp}.{milli:03d}Z"{mid_part}"{seq:016x}"'
                      f'{tail},"prev":"{prev}')
            h = sha(sealed.encode()).hexdigest()
            line = f'{sealed}","hash":"{h}"}}\n'
            if seq == mid:
                mid_offset = offset
            offset += len(line.encode())
            buf.append(line)
            prev = h
            if len(buf) >= 4096:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    with open(path + ".head", "w") as f:
        f.write(f'{{"seq":{n},"hash":"{prev}"}}')
    print(json.dumps({"lines": n, "bytes": os.path.getsize(path), "seconds": round(time.monotonic() - t0, 2),
                      "mid_line": mid, "mid_offset": mid_offset}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
