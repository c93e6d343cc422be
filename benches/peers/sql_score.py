#!/usr/bin/env python3
"""Scoring inside the database: the exported SQL of a synth model on DuckDB and PostgreSQL against
`churn-score` on the same rows (issue 16). Checks that every probability is bit-identical and
reports the times as ratios.

Needs `cargo build --release --bins --example synth`, a Python with `duckdb` (this script's own
interpreter) and PostgreSQL on 127.0.0.1:5432 (psql, trust auth, as on the project machines).

    python3 benches/peers/sql_score.py [--rows 1000000] [--workdir /tmp/churn-sql] [--repeat 2]
        [--boost-rounds 300 [--boost-depth 6]] [--no-postgres]

`--boost-rounds N` scores with N boosting rounds of depth `--boost-depth` instead of the default
model (issue 35: the 300-round model on DuckDB within 2x churn-score's end-to-end time).
"""
import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release"


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw)


def psql(db, *args, **kw):
    return run("psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-q", *args, **kw)


def best(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train-rows", type=int, default=200_000)
    ap.add_argument("--workdir", default="/tmp/churn-sql")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--boost-rounds", type=int, default=0)
    ap.add_argument("--boost-depth", type=int, default=6)
    ap.add_argument("--no-postgres", action="store_true")
    a = ap.parse_args()
    w = Path(a.workdir)
    w.mkdir(parents=True, exist_ok=True)
    train, data = w / "train.csv", w / f"score-{a.rows}.csv"
    model = w / (f"model-boosted-{a.boost_rounds}x{a.boost_depth}" if a.boost_rounds else "model")
    kind = (["--model", "boosted", "--no-search", "--boost-rounds", a.boost_rounds,
             "--boost-max-depth", a.boost_depth] if a.boost_rounds else [])
    if not train.exists():
        run(BIN / "examples/synth", "--rows", a.train_rows, "--output", train, "--seed", 42)
    if not data.exists():
        run(BIN / "examples/synth", "--rows", a.rows, "--output", data, "--seed", 43)
    run(BIN / "churn-train", "--data", train, "--label", "churned", "--id", "customer_id", *kind,
        "--out", model, "--quiet")
    duck_sql, pg_sql = w / "duck.sql", w / "pg.sql"
    run(BIN / "churn-train", "export-sql", "--model", model, "--dialect", "duckdb", "--output", duck_sql)
    run(BIN / "churn-train", "export-sql", "--model", model, "--dialect", "postgres", "--table", "bench.customers", "--output", pg_sql)
    print(open(duck_sql).readline().strip())

    # DuckDB: the table loaded with typed columns (as in a warehouse), then the query alone
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    t_duck_load = best(lambda: con.execute(f"CREATE OR REPLACE TABLE customers AS FROM read_csv('{data}')"), 1)
    q = open(duck_sql).read()
    columns = [d[0] for d in con.execute(f"SELECT * FROM ({q}) LIMIT 0").description]

    native_out = w / "native.csv"
    # exactly the columns the SQL computes (probability, interval, segment, class, stage, band, ...):
    # churn-score then skips what SQL cannot do (reasons, levers, recommendations)
    t_native = best(lambda: run(BIN / "churn-score", "--model", model, "--input", data, "--output", native_out,
                                "--columns", ",".join(columns)),
                    a.repeat)
    with open(native_out) as f:
        rows = csv.reader(f)
        ci = next(rows).index("churn_probability")
        native = {r[0]: float(r[ci]) for r in rows}

    t_duck = best(lambda: con.execute(f"CREATE OR REPLACE TABLE scores AS {q}"), a.repeat)
    duck = dict(con.execute("SELECT customer_id, churn_probability FROM scores").fetchall())

    engines = [("DuckDB", duck)]
    if a.no_postgres:
        report(a, native, engines, t_native, t_duck_load, t_duck, None)
        return
    # PostgreSQL: a database of its own, text columns loaded with COPY, then the query alone
    db = f"churn_sql_bench_{os.getpid()}"
    psql("postgres", "-c", f"CREATE DATABASE {db}")
    try:
        header = open(data).readline().strip().split(",")
        cols = ", ".join(f'"{c}" TEXT' for c in header)
        psql(db, "-c", f"CREATE SCHEMA bench; CREATE TABLE bench.customers ({cols})")
        t = time.perf_counter()
        psql(db, "-c", f"\\copy bench.customers FROM '{data}' WITH (FORMAT csv, HEADER true)")
        t_pg_load = time.perf_counter() - t
        pq = open(pg_sql).read()
        script = w / "pg_create.sql"
        script.write_text(f"DROP TABLE IF EXISTS bench.scores;\nCREATE TABLE bench.scores AS\n{pq};\n")
        t_pg = best(lambda: psql(db, "-f", script), a.repeat)
        out = psql(db, "-c", "COPY (SELECT customer_id, churn_probability FROM bench.scores) TO STDOUT WITH (FORMAT csv)").stdout
        pg = {r[0]: float(r[1]) for r in csv.reader(out.splitlines())}
    finally:
        psql("postgres", "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    engines.append(("PostgreSQL", pg))
    report(a, native, engines, t_native, t_duck_load, t_duck, (t_pg_load, t_pg))


def report(a, native, engines, t_native, t_duck_load, t_duck, pg_times):
    for name, got in engines:
        same = sum(1 for k, v in native.items() if k in got and got[k].hex() == v.hex())
        print(f"{name}: {same} of {len(native)} probabilities bit-identical to churn-score")
        if same != len(native):
            sys.exit(f"{name} differs from churn-score")
    print(f"rows {a.rows}; best of {a.repeat}")
    print(f"churn-score (read CSV, score the same columns, write CSV, process) {t_native:7.2f} s")
    print(f"DuckDB  load CSV {t_duck_load:6.2f} s, query → table {t_duck:6.2f} s ({t_duck / t_native:.2f}× churn-score)")
    if pg_times:
        t_pg_load, t_pg = pg_times
        print(f"PostgreSQL COPY  {t_pg_load:6.2f} s, query → table {t_pg:6.2f} s ({t_pg / t_native:.2f}× churn-score)")


if __name__ == "__main__":
    main()
