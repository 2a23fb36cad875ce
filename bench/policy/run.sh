#!/bin/sh
# Policy decision benchmark: 1,000 rules, 10,000 users in groups, 1,000,000
# decisions. See README.md. Prints one line per measurement on stdout.
set -eu
cd "$(dirname "$0")/../.."
exec cargo run --release --quiet -p portcullis-auth --example policy_bench "$@"
