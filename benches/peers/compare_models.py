#!/usr/bin/env python3
"""Model quality and fit time: churn-train vs a tuned scikit-learn decision tree, same split.

For each dataset: split the customer table 80/20 stratified with a fixed seed; tune sklearn's
DecisionTreeClassifier with GridSearchCV (max_depth 3..12, min_samples_leaf 1..100, 5-fold
stratified CV, log loss) on the 80%; train churn-train on the same 80% (--holdout 0); score the 20%
with both (churn-score for ours) and print ROC-AUC and Brier side by side.

Targets (issue 3): AUC >= sklearn - 0.005 and Brier <= sklearn + 0.005.

Usage: benches/peers/setup.sh && benches/peers/.venv/bin/python benches/peers/compare_models.py
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "datasets"

DATASETS = {
    "telco": dict(path=SHARED / "telco_customer_churn/Telco-Customer-Churn.csv",
                  fallback=ROOT / "training/data/Telco-Customer-Churn.csv",
                  label="Churn", positive="Yes", id="customerID", drop=[]),
    "bank": dict(path=SHARED / "bank_customer_churn/Churn_Modelling.csv", fallback=None,
                 label="Exited", positive="1", id="CustomerId", drop=["RowNumber", "Surname"]),
    "cdnow": dict(transactions=SHARED / "cdnow_transactions/cdnow_master_transactions.csv",
                  fallback=ROOT / "training/data/cdnow_master_transactions.csv",
                  label="churned", positive="1", id="customer_id", drop=[],
                  tx_args=["--customer-col", "customer_id", "--time-col", "date",
                           "--amount-col", "dollar_value", "--cutoff", "1997-10-01",
                           "--horizon-days", "273"]),
}


def run(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr}")
    return time.perf_counter() - t


def pick(spec, key):
    p = spec.get(key)
    if p is not None and p.exists():
        return p
    if spec.get("fallback") is not None and spec["fallback"].exists():
        return spec["fallback"]
    sys.exit(f"dataset file missing: {p}")


def sklearn_design(train, test, features):
    """Median-imputed numerics (plus missing flags) and one-hot categoricals, fitted on train."""
    cols_tr, cols_te = [], []
    for c in features:
        tr = pd.to_numeric(train[c].str.strip().replace("", np.nan), errors="coerce")
        nonblank = (train[c].str.strip() != "").sum()
        if nonblank and tr.notna().sum() >= 0.98 * nonblank:
            te = pd.to_numeric(test[c].str.strip().replace("", np.nan), errors="coerce")
            med = tr.median()
            cols_tr.append(tr.fillna(med).rename(c))
            cols_te.append(te.fillna(med).rename(c))
            if tr.isna().any():
                cols_tr.append(tr.isna().astype(float).rename(c + "__missing"))
                cols_te.append(te.isna().astype(float).rename(c + "__missing"))
        else:
            levels = sorted(train[c].unique())
            for lv in levels:
                cols_tr.append((train[c] == lv).astype(float).rename(f"{c}={lv}"))
                cols_te.append((test[c] == lv).astype(float).rename(f"{c}={lv}"))
    return pd.concat(cols_tr, axis=1), pd.concat(cols_te, axis=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="telco,bank,cdnow")
    ap.add_argument("--bin-dir", default=str(ROOT / "target/release"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--learner", default="hist", help="churn-train --learner (hist, cart or linfa)")
    ap.add_argument("--jobs", type=int, default=2, help="sklearn GridSearchCV n_jobs")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--no-fail", action="store_true", help="exit 0 even when a target is missed")
    args = ap.parse_args()
    bins = Path(args.bin_dir)
    for b in ("churn-train", "churn-score"):
        if not (bins / b).exists():
            sys.exit(f"{bins / b} not found: run `cargo build --release` first")

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.datasets.split(","):
            spec = DATASETS[name]
            if "transactions" in spec:
                feats = tmp / f"{name}_features.csv"
                run([bins / "churn-train", "features", "--transactions", pick(spec, "transactions"),
                     *spec["tx_args"], "--output", feats, "--quiet"])
                src = feats
            else:
                src = pick(spec, "path")
            df = pd.read_csv(src, dtype=str, keep_default_na=False)
            y = (df[spec["label"]] == spec["positive"]).astype(int)
            tr_idx, te_idx = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y,
                                              random_state=args.seed)
            train, test = df.iloc[tr_idx], df.iloc[te_idx]
            ytr, yte = y.iloc[tr_idx].values, y.iloc[te_idx].values
            train_csv, test_csv = tmp / f"{name}_train.csv", tmp / f"{name}_test.csv"
            train.to_csv(train_csv, index=False)
            test.to_csv(test_csv, index=False)

            # --- sklearn ---
            features = [c for c in df.columns if c not in {spec["label"], spec["id"], *spec["drop"]}]
            Xtr, Xte = sklearn_design(train, test, features)
            grid = GridSearchCV(
                DecisionTreeClassifier(random_state=args.seed),
                {"max_depth": list(range(3, 13)), "min_samples_leaf": [1, 2, 5, 10, 20, 50, 100]},
                cv=StratifiedKFold(5, shuffle=True, random_state=args.seed),
                scoring="neg_log_loss", n_jobs=args.jobs)
            t = time.perf_counter()
            grid.fit(Xtr, ytr)
            sk_fit = time.perf_counter() - t
            sk_p = grid.predict_proba(Xte)[:, 1]

            # --- churn ---
            model = tmp / f"{name}_model"
            cmd = [bins / "churn-train", "--data", train_csv, "--label", spec["label"],
                   "--positive", spec["positive"], "--id", spec["id"], "--holdout", "0",
                   "--learner", args.learner, "--seed", str(args.seed), "--out", model, "--quiet"]
            if spec["drop"]:
                cmd += ["--drop", ",".join(spec["drop"])]
            ch_fit = run(cmd)
            scores = tmp / f"{name}_scores.csv"
            run([bins / "churn-score", "--model", model, "--input", test_csv, "--output", scores,
                 "--quiet"])
            out = pd.read_csv(scores, dtype={spec["id"]: str})
            ch_p = out.set_index(spec["id"]).loc[test[spec["id"]].values, "churn_probability"].values

            r = dict(dataset=name, rows_train=len(train), rows_test=len(test),
                     sklearn_auc=roc_auc_score(yte, sk_p), churn_auc=roc_auc_score(yte, ch_p),
                     sklearn_brier=brier_score_loss(yte, sk_p), churn_brier=brier_score_loss(yte, ch_p),
                     sklearn_fit_s=sk_fit, churn_fit_s=ch_fit, sklearn_params=grid.best_params_)
            r["auc_ok"] = r["churn_auc"] >= r["sklearn_auc"] - 0.005
            r["brier_ok"] = r["churn_brier"] <= r["sklearn_brier"] + 0.005
            results.append(r)

    print(f"{'dataset':8} {'sk AUC':>8} {'churn AUC':>9} {'ΔAUC':>8} {'sk Brier':>9} {'churn Brier':>11} "
          f"{'ΔBrier':>8} {'sk fit s':>8} {'churn s':>8} {'speed':>6}  targets")
    for r in results:
        print(f"{r['dataset']:8} {r['sklearn_auc']:8.4f} {r['churn_auc']:9.4f} "
              f"{r['churn_auc'] - r['sklearn_auc']:+8.4f} {r['sklearn_brier']:9.4f} {r['churn_brier']:11.4f} "
              f"{r['churn_brier'] - r['sklearn_brier']:+8.4f} {r['sklearn_fit_s']:8.2f} {r['churn_fit_s']:8.2f} "
              f"{r['sklearn_fit_s'] / r['churn_fit_s']:5.1f}x  "
              f"AUC {'ok' if r['auc_ok'] else 'MISS'}, Brier {'ok' if r['brier_ok'] else 'MISS'}")
    print("(churn s = whole churn-train run incl. reading, CV grid, calibration; sk fit = GridSearchCV.fit only)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    if not args.no_fail and not all(r["auc_ok"] and r["brier_ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
