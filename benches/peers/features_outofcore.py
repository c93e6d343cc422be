#!/usr/bin/env python3
"""Out-of-core transaction features (issue 16): `churn-train features --memory-limit 2G` on a
synthetic log of ~50M lines / 5M customers, against DuckDB running churn's own exported feature
query with memory_limit='2GB' (same output, checked customer by customer), and pandas on the
same log (time and peak memory, or that it failed).

Each side runs as its own process under /usr/bin/time, which reports the peak RSS.

    cargo build --release --bins --example synth_log
    python3 benches/peers/features_outofcore.py [--customers 5000000] [--workdir /tmp/churn-ooc]
    # a Python with duckdb and pandas: benches/peers/setup.sh installs both in benches/peers/.venv
"""
import argparse
import csv
import math
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release"
FLAGS = ["--customer-col", "customer_id", "--time-col", "ts", "--amount-col", "unit_price",
         "--quantity-col", "quantity", "--unit-price", "--order-col", "order_id"]

DUCK = r"""
import sys, duckdb
log, sql, out, limit = sys.argv[1:5]
con = duckdb.connect()
con.execute(f"SET memory_limit = '{limit}'")
con.execute("SET threads = 2")
con.execute("SET preserve_insertion_order = false")
con.execute(f"CREATE VIEW log AS SELECT * FROM read_csv('{log}', all_varchar = true)")
con.execute(f"COPY ({open(sql).read()}) TO '{out}' (HEADER, DELIMITER ',')")
"""

PANDAS = r"""
import sys
import numpy as np, pandas as pd
log, out, cutoff, horizon, window = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
df = pd.read_csv(log, dtype={"order_id": str, "customer_id": str, "ts": str})
df["t"] = pd.to_datetime(df["ts"], format="%Y-%m-%d %H:%M:%S")
df["amt"] = df["unit_price"] * df["quantity"]
cut = pd.Timestamp(cutoff); end = cut + pd.Timedelta(days=horizon); w = pd.Timedelta(days=window)
before = df[df["t"] < cut]
spend = before.groupby("customer_id")["amt"].sum()
buys = before[before["amt"] >= 0]
orders = buys.groupby(["customer_id", "order_id"])["t"].min().reset_index()
orders["recent"] = orders["t"] >= cut - w
orders["previous"] = (orders["t"] < cut - w) & (orders["t"] >= cut - 2 * w)
cnt = orders.groupby("customer_id").agg(frequency=("t", "size"), recent=("recent", "sum"), previous=("previous", "sum"))
act = buys.assign(month=buys["t"].dt.year * 12 + buys["t"].dt.month).groupby("customer_id").agg(
    first=("t", "min"), last=("t", "max"), active_months=("month", "nunique"))
after = set(df.loc[(df["t"] >= cut) & (df["t"] < end) & (df["amt"] >= 0), "customer_id"])
o = act.join(cnt).join(spend.rename("monetary_total"))
o["recency_days"] = (cut - o["last"]).dt.total_seconds() / 86400
o["tenure_days"] = (cut - o["first"]).dt.total_seconds() / 86400
o["monetary_mean"] = o["monetary_total"] / o["frequency"]
o["frequency_trend"] = o["recent"] / np.maximum(o["previous"], 1)
o["churned"] = [0 if c in after else 1 for c in o.index]
o[["recency_days", "frequency", "monetary_total", "monetary_mean", "tenure_days", "frequency_trend",
   "active_months", "churned"]].to_csv(out)
"""


