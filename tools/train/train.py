#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Trains ztagent's flow model and exports it as the CBOR file the agent loads.

Reads labelled feature rows (CSV with a header: every feature of the
schema, by name, plus `label` and `tool`, optionally `run`), trains a
random forest (or gradient-boosted trees) with Debian's python3-sklearn,
picks the decision threshold for a target false-positive rate on benign
validation runs, and writes the model (format: src/detect/model.h).

The feature list comes from the agent itself (`build/tools/featschema`,
which prints src/detect/features.c's table as JSON): this script computes
the schema hash from it the way the agent does and refuses a schema whose
hash it cannot reproduce, so the two never drift.

  train.py --schema build/feature_schema.json --data tools/train/data/lab.csv.gz \\
           --out build/model.cbor [--report tools/train/REPORT.md]

--report also evaluates with whole tools held out: for every attack kind
with two tools or more, each tool in turn is left out of training and the
model trained without it is scored on it, at the threshold chosen for the
target FPR on benign validation runs. Benign tools are held out the same
way to measure their false-positive rate when the model never saw them.

--predict ROWS.csv --predict-out P.csv writes the class probabilities of
the final model for ROWS (columns p_<class>, the model's class order, 17
significant digits): the unit test compares them with the agent's.
"""
import argparse
import csv
import datetime
import gzip
import hashlib
import io
import json
import math
import os
import platform
import sys

import numpy as np

try:
    import cbor2
    import sklearn
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
except ImportError as e:  # pragma: no cover - what an operator sees
    sys.exit(f"train.py: {e}: install python3-sklearn and python3-cbor2 (tools/deps.sh)")

FORMAT = "ztagent-model"
VERSION = 1
FPR_GRID = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]


def die(msg):
    sys.exit(f"train.py: {msg}")


# ---- schema ----

def load_schema(path):
    try:
        with open(path) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        die(f"schema {path}: {e} (make it with: build/tools/featschema > {path})")
    names = [f["name"] for f in s["features"]]
    text = "".join(f"{f['name']}:{f['version']}\n" for f in s["features"])
    h = hashlib.sha256(text.encode()).hexdigest()
    if h != s["hash"]:
        die(f"schema {path}: hash {s['hash']} is not SHA-256 of its names and versions ({h}); "
            "the agent and this script disagree on how the schema is hashed")
    if [f["index"] for f in s["features"]] != list(range(len(names))):
        die(f"schema {path}: feature indices are not 0..{len(names) - 1} in order")
    return names, bytes.fromhex(h), s["classes"]


# ---- data ----

def open_text(path):
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def load_rows(paths, names, classes, need_label=True):
    """Returns X (float32), labels, tools, runs from one or more CSV files."""
    xs, labels, tools, runs = [], [], [], []
    for path in paths:
        with open_text(path) as f:
            rd = csv.reader(f)
            try:
                header = next(rd)
            except StopIteration:
                die(f"{path}: empty")
            col = {n: i for i, n in enumerate(header)}
            missing = [n for n in names if n not in col]
            if missing:
                die(f"{path}: no column for feature(s) {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}: rows from another feature schema?")
            if need_label and ("label" not in col or "tool" not in col):
                die(f"{path}: needs the columns label and tool")
            idx = [col[n] for n in names]
            li, ti, ri = col.get("label"), col.get("tool"), col.get("run")
            for lineno, row in enumerate(rd, start=2):
                if len(row) != len(header):
                    die(f"{path}:{lineno}: {len(row)} fields, the header has {len(header)}")
                try:
                    x = [float(row[i]) for i in idx]
                except ValueError as e:
                    die(f"{path}:{lineno}: {e}")
                if not all(math.isfinite(v) for v in x):
                    die(f"{path}:{lineno}: a feature is not a finite number")
                xs.append(x)
                if li is not None:
                    if row[li] not in classes:
                        die(f"{path}:{lineno}: label {row[li]!r} is not one of {classes}")
                    labels.append(row[li])
                    tools.append(row[ti] if ti is not None else "?")
                    runs.append(row[ri] if ri is not None else f"{path}:{lineno}")
    if not xs:
        die("no rows")
    return (np.asarray(xs, dtype=np.float32), np.asarray(labels), np.asarray(tools),
            np.asarray(runs))


def split_runs(labels, runs, frac, seed):
    """Validation mask: a fraction of each label's runs (whole runs, never rows of one run)."""
    rng = np.random.RandomState(seed)
    val = np.zeros(len(runs), dtype=bool)
    for lab in sorted(set(labels)):
        rs = sorted(set(runs[labels == lab]))
        rng.shuffle(rs)
        k = max(1, int(round(len(rs) * frac))) if len(rs) > 1 else 0
        chosen = set(rs[:k])
        val |= (labels == lab) & np.isin(runs, list(chosen))
    # One run only (no split by runs possible): every 4th row of it.
    for lab in sorted(set(labels)):
        m = labels == lab
        if not (val & m).any():
            idx = np.flatnonzero(m)
            val[idx[rng.permutation(len(idx))[: max(1, int(len(idx) * frac))]]] = True
    return val


# ---- training ----

def make_model(args, seed):
    if args.algo == "forest":
        return RandomForestClassifier(
            n_estimators=args.trees, max_depth=args.max_depth,
            min_samples_leaf=args.min_leaf, class_weight="balanced_subsample",
            n_jobs=1, random_state=seed)
    return GradientBoostingClassifier(
        n_estimators=args.trees, max_depth=args.max_depth or 3, learning_rate=args.learning_rate,
        min_samples_leaf=args.min_leaf, subsample=0.8, random_state=seed)


def scores_of(model, X):
    p = model.predict_proba(X)
    b = list(model.classes_).index("benign")
    return 1.0 - p[:, b], p


def pick_threshold(benign_scores, fpr):
    """The lowest threshold with at most fpr of the benign scores at or above it."""
    s = np.sort(np.asarray(benign_scores, dtype=np.float64))[::-1]
    allowed = int(math.floor(fpr * len(s) + 1e-9))
    if len(s) == 0:
        return 0.5
    if allowed >= len(s):
        return 0.0
    return float(np.nextafter(s[allowed], np.inf))


# ---- export ----

def i32(a):
    return np.asarray(a, dtype="<i4").tobytes()


def f64(a):
    return np.asarray(a, dtype="<f8").tobytes()


def tree_arrays(t):
    leaf = t.children_left == -1
    feature = np.where(leaf, -1, t.feature)
    return {
        "feature": i32(feature),
        "threshold": f64(np.where(leaf, 0.0, t.threshold)),
        "left": i32(t.children_left),
        "right": i32(t.children_right),
    }, leaf


def export(model, names, schema_hash, threshold, fpr, fpr_table, metadata):
    classes = [str(c) for c in model.classes_]
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "schema_hash": schema_hash,
        "features": names,
        "classes": classes,
        "threshold": float(threshold),
        "target_fpr": float(fpr),
        "fpr_table": [[float(a), float(b)] for a, b in fpr_table],
        "metadata": metadata,
    }
    trees = []
    if isinstance(model, RandomForestClassifier):
        doc["kind"] = "forest"
        for est in model.estimators_:
            t = est.tree_
            arr, leaf = tree_arrays(t)
            v = t.value[leaf, 0, : len(classes)].astype(np.float64)
            norm = v.sum(axis=1, keepdims=True)
            norm[norm == 0.0] = 1.0
            arr["value"] = f64(v / norm)
            trees.append(arr)
    else:
        doc["kind"] = "boosted"
        init = model._raw_predict_init(np.zeros((1, len(names)), dtype=np.float32))[0]
        k = model.estimators_.shape[1]
        if k == 1:  # binary: one raw score for class 1; softmax([0, r]) is its sigmoid
            doc["init"] = [0.0, float(init[0])]
        else:
            doc["init"] = [float(v) for v in init]
        for stage in model.estimators_:
            for c, est in enumerate(stage):
                t = est.tree_
                arr, leaf = tree_arrays(t)
                arr["value"] = f64(model.learning_rate * t.value[leaf, 0, 0])
                arr["class"] = 1 if k == 1 else c
                trees.append(arr)
    doc["trees"] = trees
    return cbor2.dumps(doc)


