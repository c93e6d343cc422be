#!/usr/bin/env python3
"""pandas + scikit-learn (or LightGBM) batch-scoring peer for batch_score.py (timed there as a
whole process).

  train: read a Parquet customer table, one-hot encode the text columns, fit
         DecisionTreeClassifier(max_depth=8, min_samples_leaf=50), or with --rounds R a LightGBM
         model of R trees (depth --max-depth, learning rate 0.1), save model + columns (joblib)
  score: read_parquet, one-hot encode aligned to the training columns, predict_proba, write a
         Parquet with customer_id and churn_probability (--contrib: plus LightGBM's TreeSHAP
         top-3 reasons per customer); prints the in-process seconds per step
         as one JSON line on stdout (imports and interpreter start are not in them)

Usage:
  score_pandas.py train --data train.parquet --model /tmp/churn-peers/peer_tree.joblib
  score_pandas.py score --model /tmp/churn-peers/peer_tree.joblib --input test.parquet \\
      --output out.parquet
"""
import argparse
import json
import time

import joblib
import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier


def encode(df, id_col, label, categoricals, columns=None):
    x = pd.get_dummies(df.drop(columns=[id_col, label], errors="ignore"), columns=categoricals,
                       dtype=np.float32)
    if columns is not None:  # levels unseen in training are dropped, missing ones are zeros
        x = x.reindex(columns=columns, fill_value=np.float32(0))
    return x


def train(a):
    df = pd.read_parquet(a.data)
    cats = [c for c in df.columns if c not in (a.id, a.label) and df[c].dtype.kind not in "biuf"]
    x = encode(df, a.id, a.label, cats)
    if a.rounds:  # LightGBM with `rounds` trees of depth max_depth
        import lightgbm as lgb
        tree = lgb.LGBMClassifier(n_estimators=a.rounds, max_depth=a.max_depth,
                                  num_leaves=2 ** a.max_depth, learning_rate=0.1,
                                  min_child_samples=a.min_samples_leaf, reg_lambda=1.0,
                                  verbose=-1, random_state=0)
        tree.fit(x.to_numpy(np.float32), df[a.label])
        size = f"{a.rounds} LightGBM trees"
    else:
        tree = DecisionTreeClassifier(max_depth=a.max_depth, min_samples_leaf=a.min_samples_leaf,
                                      random_state=0).fit(x.to_numpy(np.float32), df[a.label])
        size = f"{tree.get_n_leaves()} leaves"
    joblib.dump(dict(tree=tree, columns=list(x.columns), categoricals=cats, id=a.id,
                     label=a.label), a.model)
    print(f"trained on {len(df):,} rows, {x.shape[1]} columns ({len(cats)} one-hot), "
          f"{size} -> {a.model}")


def score(a):
    t0 = time.perf_counter()
    m = joblib.load(a.model)
    t1 = time.perf_counter()
    df = pd.read_parquet(a.input)
    t2 = time.perf_counter()
    x = encode(df, m["id"], m["label"], m["categoricals"], m["columns"]).to_numpy(np.float32)
    t3 = time.perf_counter()
    p = m["tree"].predict_proba(x)[:, 1]
    out = {m["id"]: df[m["id"]], "churn_probability": p}
    if a.contrib:  # LightGBM's TreeSHAP: the three inputs that raise the risk most per customer
        phi = m["tree"].booster_.predict(x, pred_contrib=True)[:, :-1]
        top = np.argsort(-phi, axis=1)[:, :3]
        names = np.array(m["columns"])
        for k in range(3):
            out[f"reason_{k + 1}"] = names[top[:, k]]
    t4 = time.perf_counter()
    pd.DataFrame(out).to_parquet(a.output, index=False)
    t5 = time.perf_counter()
    print(json.dumps(dict(rows=len(df), in_process_s=t5 - t0, load_model_s=t1 - t0,
                          read_s=t2 - t1, encode_s=t3 - t2, predict_s=t4 - t3, write_s=t5 - t4)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="fit and save the tree (not timed by batch_score.py)")
    t.add_argument("--data", required=True, help="training Parquet file")
    t.add_argument("--model", required=True, help="output joblib file")
    t.add_argument("--id", default="customer_id")
    t.add_argument("--label", default="churned")
    t.add_argument("--max-depth", type=int, default=8)
    t.add_argument("--min-samples-leaf", type=int, default=50)
    t.add_argument("--rounds", type=int, default=0,
                   help="fit LightGBM with this many trees instead of one sklearn tree")
    s = sub.add_parser("score", help="score a Parquet file (the timed step)")
    s.add_argument("--model", required=True, help="joblib file written by `train`")
    s.add_argument("--input", required=True, help="Parquet file to score")
    s.add_argument("--output", required=True, help="output Parquet: customer_id, churn_probability")
    s.add_argument("--contrib", action="store_true",
                   help="LightGBM models: also TreeSHAP contributions (pred_contrib) and each "
                        "customer's top-3 reasons, as churn-score's reasons columns")
    a = ap.parse_args()
    train(a) if a.cmd == "train" else score(a)


if __name__ == "__main__":
    main()
