#!/usr/bin/env bash
# Instruction counts (valgrind --tool=callgrind) of courier's encode and
# decode of a request frame, and of whole in-process calls of courier (one
# call in flight, and 64 in flight: `courier-call-64`), the RPC-shaped
# ceiling, the raw echo, tonic and tarpc (JSON and bincode), for 16 B,
# 1 KiB and 64 KiB payloads. Writes book/src/performance/callgrind.md
# (included by the book) and callgrind.json (read by the run's targets).
# Instruction counts are stable from run to run, unlike timings: use them
# to compare before/after a change.
#
#   bench/callgrind.sh                      # all payloads
#   bench/callgrind.sh --payloads 1024      # just 1 KiB
#   bench/callgrind.sh --out /tmp/cg        # somewhere else
#   bench/callgrind.sh --payloads 1024 --ops courier-call,courier-call-64 --out /tmp/cg
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed: apt-get install -y valgrind" >&2
    exit 1
fi

cargo build --release -p courier-bench
exec target/release/courier-bench callgrind "$@"
