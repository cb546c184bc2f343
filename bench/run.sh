#!/usr/bin/env bash
# Benchmark: wsdissect against tshark (and tcpdump as the floor) on the same generated
# capture, page cache warm. Prints MB/s, WebSocket frames/s, peak RSS and CPU time (user +
# system, of the round with the best wall time) for each command and the ratios.
# Usage: bench/run.sh [SIZE_MB ...]   (default: 100)
# Captures are cached in ${WSDISSECT_BENCH_DIR:-/tmp/wsdissect-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-100}")
rounds=${ROUNDS:-3}
dir=${WSDISSECT_BENCH_DIR:-/tmp/wsdissect-bench}
gen=../shared/bench/gen_capture.py
mkdir -p "$dir"
scripts/setup.sh --bench
export JOBS_SHOWN=$(nproc)  # the default -j: one dissecting thread per core
cargo build --release --quiet
bin=target/release/wsdissect

measure() { # name file frames cmd...  → best wall time of $rounds, its CPU time, peak RSS
    local name=$1 file=$2 frames=$3; shift 3
    local best="" rss=0 cpu=0
    for _ in $(seq "$rounds"); do
        local t1 out tf
        tf=$(mktemp)
        local t0; t0=$(date +%s.%N)
        /usr/bin/time -o "$tf" -f '%U %S %M' "$@" >/dev/null 2>/dev/null || true
        t1=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f", b-a}')
        local user sys m c; read -r user sys m < <(tail -1 "$tf"); rm -f "$tf"
        c=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
        if [ -z "$best" ] || awk "BEGIN{exit !($t1 < $best)}"; then best=$t1; cpu=$c; fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    local bytes; bytes=$(stat -c %s "$file")
    awk -v n="$name" -v t="$best" -v b="$bytes" -v f="$frames" -v r="$rss" -v c="$cpu" \
        'BEGIN{ if (t<=0) t=0.001; printf "%-34s %8.3f s %9.1f MB/s %12.0f frames/s %8.1f MiB %7.2f s cpu\n", n, t, b/1e6/t, f/t, r/1024, c }'
    echo "$name $best" >> "$dir/times.$$"
}

for mb in "${sizes[@]}"; do
    f="$dir/gen-${mb}mb.pcap"
    if [ ! -s "$f" ]; then
        python3 "$gen" --target-mb "$mb" --seed 1 --summary "$f.json" "$f" 2>/dev/null
    fi
    frames=$(python3 -c "import json;print(json.load(open('$f.json'))['ws_frames'])")
    cat "$f" >/dev/null
    echo "== $(basename "$f"): $(stat -c %s "$f") bytes, $frames WebSocket frames, best of $rounds"
    rm -f "$dir/times.$$"
    measure "tcpdump -r F -w /dev/null" "$f" "$frames" tcpdump -r "$f" -w /dev/null
    measure "wsdissect --json" "$f" "$frames" "$bin" --json "$f"
    measure "wsdissect --json -j1" "$f" "$frames" "$bin" -j1 --json "$f"
    measure "wsdissect --json --normalize" "$f" "$frames" "$bin" --json --normalize "$f"
    measure "wsdissect (table, pipe)" "$f" "$frames" "$bin" "$f"
    measure "wsdissect (table, pipe) -j1" "$f" "$frames" "$bin" -j1 "$f"
    measure "wsdissect messages" "$f" "$frames" "$bin" messages "$f"
    measure "wsdissect conns" "$f" "$frames" "$bin" conns "$f"
    measure "wsdissect conns -j1" "$f" "$frames" "$bin" -j1 conns "$f"
    measure "wsdissect check" "$f" "$frames" "$bin" check --fail-on error "$f"
    measure "wsdissect check -j1" "$f" "$frames" "$bin" -j1 check --fail-on error "$f"
    measure "wsdissect diff F F (F read twice)" "$f" "$frames" "$bin" diff "$f" "$f"
    measure "wsdissect diff F F -j1 (twice)" "$f" "$frames" "$bin" -j1 diff "$f" "$f"
    if command -v tshark >/dev/null && [ "${SKIP_TSHARK:-0}" != 1 ]; then
        measure "tshark -Y websocket (table)" "$f" "$frames" tshark -o tcp.reassemble_out_of_order:TRUE -r "$f" -Y websocket
        measure "tshark -T json -Y websocket" "$f" "$frames" tshark -o tcp.reassemble_out_of_order:TRUE -r "$f" -T json -Y websocket
    fi
    awk '{t[$0]=$NF; n[NR]=$0} END{}' "$dir/times.$$" >/dev/null
    get() { awk -v n="$1" '{t=$NF; $NF=""; sub(/ $/, ""); if ($0 == n) print t}' "$dir/times.$$"; }
    tj=$(get "tshark -T json -Y websocket" || true); wj=$(get "wsdissect --json")
    tt=$(get "tshark -Y websocket (table)" || true); wt=$(get "wsdissect (table, pipe)")
    td=$(get "tcpdump -r F -w /dev/null"); wc=$(get "wsdissect conns"); wk=$(get "wsdissect check")
    wj1=$(get "wsdissect --json -j1"); wt1=$(get "wsdissect (table, pipe) -j1")
    wc1=$(get "wsdissect conns -j1"); wk1=$(get "wsdissect check -j1")
    wd=$(get "wsdissect diff F F (F read twice)"); wd1=$(get "wsdissect diff F F -j1 (twice)")
    [ -n "$tj" ] && awk -v a="$tj" -v b="$wj" 'BEGIN{printf "ratio JSON  (tshark/wsdissect time): %.1fx\n", a/(b>0?b:0.001)}'
    [ -n "$tt" ] && awk -v a="$tt" -v b="$wt" 'BEGIN{printf "ratio table (tshark/wsdissect time): %.1fx\n", a/(b>0?b:0.001)}'
    awk -v a="$td" -v b="$wc" 'BEGIN{printf "wsdissect conns vs tcpdump walk: %.2fx tcpdump time\n", b/(a>0?a:0.001)}'
    awk -v a="$td" -v b="$wk" 'BEGIN{printf "wsdissect check vs tcpdump walk: %.2fx tcpdump time\n", b/(a>0?a:0.001)}'
    awk -v a="$wj1" -v b="$wj" 'BEGIN{printf "speed-up of -j%s over -j1: JSON %.2fx", ENVIRON["JOBS_SHOWN"], a/(b>0?b:0.001)}'
    awk -v a="$wt1" -v b="$wt" 'BEGIN{printf ", table %.2fx", a/(b>0?b:0.001)}'
    awk -v a="$wc1" -v b="$wc" 'BEGIN{printf ", conns %.2fx", a/(b>0?b:0.001)}'
    awk -v a="$wk1" -v b="$wk" 'BEGIN{printf ", check %.2fx", a/(b>0?b:0.001)}'
    awk -v a="$wd1" -v b="$wd" 'BEGIN{printf ", diff %.2fx\n", a/(b>0?b:0.001)}'
    echo "$mb $wj $wc" >> "$dir/scale.$$"
    rm -f "$dir/times.$$"
done
# Linearity: time of each size against the first, per MB.
if [ "$(wc -l < "$dir/scale.$$")" -gt 1 ]; then
    awk 'NR==1{m=$1; j=$2; c=$3} NR>1{printf "scaling %s MB vs %s MB (%.1fx the input): JSON %.2fx the time, conns %.2fx the time\n", $1, m, $1/m, $2/j, $3/c}' "$dir/scale.$$"
fi
rm -f "$dir/scale.$$"
