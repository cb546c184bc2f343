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

# Every command runs once per round, round after round (not all rounds of one command and
# then the next), so that each command's best time is taken over the same stretch of time:
# the machine's speed drifts over minutes, and a ratio of two commands timed a minute apart
# measured the drift as much as the commands.
names=(); cmds=()
add() { names+=("$1"); shift; cmds+=("$*"); }  # name, then the command line (no spaces in paths)
run_all() { # file frames → one line per command: best wall time of $rounds, its CPU time, peak RSS
    local file=$1 frames=$2 n=${#names[@]} r i
    local -a best rss cpu
    for ((i = 0; i < n; i++)); do best[i]=""; rss[i]=0; cpu[i]=0; done
    for ((r = 0; r < rounds; r++)); do
        for ((i = 0; i < n; i++)); do
            local tf t0 t1 user sys m c
            tf=$(mktemp)
            t0=$(date +%s.%N)
            /usr/bin/time -o "$tf" -f '%U %S %M' ${cmds[i]} >/dev/null 2>/dev/null || true
            t1=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f", b-a}')
            read -r user sys m < <(tail -1 "$tf"); rm -f "$tf"
            c=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
            if [ -z "${best[i]}" ] || awk "BEGIN{exit !($t1 < ${best[i]})}"; then best[i]=$t1; cpu[i]=$c; fi
            [ "$m" -gt "${rss[i]}" ] && rss[i]=$m
        done
    done
    local bytes; bytes=$(stat -c %s "$file")
    for ((i = 0; i < n; i++)); do
        awk -v n="${names[i]}" -v t="${best[i]}" -v b="$bytes" -v f="$frames" -v r="${rss[i]}" -v c="${cpu[i]}" \
            'BEGIN{ if (t<=0) t=0.001; printf "%-34s %8.3f s %9.1f MB/s %12.0f frames/s %8.1f MiB %7.2f s cpu\n", n, t, b/1e6/t, f/t, r/1024, c }'
        echo "${names[i]} ${best[i]}" >> "$dir/times.$$"
    done
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
    names=(); cmds=()
    add "tcpdump -r F -w /dev/null" tcpdump -r "$f" -w /dev/null
    add "wsdissect --json" "$bin" --json "$f"
    add "wsdissect --json -j1" "$bin" -j1 --json "$f"
    add "wsdissect --json --normalize" "$bin" --json --normalize "$f"
    add "wsdissect (table, pipe)" "$bin" "$f"
    add "wsdissect (table, pipe) -j1" "$bin" -j1 "$f"
    add "wsdissect messages" "$bin" messages "$f"
    add "wsdissect conns" "$bin" conns "$f"
    add "wsdissect conns -j1" "$bin" -j1 conns "$f"
    add "wsdissect check" "$bin" check --fail-on error "$f"
    add "wsdissect check -j1" "$bin" -j1 check --fail-on error "$f"
    add "wsdissect diff F F (F read twice)" "$bin" diff "$f" "$f"
    add "wsdissect diff F F -j1 (twice)" "$bin" -j1 diff "$f" "$f"
    if command -v tshark >/dev/null && [ "${SKIP_TSHARK:-0}" != 1 ]; then
        add "tshark -Y websocket (table)" tshark -o tcp.reassemble_out_of_order:TRUE -r "$f" -Y websocket
        add "tshark -T json -Y websocket" tshark -o tcp.reassemble_out_of_order:TRUE -r "$f" -T json -Y websocket
    fi
    run_all "$f" "$frames"
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
