#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Labels the agent's feature log with the lab's own schedule.

  label.py --features FEATURES.csv --schedule SCHEDULE.tsv --out DATA.csv.gz
           [--cap-per-run N] [--seed S]

FEATURES.csv is what the agent wrote (detection.feature_log: time_us, src,
dst, proto, dport, direction, then the features). SCHEDULE.tsv is what
tools/train/lab_traffic.sh wrote while it ran, one line per run:

  run  label  tool  src  dst|*  start_us  end_us

A row belongs to a run when its source is the run's source, its destination
the run's destination (or the run says *), and its time (the flow's last
packet) within [start - 1 s, end + SLACK]. Runs naming a destination are
tried first, then the run that started last: a pod's exfiltration run wins
over its benign traffic at the same time. Rows of no run are dropped and
counted. Addresses and times are used here only, never as features.

Rows per run are capped (a flood makes tens of thousands of nearly equal
flows), sampling with a fixed seed so the output is reproducible.
"""
import argparse
import bisect
import collections
import csv
import gzip
import io
import random
import sys

META = ["time_us", "src", "dst", "proto", "dport", "direction"]
SLACK_US = 5_000_000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", required=True)
    ap.add_argument("--schedule", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cap-per-run", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    runs = collections.defaultdict(list)  # src -> [(start, end, dst, run, label, tool)]
    with open(args.schedule) as f:
        for n, line in enumerate(f, 1):
            p = line.rstrip("\n").split("\t")
            if len(p) != 7:
                sys.exit(f"label.py: {args.schedule}:{n}: expected 7 tab-separated fields")
            run, label, tool, src, dst, t0, t1 = p
            runs[src].append((int(t0), int(t1), dst, run, label, tool))
    for src in runs:
        runs[src].sort()

    by_run = collections.defaultdict(list)
    meta = {}
    dropped = 0
    with open(args.features, newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        if header[: len(META)] != META:
            sys.exit(f"label.py: {args.features}: expected the columns {','.join(META)} first")
        feats = header[len(META):]
        for row in rd:
            if len(row) != len(header):
                dropped += 1
                continue
            t, src, dst = int(row[0]), row[1], row[2]
            best = None
            for (t0, t1, rdst, run, label, tool) in runs.get(src, ()):
                if t0 - 1_000_000 <= t <= t1 + SLACK_US and rdst in ("*", dst):
                    key = (rdst != "*", t0)
                    if best is None or key > best[0]:
                        best = (key, run, label, tool)
            if best is None:
                dropped += 1
                continue
            _, run, label, tool = best
            meta[run] = (label, tool)
            by_run[run].append(row[len(META):])

    rng = random.Random(args.seed)
    out_rows = 0
    counts = collections.Counter()
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        w = csv.writer(io.TextIOWrapper(gz, encoding="utf-8", newline="", write_through=True))
        w.writerow(feats + ["label", "tool", "run"])
        for run in sorted(by_run):
            rows = by_run[run]
            if len(rows) > args.cap_per_run:
                rows = rng.sample(rows, args.cap_per_run)
            label, tool = meta[run]
            for r in rows:
                w.writerow(r + [label, tool, run])
            out_rows += len(rows)
            counts[(label, tool)] += len(rows)
    with open(args.out, "wb") as f:
        f.write(raw.getvalue())
    print(f"label.py: {out_rows} rows in {len(by_run)} runs to {args.out}; "
          f"{dropped} rows matched no run", file=sys.stderr)
    for (label, tool), n in sorted(counts.items()):
        print(f"label.py:   {label:13} {tool:16} {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
