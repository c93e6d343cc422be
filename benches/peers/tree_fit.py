#!/usr/bin/env python3
"""Single decision-tree fit time and holdout AUC: churn-train vs scikit-learn and LightGBM.

For each size N: synth writes a train table (seed 42) and a test table (seed 43) of the same
distribution (default N x 20 numeric, no categoricals) into --workdir, kept until synth is rebuilt.
In one run, on the same files:
  sklearn   DecisionTreeClassifier(max_depth=D, min_samples_leaf=L, random_state=0); .fit only
            (single-threaded), on a float32 Fortran-order array prepared outside the timer
  lgbm-100  LGBMClassifier(n_estimators=100, n_jobs=--lgbm-threads), defaults otherwise, on a
            C-order copy (its Dataset construction and binning are inside the timed fit)
  lgbm-1    one LightGBM tree like ours: max_depth=D, num_leaves=2**D, learning_rate=1,
            min_child_samples=L
  churn     churn-train --no-search --holdout 0 --no-segments --learner NAME --threads T for each
            learner and thread count; fit time = model_card.json timings prepare_s + fit_s
            (binning/presorting + the final fit, like the peers' fit; calibration CV excluded;
            the whole process time if the card has no timings, marked "wall"); AUC from
            churn-score's churn_probability joined to the test labels by customer_id
AUC is ROC-AUC on the test table. Ratios are against sklearn at the same size. With --repeat R
every system is fitted R times and its best time kept.

Needs `cargo build --release --bins --example synth` and benches/peers/setup.sh. Run:
  benches/peers/.venv/bin/python benches/peers/tree_fit.py                 # 100k and 1M rows
  benches/peers/.venv/bin/python benches/peers/tree_fit.py --rows 20000 --learners cart,linfa
"""
import synthdata  # benches/peers/synthdata.py (the script directory is on sys.path)
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release"
ID, LABEL = "customer_id", "churned"


def csv_list(kind):
    return lambda s: [kind(x) for x in s.split(",") if x.strip()]


def run(cmd):
    t = time.perf_counter()
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        cmdline = " ".join(map(str, cmd))
        raise RuntimeError(f"exit {p.returncode}: {cmdline}\n  {p.stderr.strip()}")
    return time.perf_counter() - t


def synth(workdir, rows, numeric, categorical, seed):
    return synthdata.synth(workdir, rows, numeric, categorical, seed, run)


def matrices(train_path, test_path):
    """Features as float32 Fortran arrays (sklearn's tree dtype); categoricals one-hot on train."""
    tr, te = pd.read_parquet(train_path), pd.read_parquet(test_path)
    xtr = pd.get_dummies(tr.drop(columns=[ID, LABEL]), dtype=np.float32)
    xte = pd.get_dummies(te.drop(columns=[ID, LABEL]), dtype=np.float32)
    xte = xte.reindex(columns=xtr.columns, fill_value=0)
    as_arr = lambda x: np.asfortranarray(x.to_numpy(dtype=np.float32))
    return as_arr(xtr), tr[LABEL].to_numpy(), as_arr(xte), te[LABEL].to_numpy(), te[[ID, LABEL]]


def timed_fit(make, repeat, xtr, ytr, xte, yte):
    """Best .fit time of `repeat` fresh models from make(); AUC of the last one."""
    best = float("inf")
    for _ in range(repeat):
        model = make()
        t = time.perf_counter()
        model.fit(xtr, ytr)
        best = min(best, time.perf_counter() - t)
    return best, roc_auc_score(yte, model.predict_proba(xte)[:, 1])


def ours(args, workdir, rows, train, test, labels, learner, threads):
    out = workdir / f"model_{learner}_{rows}_t{threads}"
    runs = []  # (fit seconds or None, process wall, card) per run; the best one is kept
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)  # never read a stale model card
        wall = run([BIN / "churn-train", "--data", train, "--label", LABEL, "--id", ID,
                    "--no-search", "--max-depth", args.max_depth,
                    "--min-samples-leaf", args.min_samples_leaf, "--holdout", 0,
                    "--no-segments", "--learner", learner, "--threads", threads, "--quiet",
                    "--out", out])
        card = json.loads(next(out.glob("versions/*/model_card.json")).read_text())
        tm = card.get("timings") or {}
        runs.append((tm["fit_s"] + tm.get("prepare_s", 0.0) if "fit_s" in tm else None, wall, card))
    fit_s, wall, card = min(runs, key=lambda r: r[0] if r[0] is not None else r[1])
    tm = card.get("timings") or {}
    scores = workdir / "scores.parquet"
    run([BIN / "churn-score", "--model", out, "--input", test, "--output", scores, "--quiet"])
    s = pd.read_parquet(scores, columns=[ID, "churn_probability"]).merge(labels, on=ID, how="inner")
    if len(s) != len(labels):
        raise RuntimeError(f"churn-score wrote {len(s)} joinable rows for {len(labels)} test rows")
    auc = roc_auc_score(s[LABEL], s["churn_probability"])
    return dict(fit_s=fit_s if fit_s is not None else wall,
                fit_source="timings.prepare_s+fit_s" if fit_s is not None else "wall",
                prep_s=tm.get("prepare_s"),
                wall_s=wall, timings=card.get("timings"), auc=auc,
                leaves=(card.get("tree") or {}).get("leaves"))