def timed(cmd, timeout):
    """Run under /usr/bin/time; (seconds, peak RSS in MB, return code, stderr tail)."""
    t = time.perf_counter()
    try:
        p = subprocess.run(["/usr/bin/time", "-f", "%M"] + [str(c) for c in cmd],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return timeout, float("nan"), "timeout", ""
    secs = time.perf_counter() - t
    lines = p.stderr.strip().splitlines()
    rss = next((int(l) / 1024 for l in reversed(lines) if re.fullmatch(r"\d+", l.strip())), float("nan"))
    return secs, rss, p.returncode, "\n".join(lines[-4:])


def read(path, id_col):
    with open(path) as f:
        r = csv.DictReader(f)
        return {row[id_col]: row for row in r}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=5_000_000)
    ap.add_argument("--workdir", default="/tmp/churn-ooc")
    ap.add_argument("--cutoff", default="2024-07-01")
    ap.add_argument("--horizon-days", type=int, default=90)
    ap.add_argument("--memory-limit", default="2G")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--timeout", type=int, default=1800)
    a = ap.parse_args()
    w = Path(a.workdir)
    w.mkdir(parents=True, exist_ok=True)
    log = w / f"log-{a.customers}.csv"
    if not log.exists():
        subprocess.run([BIN / "examples/synth_log", "--customers", str(a.customers), "--output", log], check=True)
    lines = sum(1 for _ in open(log, "rb")) - 1
    print(f"log: {log} ({log.stat().st_size / 2**30:.2f} GiB, {lines} lines, {a.customers} customers)")
    dates = ["--cutoff", a.cutoff, "--horizon-days", str(a.horizon_days)]

    churn_out = w / "churn.csv"
    s, rss, rc, err = timed([BIN / "churn-train", "features", "--transactions", log, *FLAGS, *dates,
                             "--memory-limit", a.memory_limit, "--output", churn_out, "--quiet"], a.timeout)
    print(f"churn-train features --memory-limit {a.memory_limit}: {s:7.1f} s, peak RSS {rss:7.0f} MB (exit {rc})")
    if rc != 0:
        sys.exit(err)

    sql = w / "features.duckdb.sql"
    subprocess.run([BIN / "churn-train", "features", *FLAGS, *dates, "--engine", "sql", "--dialect", "duckdb",
                    "--table", "log", "--output", sql], check=True, capture_output=True)
    duck_out = w / "duckdb.csv"
    limit = a.memory_limit if a.memory_limit[-1:].lower() == "b" else a.memory_limit + "B"
    ds, drss, drc, derr = timed([sys.executable, "-c", DUCK, log, sql, duck_out, limit], a.timeout)
    print(f"DuckDB (memory_limit '{limit}', 2 threads):      {ds:7.1f} s, peak RSS {drss:7.0f} MB (exit {drc})")
    if drc != 0:
        print(derr)
    else:
        c, d = read(churn_out, "customer_id"), read(duck_out, "customer_id")
        assert set(c) == set(d), f"customers differ: {len(c)} vs {len(d)}"
        worst = 0.0
        for k, row in c.items():
            for col, v in row.items():
                if col == "customer_id":
                    continue
                x, y = float(v), float(d[k][col])
                if col.startswith("monetary"):
                    worst = max(worst, abs(x - y) / max(1.0, abs(x)))
                elif x != y:
                    sys.exit(f"{k} {col}: churn {x}, DuckDB {y}")
        print(f"same output: {len(c)} customers, every count, day and trend equal, sums within {worst:.1e} relative")
        print(f"churn time / DuckDB time = {s / ds:.2f}")

    if not a.no_pandas:
        pd_out = w / "pandas.csv"
        ps, prss, prc, perr = timed([sys.executable, "-c", PANDAS, log, pd_out, a.cutoff, a.horizon_days, 90],
                                    a.timeout)
        status = "ok" if prc == 0 else f"failed ({prc}): {perr.splitlines()[-1] if perr else ''}"
        print(f"pandas:                                     {ps:7.1f} s, peak RSS {prss:7.0f} MB, {status}")
        if prc == 0:
            print(f"churn time / pandas time = {s / ps:.2f}; churn RSS / pandas RSS = {rss / prss:.2f}")


if __name__ == "__main__":
    main()
