#!/usr/bin/env python3
"""Uplift quality and fit time: churn-train uplift vs scikit-uplift and causalml meta-learners.

The rows are exactly those churn learns from: `churn-train uplift --rows-out rows.csv` writes
every training row (the model's inputs, the action, offered or held out, churned) with its
cross-fitting fold and churn's held-out effect per learner. Each peer is cross-fitted on the same
folds with LightGBM (default parameters, as their documentation shows), so every customer's
peer effect also comes from models that did not see it. All held-out effects are scored with
scikit-uplift's own `qini_auc_score` and `uplift_auc_score` on the outcome "stayed" (positive
uplift = the action keeps customers).

Peers: sklift `TwoModels` (T-learner, vanilla), causalml `BaseTClassifier` and `BaseXClassifier`
(X-learner, LightGBM classifier outcomes and regressor effects, propensity = treated share).

Fit time, like for like: churn cross-fits the T- *and* the X-learner on 5 folds, measures both
(bootstrap intervals) and refits the chosen one; its time per action is read from its debug log
(`uplift cross-fitted`, `measured`, `refitted`) and compared with the best peer T-learner's plus
the best peer X-learner's five fold fits. The whole `churn-train uplift` run (store read and
bundle written too) is reported beside it.

Usage (after a simulated campaign, see README "Uplift"):
  benches/peers/setup.sh
  benches/peers/.venv/bin/python benches/peers/uplift_peers.py \\
      --churn-train target/release/churn-train --store sqlite://models/sim.db \\
      --models models --as-of 2026-06-01 [--action CONTRACT_UPGRADE] [--json out.json]
"""
import argparse
import warnings
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor
from sklift.metrics import qini_auc_score, uplift_auc_score
from sklift.models import TwoModels


warnings.filterwarnings("ignore", category=FutureWarning)  # sklift's use of sklearn's stable_cumsum


def design(df, inputs):
    x = df[inputs].copy()
    for c in inputs:
        num = pd.to_numeric(x[c], errors="coerce")
        if num.notna().sum() >= 0.95 * x[c].notna().sum() and x[c].notna().any():
            x[c] = num
        else:
            x[c] = x[c].astype("category")
    return pd.get_dummies(x, dtype=float)


def lgbm_c():
    return LGBMClassifier(verbose=-1, random_state=0)


def lgbm_r():
    return LGBMRegressor(verbose=-1, random_state=0)


def sklift_t(xtr, ytr, ttr, xte):
    m = TwoModels(estimator_trmnt=lgbm_c(), estimator_ctrl=lgbm_c(), method="vanilla")
    m.fit(xtr, ytr, ttr)
    return m.predict(xte)


def causalml_t(xtr, ytr, ttr, xte):
    from causalml.inference.meta import BaseTClassifier

    m = BaseTClassifier(learner=lgbm_c(), control_name=0)
    m.fit(X=xtr.values, treatment=ttr, y=ytr)
    return np.asarray(m.predict(X=xte.values)).reshape(-1)


def causalml_x(xtr, ytr, ttr, xte):
    from causalml.inference.meta import BaseXClassifier

    m = BaseXClassifier(outcome_learner=lgbm_c(), effect_learner=lgbm_r(), control_name=0)
    share = float(np.mean(ttr))
    m.fit(X=xtr.values, treatment=ttr, y=ytr, p=np.full(len(ttr), share))
    return np.asarray(m.predict(X=xte.values, p=np.full(len(xte), share))).reshape(-1)


PEERS = {
    "sklift T (LightGBM)": sklift_t,
    "causalml T (LightGBM)": causalml_t,
    "causalml X (LightGBM)": causalml_x,
}


def cross_fit(fn, x, y, t, folds):
    out = np.zeros(len(y))
    start = time.perf_counter()
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        out[te] = fn(x[tr], y[tr], t[tr], x[te])
    return out, time.perf_counter() - start


