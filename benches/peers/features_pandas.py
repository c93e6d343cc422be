#!/usr/bin/env python3
"""Transaction feature building: `churn-train features` vs the same aggregation in pandas.

Both read OnlineRetail.csv.gz (541,909 rows, gzip CSV), drop rows without CustomerID, take
amount = Quantity × UnitPrice, and build per customer, from rows strictly before the cutoff:
recency_days, frequency, monetary_total, monetary_mean, tenure_days, frequency_trend,
active_months, and the label churned = no purchase in [cutoff, cutoff + horizon).

Event semantics follow src/ingest/transactions.rs: a purchase is a customer's rows at one
timestamp (no order column here) with
amount >= 0. Returns (amount < 0) net into monetary_total only; they do not count toward
frequency, recency, tenure, trend, active months or the label. Customers without a purchase
before the cutoff are left out. frequency_trend = purchases in [cutoff - W, cutoff) /
max(1, purchases in [cutoff - 2W, cutoff - W)), W = --window-days (90). active_months = distinct
calendar months with a purchase before the cutoff.

Times are end to end (read the file + aggregate + write the CSV; for churn the whole process),
best of --repeat runs, measured in the same run. The outputs are then compared customer by
customer: same customers, same churned count, every feature equal within 1e-6 relative
(1e-6 absolute floor for values near zero). Exit 1 on any mismatch.

Horizon: the datasets README defines the Online Retail label as "no purchase from 2011-09-01 to
2011-12-09" (both days included; the log ends 2011-12-09 12:50). With a half-open window that is
--horizon-days 100 (the default); 99 leaves out the purchases made on 2011-12-09.

Target (issue 2): churn >= 5x faster than pandas.

Usage:
    benches/peers/setup.sh
    benches/peers/.venv/bin/python benches/peers/features_pandas.py [--repeat 3] [--plain]
    benches/peers/.venv/bin/python benches/peers/features_pandas.py --pandas-only
"""
import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared/datasets/online_retail/OnlineRetail.csv.gz"
FEATURES = ["recency_days", "frequency", "monetary_total", "monetary_mean", "tenure_days",
            "frequency_trend", "active_months"]
# The datasets README's facts for Online Retail at cutoff 2011-09-01, label to 2011-12-09.
EXPECTED = {"cutoff": "2011-09-01", "customers": 3317, "churned": 1365}
DAY_S = 86400.0


def format_ids(values):
    """Customer ids as churn writes them: integral numbers without a fraction, text trimmed."""
    s = pd.Series(values)
    if pd.api.types.is_numeric_dtype(s.dtype):
        x = s.to_numpy(dtype=float)
        integral = np.isfinite(x) & (np.mod(x, 1) == 0) & (np.abs(x) < 1e15)
        out = np.where(integral, x.astype(np.int64, copy=False).astype(str),
                       pd.Series(x).map(lambda v: f"{v:.4f}".rstrip("0").rstrip(".")).to_numpy())
        return pd.Index(out.astype(object))
    return pd.Index(s.astype(str).str.strip().to_numpy(dtype=object))


