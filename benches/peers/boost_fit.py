#!/usr/bin/env python3
"""Boosted-tree fit time and AUC at 1M x 20: churn-train vs LightGBM, same rounds, depth and bins.

synth writes a train table (seed 42) and a test table (seed 43) of --rows x 20 numeric columns
(no categoricals) into --workdir. In one run, on the same files, best of --repeat:
  lightgbm  lgb.train(objective=binary, rounds=R, max_depth=D, num_leaves=2**D, learning_rate
            0.1, max_bin 255, min_child_samples 20, lambda_l2 1, num_threads T) on a float32
            C-order array prepared outside the timer; Dataset construction (binning) is inside it
  churn     churn-train --model boosted --no-search --boost-rounds R --boost-max-depth D
            --boost-learning-rate 0.1 --holdout 0 --no-segments --threads T; fit time = the card's
            prepare_s (binning) + fit_s (the final fit). The calibration folds run before it and
            are not part of the fit, as LightGBM's calibration would not be
  whole     the default churn-train (auto model choice: tree grid + boosted CV, calibration,
            segments, report, 20% holdout) on the same table; its total_s against LightGBM's fit
AUC is ROC-AUC on the test table (churn-score's churn_probability for ours). Targets (issue 13):
fit time <= 1.0x LightGBM with AUC >= LightGBM - 0.003; whole run <= 3x LightGBM's fit; segments
never the dominant stage of the whole run.

Needs `cargo build --release --bins --example synth` and benches/peers/setup.sh. Run:
  benches/peers/.venv/bin/python benches/peers/boost_fit.py            # 1M rows, 300 rounds, depth 6
  benches/peers/.venv/bin/python benches/peers/boost_fit.py --rows 100000 --rounds 100 --no-whole
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

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release"
ID, LABEL = "customer_id", "churned"


def run(cmd):
    t = time.perf_counter()
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"exit {p.returncode}: {' '.join(map(str, cmd))}\n  {p.stderr.strip()}")
    return time.perf_counter() - t


def churn_auc(model, test, labels, workdir):
    scores = workdir / "boost_scores.parquet"
    run([BIN / "churn-score", "--model", model, "--input", test, "--output", scores,
         "--columns", f"{ID},churn_probability", "--quiet"])
    s = pd.read_parquet(scores, columns=[ID, "churn_probability"]).merge(labels, on=ID)
    return roc_auc_score(s[LABEL], s["churn_probability"])


def main():
    import lightgbm as lgb

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-whole", action="store_true", help="skip the whole default churn-train")
    ap.add_argument("--workdir", default="/tmp/churn-peers")
    ap.add_argument("--json")
    args = ap.parse_args()
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    train = synthdata.synth(wd, args.rows, 20, 0, 42, run)
    test = synthdata.synth(wd, args.rows // 5, 20, 0, 43, run)
    tr, te = pd.read_parquet(train), pd.read_parquet(test)
    xtr = np.ascontiguousarray(tr.drop(columns=[ID, LABEL]).to_numpy(np.float32))
    xte = np.ascontiguousarray(te.drop(columns=[ID, LABEL]).to_numpy(np.float32))
    ytr, yte = tr[LABEL].to_numpy(), te[LABEL].to_numpy()
    labels = te[[ID, LABEL]]
    del tr

    params = dict(objective="binary", max_depth=args.depth, num_leaves=2 ** args.depth,
                  learning_rate=0.1, max_bin=255, min_child_samples=20, lambda_l2=1.0,
                  num_threads=args.threads, verbose=-1, seed=0, deterministic=True)
    lgb_s = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        booster = lgb.train(params, lgb.Dataset(xtr, ytr), num_boost_round=args.rounds)
        lgb_s = min(lgb_s, time.perf_counter() - t)
    lgb_auc = roc_auc_score(yte, booster.predict(xte))
    print(f"lightgbm: {lgb_s:.2f} s, AUC {lgb_auc:.4f}", file=sys.stderr)

    out = wd / "model_boost_fit"
    best = None
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        wall = run([BIN / "churn-train", "--data", train, "--label", LABEL, "--id", ID,
                    "--model", "boosted", "--no-search", "--boost-rounds", args.rounds,
                    "--boost-max-depth", args.depth, "--boost-learning-rate", 0.1,
                    "--holdout", 0, "--no-segments", "--threads", args.threads, "--quiet",
                    "--out", out])
        tm = json.loads(next(out.glob("versions/*/model_card.json")).read_text())["timings"]
        fit = tm["prepare_s"] + tm["fit_s"]
        if best is None or fit < best[0]:
            best = (fit, wall, tm)
    ch_fit, ch_wall, ch_tm = best
    ch_auc = churn_auc(out, test, labels, wd)
    print(f"churn: fit {ch_fit:.2f} s (process {ch_wall:.2f} s), AUC {ch_auc:.4f}", file=sys.stderr)

    res = dict(rows=args.rows, rounds=args.rounds, depth=args.depth, threads=args.threads,
               lgbm_fit_s=lgb_s, lgbm_auc=lgb_auc, churn_fit_s=ch_fit, churn_wall_s=ch_wall,
               churn_timings=ch_tm, churn_auc=ch_auc, fit_ratio=ch_fit / lgb_s)
    if not args.no_whole:
        whole = wd / "model_boost_whole"
        shutil.rmtree(whole, ignore_errors=True)
        w = run([BIN / "churn-train", "--data", train, "--label", LABEL, "--id", ID,
                 "--threads", args.threads, "--quiet", "--out", whole])
        card = json.loads(next(whole.glob("versions/*/model_card.json")).read_text())
        res.update(whole_wall_s=w, whole_timings=card["timings"],
                   whole_choice=card.get("model_choice", {}).get("chosen"),
                   whole_ratio=card["timings"]["total_s"] / lgb_s,
                   whole_auc=churn_auc(whole, test, labels, wd))

    print(f"\n{args.rows:,} x 20, {args.rounds} rounds, depth {args.depth}, 255 bins, "
          f"{args.threads} threads (best of {args.repeat})")
    print(f"  LightGBM fit        {lgb_s:8.2f} s   AUC {lgb_auc:.4f}")
    print(f"  churn boosted fit   {ch_fit:8.2f} s   AUC {ch_auc:.4f}   "
          f"= {ch_fit / lgb_s:.2f}x LightGBM (target <= 1.0), ΔAUC {ch_auc - lgb_auc:+.4f} "
          f"(target >= -0.003)")
    if "whole_timings" in res:
        t = res["whole_timings"]
        stages = {k: v for k, v in t.items() if k.endswith("_s") and k != "total_s"}
        top = max(stages, key=stages.get)
        print(f"  whole churn-train   {t['total_s']:8.2f} s   AUC {res['whole_auc']:.4f}   "
              f"= {res['whole_ratio']:.2f}x LightGBM's fit (target <= 3), chose "
              f"{res['whole_choice']}; largest stage {top} {stages[top]:.1f} s, segments "
              f"{t['segments_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
