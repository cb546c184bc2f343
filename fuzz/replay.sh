#!/usr/bin/env bash
# Runs every input kept in fuzz/regressions/<target>/ once through its target, with the limits
# fuzzing uses (a hang is a run over 10 s, a memory blow-up one over 512 MB):
#   fuzz/replay.sh [target...]          (default: every target with regression inputs)
# Exits non-zero at the first target that crashes, hangs or blows up.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for dir in regressions/*/; do targets+=("$(basename "$dir")"); done
fi
mkdir -p logs
for t in "${targets[@]}"; do
    mapfile -t files < <(find "regressions/$t" -maxdepth 1 -type f ! -name '*.md' ! -name '*.py' | sort)
    [ ${#files[@]} -gt 0 ] || continue
    echo "== $t: ${#files[@]} inputs"
    status=0
    cargo fuzz run "$t" "${files[@]}" -- -timeout=10 -rss_limit_mb=512 \
        >"logs/replay-$t.log" 2>&1 || status=$?
    grep -E '^Executed|ERROR|SUMMARY|panicked' "logs/replay-$t.log" || true
    if [ $status -ne 0 ]; then
        echo "$t: failed (exit $status), see fuzz/logs/replay-$t.log"
        exit $status
    fi
done
