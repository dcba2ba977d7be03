#!/usr/bin/python3
"""Median table of a benchmark's raw rows, with ratios against the better peer, as markdown.

usage: summarize.py RAW.tsv PEERS METRIC...
  RAW.tsv  tab-separated, header line first: round, contender, then one column per metric
  PEERS    comma-separated contenders that are the references (e.g. nginx,haproxy)
  METRIC   column:high|low|info|median:label  ("high" when bigger is better; "info": no ratio; "median": no
           ratio and no min–max column)
For each metric the "best peer" is the peer with the best median; every contender's median is divided by it.
"""

import csv
import statistics
import sys


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def main():
    path, peers = sys.argv[1], [p for p in sys.argv[2].split(",") if p]
    metrics = [m.split(":", 2) for m in sys.argv[3:]]
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    contenders = []
    for r in rows:
        if r["contender"] not in contenders:
            contenders.append(r["contender"])
    values = {
        (c, col): [float(r[col]) for r in rows if r["contender"] == c and r[col] not in ("", "nan")]
        for c in contenders
        for col, _, _ in metrics
    }
    med = {k: statistics.median(v) for k, v in values.items() if v}
    best = {}
    for col, direction, _ in metrics:
        cands = [(med[(p, col)], p) for p in peers if (p, col) in med and direction in ("high", "low")]
        if cands:
            best[col] = (max if direction == "high" else min)(cands)
    head = ["contender", "rounds"]
    for col, direction, label in metrics:
        head += [f"median {label}"] + ([] if direction == "median" else [f"min–max {label}"])
        if col in best:
            head.append(f"{label} ÷ best peer ({best[col][1]})")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for c in contenders:
        n = max(len(values[(c, col)]) for col, _, _ in metrics)
        cells = [c, str(n)]
        for col, direction, _ in metrics:
            v = values[(c, col)]
            span = direction != "median"
            if not v:
                cells += ["–"] + (["–"] if span else []) + (["–"] if col in best else [])
                continue
            cells += [fmt(med[(c, col)])] + ([f"{fmt(min(v))}–{fmt(max(v))}"] if span else [])
            if col in best:
                cells.append(f"{med[(c, col)] / best[col][0]:.3f}")
        print("| " + " | ".join(cells) + " |")
    notes = [
        f"{label}: {'higher' if d == 'high' else 'lower'} is better; best peer = {best[col][1]}"
        for col, d, label in metrics
        if col in best
    ]
    if notes:
        print()
        print("; ".join(notes) + ".")


if __name__ == "__main__":
    main()
