#!/usr/bin/env bash
# Instruction counts (valgrind --tool=callgrind) of courier's encode and
# decode of a request frame, and of whole in-process calls of courier, the
# raw echo, tonic and tarpc, for 16 B, 1 KiB and 64 KiB payloads. Writes
# book/src/performance/callgrind.md (included by the book) and
# callgrind.json. Instruction counts are stable from run to run, unlike
# timings: use them to compare before/after a change.
#
#   bench/callgrind.sh                      # all payloads
#   bench/callgrind.sh --payloads 1024      # just 1 KiB
#   bench/callgrind.sh --out /tmp/cg        # somewhere else
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed: apt-get install -y valgrind" >&2
    exit 1
fi

cargo build --release -p courier-bench
exec target/release/courier-bench callgrind "$@"