def bench_size(args, rows):
    from lightgbm import LGBMClassifier

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train = synth(workdir, rows, args.numeric, args.categorical, 42)
    test = synth(workdir, rows, args.numeric, args.categorical, 43)
    xtr, ytr, xte, yte, labels = matrices(train, test)
    ctr, cte = np.ascontiguousarray(xtr), np.ascontiguousarray(xte)  # LightGBM copies F-order
    d, leaf = args.max_depth, args.min_samples_leaf
    res = []

    def add(system, threads, fit_s, auc, **extra):
        res.append(dict(rows=rows, system=system, threads=threads, fit_s=fit_s, auc=auc, **extra))
        print(f"  {system:<12} t={threads}  fit {fit_s:8.3f} s  AUC {auc:.4f}", file=sys.stderr)

    print(f"N={rows:,} x {xtr.shape[1]} features, train {train.name}, test {test.name}",
          file=sys.stderr)
    rep, nj = args.repeat, args.lgbm_threads
    add("sklearn", 1, *timed_fit(lambda: DecisionTreeClassifier(
        max_depth=d, min_samples_leaf=leaf, random_state=0), rep, xtr, ytr, xte, yte))
    if not args.no_lightgbm:
        add("lgbm-100", nj, *timed_fit(lambda: LGBMClassifier(
            n_estimators=100, n_jobs=nj, verbose=-1), rep, ctr, ytr, cte, yte))
        add("lgbm-1", nj, *timed_fit(lambda: LGBMClassifier(
            n_estimators=1, max_depth=d, num_leaves=2 ** d, learning_rate=1.0,
            min_child_samples=max(1, leaf), n_jobs=nj, verbose=-1), rep, ctr, ytr, cte, yte))
    for learner in args.learners:
        if learner == "linfa" and rows > args.linfa_max_rows:
            print(f"  linfa skipped at {rows:,} rows (> --linfa-max-rows)", file=sys.stderr)
            continue
        for t in args.threads:
            try:
                r = ours(args, workdir, rows, train, test, labels, learner, t)
            except RuntimeError as e:  # e.g. a learner this build does not have: report, go on
                print(f"  churn-{learner} t={t} failed: {e}", file=sys.stderr)
                res.append(dict(rows=rows, system=f"churn-{learner}", threads=t, error=str(e)))
                continue
            add(f"churn-{learner}", t, r.pop("fit_s"), r.pop("auc"), **r)
    base = next(r for r in res if r["system"] == "sklearn")
    for r in (r for r in res if "error" not in r):
        r["time_vs_sklearn"] = r["fit_s"] / base["fit_s"]
        r["auc_minus_sklearn"] = r["auc"] - base["auc"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--rows", type=csv_list(int), default=[100_000, 1_000_000],
                    help="training (and test) rows, comma-separated (default 100000,1000000)")
    ap.add_argument("--numeric", type=int, default=20, help="synth numeric columns (default 20)")
    ap.add_argument("--categorical", type=int, default=0,
                    help="synth categorical columns 0-4 (default 0; one-hot for the peers)")
    ap.add_argument("--max-depth", type=int, default=10, help="tree depth D (default 10)")
    ap.add_argument("--min-samples-leaf", type=int, default=1, help="leaf size L (default 1)")
    ap.add_argument("--learners", type=csv_list(str), default=["hist", "cart"],
                    help="churn-train --learner values, passed as given (default hist,cart)")
    ap.add_argument("--threads", type=csv_list(int), default=[1, 2],
                    help="churn-train --threads values to run (default 1,2)")
    ap.add_argument("--linfa-max-rows", type=int, default=100_000,
                    help="run the linfa learner only up to this many rows (default 100000)")
    ap.add_argument("--lgbm-threads", type=int, default=2, help="LightGBM threads (default 2)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="fits per system, best time kept (default 1; this VM is noisy, use 3)")
    ap.add_argument("--no-lightgbm", action="store_true", help="skip the LightGBM peers")
    ap.add_argument("--workdir", default="/tmp/churn-peers",
                    help="data and model directory, reused between runs (default /tmp/churn-peers)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    for exe in (BIN / "churn-train", BIN / "churn-score", BIN / "examples/synth"):
        if not exe.exists():
            sys.exit(f"missing {exe}: cargo build --release --bins --example synth")

    results = [r for n in args.rows for r in bench_size(args, n)]
    print(f"\ntree fit, depth {args.max_depth}, min leaf {args.min_samples_leaf}, "
          f"{args.numeric} numeric + {args.categorical} categorical, best of {args.repeat}; "
          f"ratios vs sklearn, same N")
    print(f"{'rows':>9}  {'system':<12} {'thr':>3}  {'fit s':>8} {'':4} {'prep s':>7}  {'AUC':>6}  "
          f"{'time/skl':>8}  {'AUC-skl':>8}  {'process s':>9}")
    for r in results:
        if "error" in r:
            print(f"{r['rows']:>9,}  {r['system']:<12} {r['threads']:>3}  failed: "
                  f"{r['error'].splitlines()[-1].strip()}")
            continue
        src = "wall" if r.get("fit_source") == "wall" else ""
        prep = f"{r['prep_s']:7.3f}" if r.get("prep_s") is not None else ""
        print(f"{r['rows']:>9,}  {r['system']:<12} {r['threads']:>3}  {r['fit_s']:8.3f} {src:<4} "
              f"{prep:>7}  "
              f"{r['auc']:.4f}  {r['time_vs_sklearn']:7.2f}x  {r['auc_minus_sklearn']:+8.4f}  "
              + (f"{r['wall_s']:9.3f}" if "wall_s" in r else ""))
    if any(r.get("fit_source") == "wall" for r in results):
        print("wall = model_card.json has no timings.fit_s: whole churn-train process time "
              "(read, encode, fit, calibration CV, write), an upper bound on the fit")
    print("churn fit s = timings prepare_s (binning/presort, shown as prep s) + fit_s (final "
          "fit); process s = the whole churn-train run incl. read, encode, calibration CV, write")
    if args.json:
        meta = {k: v for k, v in vars(args).items() if k != "json"}
        Path(args.json).write_text(json.dumps(dict(args=meta, results=results), indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
