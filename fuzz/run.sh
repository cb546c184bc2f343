#!/usr/bin/env bash
# Runs one fuzz target single-process with the limits the project fuzzes with, on stable Rust:
#   fuzz/run.sh <target> [seconds]      (default 300)
# The corpus is fuzz/corpus/<target> (run fuzz/seed.sh first); crashes, hangs and memory
# blow-ups land in fuzz/artifacts/<target>/; libFuzzer's log is fuzz/logs/<target>.log, and
# fuzz/plateau.py summarises logs (executions, coverage over time).
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh <target> [seconds]}
secs=${2:-300}
mkdir -p logs "corpus/$target"
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, ...); RUSTC_BOOTSTRAP lets the
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
cargo fuzz build "$target"
# -jobs=1 -workers=1: one process, so one core; libFuzzer then writes fuzz-0.log here.
rm -f fuzz-0.log
status=0
cargo fuzz run "$target" -- -jobs=1 -workers=1 -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -timeout=10 -print_final_stats=1 >"logs/$target.run.log" 2>&1 || status=$?
# Earlier runs' logs are kept as <target>.<time>.log.
if [ -f "logs/$target.log" ]; then
    mv "logs/$target.log" "logs/$target.$(date -r "logs/$target.log" +%Y%m%d-%H%M%S).log"
fi
mv -f fuzz-0.log "logs/$target.log"
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done |stat::|^==[0-9]+==|panicked|SUMMARY|artifact' \
    "logs/$target.log" | tail -n 12
exit $status