def build_features(df, customer_col, time_col, amount_col, quantity_col=None, unit_price=False,
                   cutoff="2011-09-01", horizon_days=100, window_days=90):
    """The customer-level table `churn-train features` writes, from a transaction DataFrame.

    Rows come out in order of each customer's first row in the log (as churn writes them).
    """
    for c in (customer_col, time_col, amount_col) + ((quantity_col,) if quantity_col else ()):
        if c not in df.columns:
            raise KeyError(f"column '{c}' not in the transaction log (have {list(df.columns)})")
    if unit_price and not quantity_col:
        raise ValueError("unit_price needs a quantity column")
    cust = df[customer_col]
    if cust.dtype == object or pd.api.types.is_string_dtype(cust.dtype):
        cust = cust.where(cust.str.strip() != "")
    keep = cust.notna().to_numpy()
    df, cust = df[keep], cust[keep]
    # codes in order of first appearance = churn's output order
    codes, uniques = pd.factorize(cust)
    t = pd.to_datetime(df[time_col], format="ISO8601").to_numpy()
    amount = pd.to_numeric(df[amount_col]).to_numpy(dtype=float)
    if unit_price:
        amount = amount * pd.to_numeric(df[quantity_col]).to_numpy(dtype=float)

    cut = np.datetime64(pd.Timestamp(cutoff))
    end = cut + np.timedelta64(horizon_days, "D")
    w = np.timedelta64(window_days, "D")
    before = t < cut
    buy = amount >= 0

    # monetary_total nets returns in; everything else counts purchases only
    spend = pd.Series(amount[before]).groupby(codes[before]).sum()
    sel = before & buy
    bt = t[sel]
    # a purchase is a customer's rows at one timestamp (churn without --order-col)
    buys = pd.DataFrame({"c": codes[sel], "t": bt}).drop_duplicates()
    bt = buys["t"].to_numpy()
    buys["recent"] = bt >= cut - w
    buys["previous"] = (bt < cut - w) & (bt >= cut - 2 * w)
    buys["month"] = bt.astype("datetime64[M]").astype(np.int64)
    g = buys.groupby("c", sort=True).agg(
        first=("t", "min"), last=("t", "max"), frequency=("t", "size"),
        recent=("recent", "sum"), previous=("previous", "sum"), active_months=("month", "nunique"))
    active_after = np.unique(codes[(t >= cut) & (t < end) & buy])

    out = pd.DataFrame(index=g.index)
    out["recency_days"] = (cut - g["last"].to_numpy()) / np.timedelta64(1, "s") / DAY_S
    out["frequency"] = g["frequency"].astype(float)
    out["monetary_total"] = spend.reindex(g.index).to_numpy()
    out["monetary_mean"] = out["monetary_total"] / out["frequency"]
    out["tenure_days"] = (cut - g["first"].to_numpy()) / np.timedelta64(1, "s") / DAY_S
    out["frequency_trend"] = g["recent"].to_numpy() / np.maximum(g["previous"].to_numpy(), 1)
    out["active_months"] = g["active_months"].astype(float)
    out["churned"] = (~np.isin(g.index.to_numpy(), active_after)).astype(int)
    out.index = format_ids(uniques[g.index.to_numpy()])
    out.index.name = customer_col
    return out.reset_index()


def pandas_end_to_end(data, args, out):
    df = pd.read_csv(data, usecols=["CustomerID", "InvoiceDate", "UnitPrice", "Quantity"])
    feats = build_features(df, "CustomerID", "InvoiceDate", "UnitPrice", "Quantity", True,
                           args.cutoff, args.horizon_days, args.window_days)
    feats.to_csv(out, index=False)
    return feats


def best_of(n, fn):
    best, result = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def run_checked(cmd):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"command failed (exit {p.returncode}): {' '.join(map(str, cmd))}\n"
                 f"{p.stderr.strip() or p.stdout.strip()}")


def report_counts(label, who, feats, args):
    n, churned = len(feats), int(feats["churned"].sum())
    print(f"[{label}] {who}: {n:,} customers, {churned:,} churned ({churned / max(n, 1):.2%})")
    if args.cutoff == EXPECTED["cutoff"] and Path(args.data).name == DATA.name:
        match = n == EXPECTED["customers"] and churned == EXPECTED["churned"]
        print(f"[{label}] datasets README expects {EXPECTED['churned']:,} of "
              f"{EXPECTED['customers']:,} churned at cutoff {args.cutoff}: "
              f"{'matches' if match else 'DOES NOT MATCH'} (horizon {args.horizon_days} days)")


