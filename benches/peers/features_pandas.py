#!/usr/bin/env python3
"""Transaction feature building: `churn-train features` vs the same aggregation in pandas.

Both read OnlineRetail.csv.gz (541,909 rows, gzip CSV), drop rows without CustomerID, take
amount = Quantity × UnitPrice, and build per customer, from rows before the cutoff: recency_days,
frequency, monetary_total, monetary_mean, tenure_days, frequency_trend, active_months, and the
label churned = no purchase in [cutoff, cutoff + horizon). A purchase is a row with amount >= 0;
returns (amount < 0) net into monetary_total only. Times are end to end (read + aggregate + write),
best of --repeat runs, measured in the same run; outputs are compared value by value.

Target (issue 2): churn ≥ 5× faster than pandas.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared/datasets/online_retail/OnlineRetail.csv.gz"


def pandas_features(path, cutoff, horizon, window, out):
    df = pd.read_csv(path, usecols=["CustomerID", "InvoiceDate", "UnitPrice", "Quantity"],
                     dtype={"CustomerID": str})
    df = df[df["CustomerID"].notna()]
    df["t"] = pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    df["amount"] = df["Quantity"] * df["UnitPrice"]
    cut = pd.Timestamp(cutoff)
    end = cut + pd.Timedelta(days=horizon)
    w = pd.Timedelta(days=window)
    before = df[df["t"] < cut]
    spend = before.groupby("CustomerID", sort=False)["amount"].sum()
    buys = before[before["amount"] >= 0]
    g = buys.groupby("CustomerID", sort=False)
    feats = pd.DataFrame({
        "recency_days": (cut - g["t"].max()).dt.total_seconds() / 86400,
        "frequency": g.size().astype(float),
        "tenure_days": (cut - g["t"].min()).dt.total_seconds() / 86400,
    })
    feats["monetary_total"] = spend.reindex(feats.index)
    feats["monetary_mean"] = feats["monetary_total"] / feats["frequency"]
    recent = buys[buys["t"] >= cut - w].groupby("CustomerID").size()
    prev = buys[(buys["t"] < cut - w) & (buys["t"] >= cut - 2 * w)].groupby("CustomerID").size()
    feats["frequency_trend"] = recent.reindex(feats.index, fill_value=0) / prev.reindex(
        feats.index, fill_value=0).clip(lower=1)
    feats["active_months"] = buys.assign(m=buys["t"].dt.to_period("M")).groupby(
        "CustomerID")["m"].nunique().reindex(feats.index).astype(float)
    after = df[(df["t"] >= cut) & (df["t"] < end) & (df["amount"] >= 0)]
    feats["churned"] = (~feats.index.isin(after["CustomerID"].unique())).astype(int)
    feats.index.name = "CustomerID"
    feats.reset_index().to_csv(out, index=False)
    return feats


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--bin-dir", default=str(ROOT / "target/release"))
    ap.add_argument("--cutoff", default="2011-09-01")
    ap.add_argument("--horizon-days", type=int, default=100)
    ap.add_argument("--window-days", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plain", action="store_true",
                    help="also compare on the decompressed CSV (gzip inflate is single-threaded)")
    args = ap.parse_args()
    exe = Path(args.bin_dir) / "churn-train"
    if not exe.exists():
        sys.exit(f"{exe} not found: run `cargo build --release` first")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [("gzip CSV", args.data)]
        if args.plain:
            plain = Path(tmp) / "OnlineRetail.csv"
            import gzip
            import shutil
            with gzip.open(args.data, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            inputs.append(("plain CSV", str(plain)))
        failed = False
        for label, data in inputs:
            failed |= compare(label, data, exe, args, Path(tmp))
        if failed:
            sys.exit(1)


def compare(label, data, exe, args, tmp):
    pd_out, rs_out = tmp / "pandas.csv", tmp / "churn.csv"
    cmd = [exe, "features", "--transactions", data, "--customer-col", "CustomerID",
           "--time-col", "InvoiceDate", "--amount-col", "UnitPrice", "--quantity-col", "Quantity",
           "--unit-price", "--cutoff", args.cutoff, "--horizon-days", str(args.horizon_days),
           "--window-days", str(args.window_days), "--output", rs_out, "--quiet"]
    t_pd = best_of(args.repeat, lambda: pandas_features(data, args.cutoff, args.horizon_days,
                                                         args.window_days, pd_out))
    t_rs = best_of(args.repeat, lambda: subprocess.run(cmd, check=True))
    a = pd.read_csv(pd_out, dtype={"CustomerID": str}).set_index("CustomerID").sort_index()
    b = pd.read_csv(rs_out, dtype={"CustomerID": str}).set_index("CustomerID").sort_index()
    ok = a.index.equals(b.index)
    bad = [c for c in a.columns
           if ok and not np.allclose(a[c].values, b[c].values, rtol=1e-9, atol=1e-6)]
    print(f"[{label}] customers: pandas {len(a)}, churn {len(b)}; churned: pandas "
          f"{int(a.churned.sum())}, churn {int(b.churned.sum())}")
    print(f"[{label}] pandas {t_pd:.3f} s, churn-train features {t_rs:.3f} s, "
          f"ratio {t_pd / t_rs:.1f}x (target >= 5x)")
    if not ok or bad:
        print(f"[{label}] outputs differ: same customers={ok}, columns differing={bad}")
        return True
    print(f"[{label}] outputs agree on every customer and column")
    return False


if __name__ == "__main__":
    main()