def scores(y, effect, t):
    return {
        "qini": float(qini_auc_score(y, effect, t)),
        "auuc": float(uplift_auc_score(y, effect, t)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--churn-train", default="target/release/churn-train")
    ap.add_argument("--store", required=True)
    ap.add_argument("--models", default="models")
    ap.add_argument("--model", default=None)
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--action", default=None, help="one action (default: every modelled one)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.csv"
        cmd = [a.churn_train, "uplift", "--store", a.store, "--models", a.models,
               "--as-of", a.as_of, "--rows-out", str(rows)]
        if a.model:
            cmd += ["--model", a.model]
        start = time.perf_counter()
        env = dict(os.environ, RUST_LOG="debug")
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        churn_secs = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"churn-train uplift failed ({run.returncode}): {run.stderr}")
        print(run.stdout, end="")
        # per modelled action, in the order the summary lists them: cross-fit + measure + refit
        secs = [float(x) for x in re.findall(r"uplift (?:cross-fitted|measured|refitted) secs=([0-9.]+)", run.stderr)]
        listed = re.findall(r"^  (\S+): \d+ treated", run.stdout, flags=re.M)
        churn_fit = {a: sum(secs[3 * i:3 * i + 3]) for i, a in enumerate(listed)}
        df = pd.read_csv(rows, dtype=str, keep_default_na=False, na_values=[""])
    meta = {"action", "treated", "churned", "fold"}
    effect_cols = [c for c in df.columns if c.startswith("effect_")]
    inputs = [c for c in df.columns if c not in meta and c not in effect_cols]
    actions = sorted(df["action"].unique()) if a.action is None else [a.action]
    report = {"churn_seconds_whole_run": churn_secs, "actions": {}}
    for act in actions:
        d = df[df["action"] == act].reset_index(drop=True)
        y = 1 - d["churned"].astype(int).to_numpy()  # stayed
        t = d["treated"].astype(int).to_numpy()
        folds = d["fold"].astype(int).to_numpy()
        x = design(d, inputs)
        res = {"rows": int(len(d)), "treated": int(t.sum())}
        ours = {c: d[c].astype(float).to_numpy() for c in effect_cols}
        churn_best = max(ours, key=lambda c: scores(y, ours[c], t)["qini"])
        for c, e in ours.items():
            res[f"churn {c[len('effect_'):].upper()}-learner"] = scores(y, e, t)
        best_peer, best_q, peer_secs = None, -np.inf, {}
        for name, fn in PEERS.items():
            try:
                e, secs = cross_fit(fn, x, y, t, folds)
            except Exception as err:  # a peer that fails is reported, not hidden
                res[name] = {"error": str(err)}
                continue
            res[name] = {**scores(y, e, t), "fit_seconds": secs}
            peer_secs[name] = secs
            if res[name]["qini"] > best_q:
                best_peer, best_q = name, res[name]["qini"]
        ours_q = res[f"churn {churn_best[len('effect_'):].upper()}-learner"]["qini"]
        res["best_peer"] = best_peer
        res["qini_vs_best_peer"] = ours_q - best_q
        res["target_qini"] = bool(ours_q >= best_q - 0.01)
        t_peers = [v for k, v in peer_secs.items() if " T " in k]
        x_peers = [v for k, v in peer_secs.items() if " X " in k]
        res["churn_fit_seconds"] = churn_fit.get(act)
        if t_peers and x_peers and churn_fit.get(act):
            res["peer_t_plus_x_seconds"] = min(t_peers) + min(x_peers)
            res["fit_time_ratio"] = churn_fit[act] / res["peer_t_plus_x_seconds"]
        report["actions"][act] = res
        print(f"\n{act}: {res['rows']} rows ({res['treated']} offered)")
        for k, v in res.items():
            if isinstance(v, dict):
                extra = f", fit {v['fit_seconds']:.2f} s" if "fit_seconds" in v else ""
                if "error" in v:
                    print(f"  {k:<26} failed: {v['error']}")
                else:
                    print(f"  {k:<26} Qini {v['qini']:.4f}  AUUC {v['auuc']:.4f}{extra}")
        print(f"  churn's chosen learner vs best peer ({best_peer}): Qini {res['qini_vs_best_peer']:+.4f}"
              f" -> target (>= -0.01) {'met' if res['target_qini'] else 'MISSED'}")
        if "fit_time_ratio" in res:
            print(f"  fit: churn T+X cross-fit, measure, refit {res['churn_fit_seconds']:.2f} s; fastest peer T + "
                  f"fastest peer X {res['peer_t_plus_x_seconds']:.2f} s -> {res['fit_time_ratio']:.2f}x (target <= 1.0)")
    peer_total = {}
    for act, res in report["actions"].items():
        for name in PEERS:
            if "fit_seconds" in res.get(name, {}):
                peer_total[name] = peer_total.get(name, 0.0) + res[name]["fit_seconds"]
    report["peer_fit_seconds"] = peer_total
    print(f"\nwhole runs: churn-train uplift {churn_secs:.2f} s (store read, every action, bundle written); peers' fold fits: "
          + ", ".join(f"{k} {v:.2f} s (churn = {churn_secs / v:.2f}x)" for k, v in peer_total.items()))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