# ---- evaluation and the report ----

def pct(a, b):
    return f"{100.0 * a / b:.1f} %" if b else "n/a"


def evaluate_holdouts(args, X, labels, tools, runs, val):
    """Per kind and tool: the model trained without that tool, scored on it."""
    out = []
    kinds = sorted(set(labels) - {"benign"})
    benign_val = val & (labels == "benign")
    for kind in kinds:
        ktools = sorted(set(tools[labels == kind]))
        for tool in ktools:
            if len(ktools) < 2:
                out.append({"kind": kind, "tool": tool, "skipped": "only tool of its kind"})
                continue
            train = ~val & ~((labels == kind) & (tools == tool))
            model = make_model(args, args.seed).fit(X[train], labels[train])
            sb, _ = scores_of(model, X[benign_val])
            thr = pick_threshold(sb, args.target_fpr)
            thr2 = pick_threshold(sb, 0.01)
            test = (labels == kind) & (tools == tool)
            st, pt = scores_of(model, X[test])
            cls = np.asarray(model.classes_)
            pb = list(cls).index("benign")
            pt2 = pt.copy()
            pt2[:, pb] = -1
            typed = cls[pt2.argmax(axis=1)] == kind
            det = st >= thr
            trs = runs[test]
            run_ids = sorted(set(trs))
            runs_hit = sum(1 for r in run_ids if det[trs == r].any())
            out.append({
                "kind": kind, "tool": tool,
                "trained_on": [t for t in ktools if t != tool],
                "rows": int(test.sum()), "runs": len(run_ids),
                "detected": float(det.mean()),
                "detected_1pct": float((st >= thr2).mean()),
                "typed": float((det & typed).mean()),
                "runs_hit": runs_hit,
                "val_fpr": float((sb >= thr).mean()),
            })
            print(f"holdout {kind}/{tool}: {out[-1]['detected']:.3f} detected", file=sys.stderr)
    return out


