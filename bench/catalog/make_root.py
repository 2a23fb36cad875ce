#!/usr/bin/env python3
"""Build a distribution-layout storage root with many repositories, without pushing.

A repository is a directory docker/registry/v2/repositories/<name> holding
`_manifests/tags` and `_layers` (empty: enough for the catalog). Names:
`org<i%100>/app<i>` for i < N-100 and `alice/app<j>` for j < 100.

Usage: make_root.py ROOT N   (prints the creation time in seconds on stdout)
"""
import os
import sys
import time


def main() -> None:
    root, total = sys.argv[1], int(sys.argv[2])
    alice = min(100, total)
    base = os.path.join(root, "docker", "registry", "v2", "repositories")
    names = [f"org{i % 100}/app{i}" for i in range(total - alice)]
    names += [f"alice/app{j}" for j in range(alice)]
    started = time.monotonic()
    for name in names:
        repo = os.path.join(base, name)
        os.makedirs(os.path.join(repo, "_manifests", "tags"), exist_ok=True)
        os.makedirs(os.path.join(repo, "_layers"), exist_ok=True)
    print(f"{time.monotonic() - started:.1f}")


if __name__ == "__main__":
    main()
