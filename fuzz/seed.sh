#!/usr/bin/env bash
# Builds the seed corpus of every fuzz target from testdata/ into fuzz/corpus/<target>/
# (git-ignored). Seeds are regenerated, never committed; libFuzzer adds what it finds to the
# same directories. (The regression inputs in fuzz/regressions/ are replayed by
# fuzz/replay.sh instead: some take a second each, which would slow fuzzing down.)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="$PWD/fuzz/target/seedgen"
cargo run --quiet --release --manifest-path fuzz/seedgen/Cargo.toml -- testdata fuzz/corpus
du -sh fuzz/corpus/* | sed 's/^/  /'
