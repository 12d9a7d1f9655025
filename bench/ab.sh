#!/usr/bin/env bash
# A/B in one run: builds courier-bench at an older commit (the baseline) in
# a scratch directory under target/, then runs this tree's harness with
# `--baseline-bin`, so the baseline's courier systems run as
# `courier-protobuf@baseline` rows interleaved with this build's, on the
# same machine, in the same minutes.
#
#   bench/ab.sh build COMMIT          # only build; prints the binary's path
#   bench/ab.sh COMMIT [RUN ARGS...]  # build, then the A/B run
#
# The A/B run defaults to the p99 cells of the targets: courier-protobuf
# and its baseline, 1 KiB, 1 and 32 in flight, 5 runs each, split placement
# only, results in target/ab/COMMIT/ (not the book). RUN ARGS replace those
# defaults (e.g. `--concurrency 1,32,256 --out /tmp/ab`). For the full run
# with the baseline rows in the book:
#
#   cargo run --release -p courier-bench -- run --baseline-bin "$(bench/ab.sh build COMMIT)"
#
# The baseline's source is exported with `git archive` (no worktree, no
# checkout) into target/ab/src-COMMIT and built with
# CARGO_TARGET_DIR=target/ab/target: its own, so the two builds do not
# overwrite each other. The first time, that directory is seeded with hard
# links to target/release's compiled crates.io dependencies (no copy, no
# extra disk: a dependency of the same version and features has the same
# file names and contents in both), but never with the workspace's own
# crates (courier, idlc, ...), whose artifacts are removed from the seed
# and whose exported sources are touched: cargo would otherwise take this
# tree's runtime for the baseline's (a path crate's artifact name does not
# depend on where it is, and `git archive` gives old mtimes). So only the
# workspace's crates and changed dependencies are compiled. `rm -rf
# target/ab` removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target="${CARGO_TARGET_DIR:-$root/target}"

usage() {
    sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Builds courier-bench at $1 (once) and prints the binary's path.
build() {
    local rev sha src bin
    rev="$1"
    sha=$(git rev-parse --short=12 "$rev^{commit}") || { echo "ab.sh: no commit $rev" >&2; exit 1; }
    bin="$target/ab/courier-bench-$sha"
    if [[ -x "$bin" ]]; then
        echo "$bin"
        return
    fi
    src="$target/ab/src-$sha"
    rm -rf "$src"
    mkdir -p "$src"
    git archive "$sha" | tar -x -C "$src"
    if [[ ! -f "$src/bench/Cargo.toml" ]]; then
        echo "ab.sh: commit $sha has no bench/ crate" >&2
        exit 1
    fi
    # Newer than any artifact: every workspace crate is rebuilt from it.
    find "$src" -type f -exec touch {} +
    local seed="$target/ab/target/release"
    if [[ ! -d "$seed" && -d "$target/release/deps" ]]; then
        mkdir -p "$seed"
        for dir in deps build .fingerprint; do
            if [[ -d "$target/release/$dir" ]]; then
                cp -al "$target/release/$dir" "$seed/"
            fi
        done
        # The workspace's own crates (of this tree and of the baseline) are
        # never taken from the seed.
        local name crate
        for name in $(cat "$root"/Cargo.toml "$root"/*/Cargo.toml "$src"/Cargo.toml "$src"/*/Cargo.toml 2>/dev/null |
            sed -n 's/^name = "\([A-Za-z0-9_-]*\)"$/\1/p' | sort -u); do
            crate=${name//-/_}
            rm -rf "$seed/deps/lib$crate-"* "$seed/deps/$crate-"* \
                "$seed/.fingerprint/$name-"* "$seed/build/$name-"*
        done
    fi
    echo "ab.sh: building courier-bench at $sha (CARGO_TARGET_DIR=$target/ab/target)" >&2
    (cd "$src" && CARGO_TARGET_DIR="$target/ab/target" cargo build --release --locked -p courier-bench >&2)
    cp "$target/ab/target/release/courier-bench" "$bin"
    rm -rf "$src"
    echo "$bin"
}

[[ $# -ge 1 ]] || usage
case "$1" in
    -h | --help) usage ;;
    build)
        [[ $# -eq 2 ]] || usage
        build "$2"
        ;;
    *)
        rev="$1"
        shift
        bin=$(build "$rev")
        sha=$(git rev-parse --short=12 "$rev^{commit}")
        cargo build --release -p courier-bench >&2
        if [[ $# -eq 0 ]]; then
            set -- --systems courier-protobuf,courier-protobuf@baseline \
                --payloads 1024 --concurrency 1,32 --repeats 5 --runtimes none \
                --out "$target/ab/$sha"
        fi
        exec "$target/release/courier-bench" run --baseline-bin "$bin" "$@"
        ;;
esac