def compare_outputs(label, pd_out, rs_out, rtol, atol, show=5):
    """Customer-by-customer comparison; returns True when the outputs differ."""
    a = pd.read_csv(pd_out, dtype={"CustomerID": str}).set_index("CustomerID")
    b = pd.read_csv(rs_out, dtype={"CustomerID": str})
    missing_cols = [c for c in ["CustomerID", *FEATURES, "churned"] if c not in b.columns]
    if missing_cols:
        print(f"[{label}] churn output lacks columns {missing_cols} (has {list(b.columns)})")
        return True
    b = b.set_index("CustomerID")
    failed = False
    for side, df in (("pandas", a), ("churn", b)):
        dup = df.index[df.index.duplicated()]
        if len(dup):
            print(f"[{label}] {side} output repeats customers: {list(dup[:show])}")
            failed = True
    print(f"[{label}] customers: pandas {len(a):,}, churn {len(b):,}; churned: pandas "
          f"{int(a.churned.sum()):,}, churn {int(b.churned.sum()):,}")
    if len(a) != len(b) or int(a.churned.sum()) != int(b.churned.sum()):
        failed = True
    only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
    if len(only_a) or len(only_b):
        failed = True
        print(f"[{label}] only in pandas: {len(only_a)} {list(only_a[:show])}; "
              f"only in churn: {len(only_b)} {list(only_b[:show])}")
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    for c in [*FEATURES, "churned"]:
        x, y = a[c].to_numpy(dtype=float), b[c].to_numpy(dtype=float)
        bad = ~((np.abs(x - y) <= np.maximum(rtol * np.maximum(np.abs(x), np.abs(y)), atol))
                | (np.isnan(x) & np.isnan(y)))
        if bad.any():
            failed = True
            ex = ", ".join(f"{common[i]}: pandas {x[i]:.10g} churn {y[i]:.10g}"
                           for i in np.flatnonzero(bad)[:show])
            print(f"[{label}] {c}: {int(bad.sum())} of {len(common)} customers differ ({ex})")
    if not failed:
        print(f"[{label}] outputs agree on every customer and column "
              f"(rtol {rtol:g}, atol {atol:g})")
    return failed


def compare(label, data, exe, args, tmp):
    pd_out, rs_out = tmp / "pandas.csv", tmp / "churn.csv"
    t_pd, feats = best_of(args.repeat, lambda: pandas_end_to_end(data, args, pd_out))
    report_counts(label, "pandas", feats, args)
    if exe is None:
        print(f"[{label}] pandas {t_pd:.3f} s (best of {args.repeat}, read + aggregate + write)")
        return False
    cmd = [exe, "features", "--transactions", data, "--customer-col", "CustomerID",
           "--time-col", "InvoiceDate", "--amount-col", "UnitPrice", "--quantity-col", "Quantity",
           "--unit-price", "--cutoff", args.cutoff, "--horizon-days", str(args.horizon_days),
           "--output", rs_out, "--quiet"]
    if args.window_days != 90:
        cmd[-3:-3] = ["--window-days", str(args.window_days)]
    t_rs, _ = best_of(args.repeat, lambda: run_checked(cmd))
    print(f"[{label}] pandas {t_pd:.3f} s, churn-train features {t_rs:.3f} s "
          f"(best of {args.repeat}), ratio pandas/churn {t_pd / t_rs:.2f}x (target >= 5x)")
    return compare_outputs(label, pd_out, rs_out, args.rtol, args.atol)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="Online Retail log (gzip CSV)")
    ap.add_argument("--bin-dir", default=str(ROOT / "target/release"))
    ap.add_argument("--cutoff", default="2011-09-01")
    ap.add_argument("--horizon-days", type=int, default=100,
                    help="label window [cutoff, cutoff + N days); 100 covers 2011-12-09 (default)")
    ap.add_argument("--window-days", type=int, default=90, help="trend window (churn's default 90)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each side")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument("--plain", action="store_true",
                    help="also compare on the decompressed CSV (gzip inflate is single-threaded)")
    ap.add_argument("--pandas-only", action="store_true",
                    help="time the pandas side only (no churn binary needed)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not Path(args.data).exists():
        sys.exit(f"data file not found: {args.data}")
    exe = None
    if not args.pandas_only:
        exe = Path(args.bin_dir) / "churn-train"
        if not exe.exists():
            sys.exit(f"{exe} not found: run `cargo build --release` first "
                     f"(or pass --pandas-only to time the pandas side alone)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = [("gzip CSV", args.data)]
        if args.plain:
            plain = tmp / "OnlineRetail.csv"
            with gzip.open(args.data, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            inputs.append(("plain CSV", str(plain)))
        failed = False
        for label, data in inputs:
            failed |= compare(label, data, exe, args, tmp)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