def evaluate_benign_holdouts(args, X, labels, tools, runs, val):
    """Per benign tool: the model trained without it; its false-positive rate."""
    out = []
    benign_tools = sorted(set(tools[labels == "benign"]))
    for tool in benign_tools:
        held = (labels == "benign") & (tools == tool)
        train = ~val & ~held
        if not ((labels[train] == "benign").any()):
            continue
        model = make_model(args, args.seed).fit(X[train], labels[train])
        sb, _ = scores_of(model, X[val & (labels == "benign") & ~held])
        thr = pick_threshold(sb, args.target_fpr)
        sh, _ = scores_of(model, X[held])
        trs = runs[held]
        run_ids = sorted(set(trs))
        out.append({"tool": tool, "rows": int(held.sum()), "runs": len(run_ids),
                    "fpr": float((sh >= thr).mean()),
                    "runs_hit": sum(1 for r in run_ids if (sh[trs == r] >= thr).any())})
        print(f"holdout benign/{tool}: fpr {out[-1]['fpr']:.4f}", file=sys.stderr)
    return out


def write_report(path, args, names, schema_hex, X, labels, tools, runs, val, model, thr,
                 sb_val, in_dist, holdouts, benign_holdouts, model_bytes, data_sha):
    L = []
    w = L.append
    w("# ztagent flow model: training report")
    w("")
    w("Regenerated by `make train` (tools/train/train.py); do not edit by hand. How the data")
    w("is made: tools/train/lab_traffic.sh (`make train LAB=1`), see tools/train/README.md.")
    w("")
    w("## Data")
    w("")
    w(f"- dataset: {', '.join(args.data)} "
      f"(sha256 {data_sha[:16]}...), {len(labels)} flow rows, {len(set(runs))} runs")
    w(f"- feature schema: {len(names)} features, hash `{schema_hex}`")
    w(f"- validation: {pct(val.sum(), len(val))} of the rows, whole runs of each kind "
      f"({int((val & (labels == 'benign')).sum())} benign rows pick the threshold)")
    w("")
    w("| label | tool | rows | runs |")
    w("|---|---|---:|---:|")
    for lab in sorted(set(labels), key=lambda s: (s != "benign", s)):
        for tool in sorted(set(tools[labels == lab])):
            m = (labels == lab) & (tools == tool)
            w(f"| {lab} | {tool} | {int(m.sum())} | {len(set(runs[m]))} |")
    w("")
    w("## Model")
    w("")
    nodes = sum(e.tree_.node_count for e in np.ravel(model.estimators_))
    w(f"- {args.algo}: {len(np.ravel(model.estimators_))} trees, {nodes} nodes, "
      f"max_depth {args.max_depth}, min_samples_leaf {args.min_leaf}; "
      f"file {model_bytes} bytes")
    w(f"- threshold {thr:.6f} on score = 1 - P(benign), for target FPR {args.target_fpr} "
      f"(validation benign FPR at it: {pct((sb_val >= thr).sum(), len(sb_val))}; "
      f"one benign row is {100.0 / max(1, len(sb_val)):.3f} % of the validation set, "
      "so a lower target than that is not measurable here)")
    w("")
    w("### Validation runs (tools seen in training)")
    w("")
    w(f"Detection rate per flow at the threshold above (FPR {args.target_fpr}), and whether")
    w("the likeliest threat class is the right one.")
    w("")
    w("| label | rows | detected | detected and typed right |")
    w("|---|---:|---:|---:|")
    for r in in_dist:
        w(f"| {r['label']} | {r['rows']} | {r['detected']} | {r['typed']} |")
    w("")
    w("## Whole tools held out")
    w("")
    w(f"Each row: a model trained WITHOUT that tool's rows (its kind learnt from the other")
    w(f"tools only), threshold chosen for FPR {args.target_fpr} on benign validation runs,")
    w("then scored on every flow of the held-out tool. \"runs hit\": runs with at least one")
    w("flow at or above the threshold. The 1 % column is the same at FPR 0.01.")
    w("")
    w("| kind | held-out tool | trained on | rows | detected @FPR | typed right | @1 % FPR | runs hit | val FPR |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for h in holdouts:
        if "skipped" in h:
            w(f"| {h['kind']} | {h['tool']} | - | - | not evaluated: {h['skipped']} | | | | |")
            continue
        w(f"| {h['kind']} | {h['tool']} | {', '.join(h['trained_on'])} | {h['rows']} | "
          f"{100 * h['detected']:.1f} % | {100 * h['typed']:.1f} % | "
          f"{100 * h['detected_1pct']:.1f} % | {h['runs_hit']}/{h['runs']} | "
          f"{100 * h['val_fpr']:.2f} % |")
    w("")
    w("### Benign tools held out")
    w("")
    w("Each row: a model trained without that benign tool; the share of its flows flagged")
    w(f"at the threshold for FPR {args.target_fpr} (chosen on the other benign tools).")
    w("")
    w("| benign tool | rows | flagged | runs with a flagged flow |")
    w("|---|---:|---:|---:|")
    for b in benign_holdouts:
        w(f"| {b['tool']} | {b['rows']} | {100 * b['fpr']:.2f} % | {b['runs_hit']}/{b['runs']} |")
    w("")
    if hasattr(model, "feature_importances_"):
        w("## Features that matter most (impurity importance)")
        w("")
        imp = model.feature_importances_
        order = np.argsort(imp)[::-1][:15]
        w("| feature | importance |")
        w("|---|---:|")
        for i in order:
            w(f"| {names[i]} | {imp[i]:.3f} |")
        unused = [names[i] for i in range(len(names)) if imp[i] == 0]
        if unused:
            w("")
            w(f"Never used ({len(unused)}): {', '.join(unused)}.")
        w("")
    w("## Reading this honestly")
    w("")
    weak = [h for h in holdouts if "skipped" not in h and h["detected"] < 0.5]
    if weak:
        w("Held-out tools detected on fewer than half of their flows: " +
          ", ".join(f"{h['kind']}/{h['tool']} ({100 * h['detected']:.1f} %)" for h in weak) +
          ". The model does not generalise to them from the other tools of their kind; the")
        w("rule detectors (src/detect/) are the line of defence there.")
        w("")
    if any(h["kind"] == "exfiltration" and "skipped" not in h and h["detected"] < 0.5
           for h in holdouts):
        w("Exfiltration held out is the weak spot: an upload is one flow that looks like the")
        w("pod's benign uploads and backups, and a DNS tunnel looks like DNS. What tells them")
        w("apart is the volume against the workload's own history and destinations it never")
        w("used: the per-workload baseline (src/detect/baseline.c), not this per-flow model.")
        w("")
    single = [h for h in holdouts if "skipped" in h]
    if single:
        w("Kinds with a single tool could not be evaluated held out: " +
          ", ".join(f"{h['kind']}/{h['tool']}" for h in single) + ".")
        w("")
    fs_col = names.index("has_flowstats") if "has_flowstats" in names else None
    if fs_col is not None and not (X[:, fs_col] > 0).any():
        w("Per-flow statistics (packet sizes, inter-arrival times, per-direction flag counts:")
        w("`has_flowstats` and the features after it) were absent from every row: the datapath")
        w("did not keep them when this data was made. The model cannot use them until the data")
        w("is made again with them (`make train LAB=1`).")
        w("")
    small = [(lab, t, int(((labels == lab) & (tools == t)).sum()))
             for lab in sorted(set(labels) - {"benign"}) for t in sorted(set(tools[labels == lab]))]
    small = [x for x in small if x[2] < 30]
    if small:
        w("Few rows: " + ", ".join(f"{lab}/{t} {n}" for lab, t, n in small) +
          ". Their rates are over that many flows (an upload or a single-port flood is one")
        w("flow per run), so one flow more or less moves them by a lot.")
        w("")
    noisy = [b for b in benign_holdouts if b["fpr"] > 0.05]
    if noisy:
        w("Benign tools the model never saw are flagged often when held out: " +
          ", ".join(f"{b['tool']} ({100 * b['fpr']:.0f} %)" for b in noisy) +
          ". A kind of benign traffic missing from the training data looks like an attack to")
        w("this model: the benign set must cover what a cluster really runs before its alerts")
        w("mean much there, and it ships in `alert` mode (`response.detectors.model`).")
        w("")
    w(f"Scale: {len(labels)} flows from {len(set(runs))} runs in one lab session. Every figure")
    w("above is per flow; an attack is a run of many flows, and \"runs hit\" says whether a")
    w("run had at least one flow flagged.")
    w("")
    for note in args.note or []:
        w(note)
        w("")
    with open(path, "w") as f:
        f.write("\n".join(L).rstrip() + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schema", required=True, help="JSON from build/tools/featschema")
    ap.add_argument("--data", required=True, action="append", help="labelled CSV (.gz ok)")
    ap.add_argument("--out", required=True, help="model file to write (CBOR)")
    ap.add_argument("--algo", choices=["forest", "boosted"], default="forest")
    ap.add_argument("--trees", type=int, default=48)
    ap.add_argument("--max-depth", type=int, default=12)
    ap.add_argument("--min-leaf", type=int, default=3)
    ap.add_argument("--learning-rate", type=float, default=0.1)
    ap.add_argument("--target-fpr", type=float, default=0.001)
    ap.add_argument("--val-frac", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", help="write the markdown report (with held-out tools) here")
    ap.add_argument("--note", action="append", help="a paragraph for the report's last section")
    ap.add_argument("--predict", help="CSV of feature rows to predict with the final model")
    ap.add_argument("--predict-out", help="where --predict writes the probabilities")
    args = ap.parse_args()
    if not 0 < args.target_fpr < 0.5:
        die("--target-fpr must be in (0, 0.5)")

    names, schema_hash, classes = load_schema(args.schema)
    X, labels, tools, runs = load_rows(args.data, names, classes)
    if "benign" not in set(labels) or len(set(labels)) < 2:
        die("the data needs benign rows and at least one threat kind")
    h = hashlib.sha256()
    for p in args.data:
        with open(p, "rb") as f:
            h.update(f.read())
    data_sha = h.hexdigest()

    val = split_runs(labels, runs, args.val_frac, args.seed)
    model = make_model(args, args.seed).fit(X[~val], labels[~val])
    sb_val, _ = scores_of(model, X[val & (labels == "benign")])
    thr = pick_threshold(sb_val, args.target_fpr)
    table = [(f, pick_threshold(sb_val, f)) for f in FPR_GRID]

    metadata = {
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "trainer": f"tools/train/train.py sklearn {sklearn.__version__} python {platform.python_version()}",
        "algo": args.algo, "rows": int(len(labels)), "data_sha256": data_sha,
        "seed": args.seed,
    }
    blob = export(model, names, schema_hash, thr, args.target_fpr, table, metadata)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, args.out)
    print(f"train.py: wrote {args.out} ({len(blob)} bytes, {args.algo}, "
          f"threshold {thr:.6f} for FPR {args.target_fpr})", file=sys.stderr)

    if args.predict:
        Xp, _, _, _ = load_rows([args.predict], names, classes, need_label=False)
        p = model.predict_proba(Xp)
        with open(args.predict_out, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow([f"p_{c}" for c in model.classes_])
            for row in p:
                wr.writerow([repr(float(v)) for v in row])

    if args.report:
        in_dist = []
        sv, pv = scores_of(model, X[val])
        cls = np.asarray(model.classes_)
        pb = list(cls).index("benign")
        pv2 = pv.copy()
        pv2[:, pb] = -1
        typed = cls[pv2.argmax(axis=1)]
        for lab in sorted(set(labels) - {"benign"}):
            m = labels[val] == lab
            if m.any():
                det = sv[m] >= thr
                in_dist.append({"label": lab, "rows": int(m.sum()),
                                "detected": pct(det.sum(), m.sum()),
                                "typed": pct((det & (typed[m] == lab)).sum(), m.sum())})
        holdouts = evaluate_holdouts(args, X, labels, tools, runs, val)
        benign_holdouts = evaluate_benign_holdouts(args, X, labels, tools, runs, val)
        write_report(args.report, args, names, schema_hash.hex(), X, labels, tools, runs, val,
                     model, thr, sb_val, in_dist, holdouts, benign_holdouts, len(blob), data_sha)
        print(f"train.py: wrote {args.report}", file=sys.stderr)


if __name__ == "__main__":
    main()
