#!/usr/bin/env python3
"""Summarises libFuzzer logs (fuzz/logs/<target>.log, and <target>.<time>.log of earlier runs):

    fuzz/plateau.py fuzz/logs/session.log ...   per log: coverage at 25/50/75/100% of the
                                                executions, and when it last grew
    fuzz/plateau.py --table fuzz/logs           one Markdown row per target, all runs added up

`cov` counts edges, `ft` libFuzzer's features (edges with hit counts and more). A run has
plateaued when `cov` stopped growing well before its end.
"""
import collections
import os
import re
import sys


def parse(path):
    rows = []  # (execs, cov, ft, corpus)
    secs = None
    crashed = False
    for line in open(path, errors="replace"):
        m = re.match(r"#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)", line)
        if m:
            rows.append((int(m[1]), int(m[3]), int(m[4]), int(m[5])))
        m = re.match(r"Done (\d+) runs in (\d+) second", line)
        if m:
            secs = int(m[2])
        if re.match(r"==\d+== ERROR: libFuzzer|.*panicked at", line):
            crashed = True
    return rows, secs, crashed


def last_growth(rows, col):
    final = rows[-1][col]
    return min(r[0] for r in rows if r[col] == final)


def describe(path):
    rows, secs, crashed = parse(path)
    if not rows:
        print(f"{path}: no coverage lines")
        return
    total = rows[-1][0]
    print(f"{path}: {total} execs in {secs} s" + (" (CRASHED)" if crashed else ""))
    for frac in (0.25, 0.5, 0.75, 1.0):
        e, c, t, _ = max((r for r in rows if r[0] <= total * frac), default=rows[0])
        print(f"  at {int(frac * 100):3d}%: exec {e:>9} cov {c:>5} ft {t:>6}")
    lc, lf = last_growth(rows, 1), last_growth(rows, 2)
    print(f"  cov last grew at exec {lc} ({100 * lc // max(total, 1)}%), "
          f"ft last grew at exec {lf} ({100 * lf // max(total, 1)}%)")


def table(logdir):
    runs = collections.defaultdict(list)
    for name in sorted(os.listdir(logdir)):
        m = re.match(r"([a-z_]+)(\.\d{8}-\d{6})?\.log$", name)
        if m:
            runs[m[1]].append(os.path.join(logdir, name))
    print("| target | runs | executions | seconds | exec/s | cov (edges) | ft (features) "
          "| corpus | cov in the last quarter of the last run | crashes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for target, paths in sorted(runs.items()):
        # The current log is the latest run; timestamped ones are earlier.
        paths.sort(key=lambda p: (not p.endswith(f"{target}.log"), p))
        latest = paths[0]
        execs = secs = crashes = 0
        for p in paths:
            rows, s, crashed = parse(p)
            if rows:
                execs += rows[-1][0]
            secs += s or 0
            crashes += crashed
        rows, _, _ = parse(latest)
        if not rows:
            continue
        total = rows[-1][0]
        q3 = max((r for r in rows if r[0] <= total * 0.75), default=rows[0])
        _, cov, ft, corpus = rows[-1]
        growth = cov - q3[1]
        print(f"| {target} | {len(paths)} | {execs:,} | {secs} | {execs // max(secs, 1):,} "
              f"| {cov} | {ft} | {corpus} | +{growth} | {crashes} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        for path in sys.argv[1:]:
            describe(path)
