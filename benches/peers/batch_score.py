#!/usr/bin/env python3
"""Batch scoring end to end: churn-score vs a pandas + scikit-learn script, both timed as processes.

synth writes a training table (--train-rows, seed 42) and a table to score (--rows, seed 43),
default shape 16 numeric + 4 categorical, into --workdir (kept until synth is rebuilt).
Untimed, each side trains a depth-8, min-leaf-50 tree on the training table: score_pandas.py
train (sklearn DecisionTreeClassifier, joblib) and churn-train --no-search --holdout 0
--no-segments (default learner).
Timed, best of --repeat, alternating the two:
  peer  score_pandas.py score: read_parquet, one-hot aligned to the training columns,
        predict_proba, write Parquet (customer_id, churn_probability); process wall clock
        including interpreter start and imports, plus its own in-process time
  ours  churn-score --model DIR --input FILE --output ours.parquet --quiet; process wall clock
        (it writes more columns: interval, risk band, action, ...)
Peak RSS per process from /usr/bin/time -v (else wait4 in a small helper). Ratio = peer wall /
our wall (target >= 3). Both outputs are then checked for row count and ROC-AUC on the labels.

Needs `cargo build --release --bins --example synth` and benches/peers/setup.sh. Run:
  benches/peers/.venv/bin/python benches/peers/batch_score.py                 # 1M rows
  benches/peers/.venv/bin/python benches/peers/batch_score.py --rows 50000 --repeat 2
"""
import synthdata  # benches/peers/synthdata.py (the script directory is on sys.path)
import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
BIN = HERE.parents[1] / "target/release"
GNU_TIME = shutil.which("time", path="/usr/bin")
ID, LABEL = "customer_id", "churned"


# Without /usr/bin/time: a fresh, small interpreter spawns the command and reports its wait4 peak
# RSS (wait4 from this process would report at least our own RSS: the mark survives fork + exec).
WAIT4 = ("import os, sys\n"
         "pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)\n"
         "_, st, ru = os.wait4(pid, 0)\n"
         "print(f'Maximum resident set size (kbytes): {ru.ru_maxrss}', file=sys.stderr)\n"
         "sys.exit(os.waitstatus_to_exitcode(st))\n")
WRAP = [GNU_TIME, "-v"] if GNU_TIME else [sys.executable, "-S", "-c", WAIT4]


def measure(cmd):
    """Run cmd; return (wall seconds, peak RSS MiB, stdout). Exits on failure."""
    cmd = [str(c) for c in cmd]
    t = time.perf_counter()
    p = subprocess.run(WRAP + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return wall, rss_kib / 1024, p.stdout


def synth(workdir, rows, numeric, categorical, seed):
    return synthdata.synth(workdir, rows, numeric, categorical, seed, measure)


def check(path, labels):
    s = pd.read_parquet(path, columns=[ID, "churn_probability"]).merge(labels, on=ID)
    return len(s), roc_auc_score(s[LABEL], s["churn_probability"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to score (default 1000000)")
    ap.add_argument("--train-rows", type=int, default=100_000,
                    help="training rows, untimed (default 100000)")
    ap.add_argument("--numeric", type=int, default=16, help="synth numeric columns (default 16)")
    ap.add_argument("--categorical", type=int, default=4,
                    help="synth categorical columns 0-4 (default 4)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs of each, best kept (default 3)")
    ap.add_argument("--score-threads", type=int,
                    help="churn-score --threads (default: not passed, i.e. all cores)")
    ap.add_argument("--workdir", default="/tmp/churn-peers",
                    help="data, models and outputs, reused between runs (default /tmp/churn-peers)")
    ap.add_argument("--no-contrib", action="store_true",
                    help="boosted: skip the LightGBM pred_contrib side (~1.3 ms per row)")
    ap.add_argument("--no-full", action="store_true",
                    help="skip churn-score's full output (boosted: TreeSHAP reasons and levers "
                         "for every row); compare the id + probability output only")
    ap.add_argument("--boosted-rounds", type=int, default=0,
                    help="both sides fit boosted trees of this many rounds (depth 6, learning "
                         "rate 0.1): LightGBM for the peer, churn-train --model boosted for us")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    for exe in (BIN / "churn-train", BIN / "churn-score", BIN / "examples/synth"):
        if not exe.exists():
            sys.exit(f"missing {exe}: cargo build --release --bins --example synth")

    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    train = synth(wd, args.train_rows, args.numeric, args.categorical, 42)
    test = synth(wd, args.rows, args.numeric, args.categorical, 43)
    py, peer_script = sys.executable, HERE / "score_pandas.py"
    kind = f"lgbm{args.boosted_rounds}" if args.boosted_rounds else "tree"
    peer_model = wd / f"peer_{kind}_{args.train_rows}.joblib"
    model_dir = wd / f"model_batch_{kind}"
    peer_out, our_out, lean_out = wd / "peer.parquet", wd / "ours.parquet", wd / "ours_lean.parquet"

    print(f"training both on {train.name} (untimed)", file=sys.stderr)
    b = args.boosted_rounds
    measure([py, peer_script, "train", "--data", train, "--model", peer_model,
             "--max-depth", 6 if b else 8, "--min-samples-leaf", 20 if b else 50,
             "--rounds", b])
    shutil.rmtree(model_dir, ignore_errors=True)
    shape = (["--model", "boosted", "--boost-rounds", b, "--boost-max-depth", 6,
              "--boost-learning-rate", 0.1] if b else
             ["--model", "tree", "--max-depth", 8, "--min-samples-leaf", 50])
    measure([BIN / "churn-train", "--data", train, "--label", LABEL, "--id", ID, "--no-search",
             *shape, "--holdout", 0, "--no-segments", "--quiet", "--out", model_dir])

    peer_cmd = [py, peer_script, "score", "--model", peer_model, "--input", test,
                "--output", peer_out]
    our_cmd = [BIN / "churn-score", "--model", model_dir, "--input", test, "--output", our_out,
               "--quiet"] + (["--threads", args.score_threads] if args.score_threads else [])
    # same output as the peer: id + probability (skips segments and recommendations)
    lean_cmd = [BIN / "churn-score", "--model", model_dir, "--input", test, "--output", lean_out,
                "--columns", f"{ID},churn_probability", "--quiet"] + (
                    ["--threads", args.score_threads] if args.score_threads else [])
    cmds = {"peer": peer_cmd, "ours": our_cmd, "lean": lean_cmd}
    if b and not args.no_contrib:  # boosted: the peer with reasons too (LightGBM pred_contrib)
        cmds["peer_shap"] = peer_cmd[:-1] + [wd / "peer_shap.parquet", "--contrib"]
    if args.no_full:
        del cmds["ours"]
    runs = {k: [] for k in cmds}
    for r in range(args.repeat):
        order = tuple(cmds) if r % 2 == 0 else tuple(reversed(cmds))
        for side in order:
            wall, rss, out = measure(cmds[side])
            inproc = json.loads(out.strip().splitlines()[-1]) if side.startswith("peer") else None
            runs[side].append(dict(wall_s=wall, peak_rss_mib=rss, in_process=inproc))
            print(f"  run {r + 1} {side}: {wall:.3f} s, {rss:.0f} MiB"
                  + (f", in-process {inproc['in_process_s']:.3f} s" if inproc else ""),
                  file=sys.stderr)

    labels = pd.read_parquet(test, columns=[ID, LABEL])
    best = {k: min(v, key=lambda x: x["wall_s"]) for k, v in runs.items()}
    rows_auc = {"peer": check(peer_out, labels), "lean": check(lean_out, labels)}
    if "ours" in runs:
        rows_auc["ours"] = check(our_out, labels)
    ratio = best["peer"]["wall_s"] / best["ours"]["wall_s"] if "ours" in runs else float("nan")
    ratio_lean = best["peer"]["wall_s"] / best["lean"]["wall_s"]
    ip = min((x["in_process"] for x in runs["peer"]), key=lambda x: x["in_process_s"])

    print(f"\nbatch scoring {args.rows:,} rows ({test.name}), best of {args.repeat}, "
          f"process wall clock; RSS = max over runs")
    print(f"{'':28} {'wall s':>8} {'peak RSS':>10} {'rows out':>10} {'AUC':>7}")
    peer_name = "pandas + LightGBM (process)" if b else "pandas + sklearn (process)"
    sides = [("peer", peer_name), ("ours", "churn-score, all columns"),
             ("lean", "churn-score --columns id,p")]
    if "peer_shap" in runs:
        sides.insert(1, ("peer_shap", "LightGBM + pred_contrib"))
        rows_auc["peer_shap"] = check(wd / "peer_shap.parquet", labels)
    for side, name in [x for x in sides if x[0] in runs]:
        rss = max(x["peak_rss_mib"] for x in runs[side])
        n, auc = rows_auc[side]
        print(f"{name:<28} {best[side]['wall_s']:8.3f} {rss:7.0f} MiB {n:>10,} {auc:7.4f}")
    print(f"{'peer in-process (best)':<28} {ip['in_process_s']:8.3f}   (read "
          f"{ip['read_s']:.3f}, encode {ip['encode_s']:.3f}, predict {ip['predict_s']:.3f}, "
          f"write {ip['write_s']:.3f})")
    print(f"ratio peer wall / our wall = {ratio_lean:.2f}x with the peer's output (id + probability), "
          f"{ratio:.2f}x with all 13 columns (target >= 3); peer in-process / our lean wall = "
          f"{ip['in_process_s'] / best['lean']['wall_s']:.2f}x")
    if "peer_shap" in runs:
        print(f"with reasons on both sides (LightGBM pred_contrib top 3 vs churn-score's full "
              f"output): {best['peer_shap']['wall_s'] / best['ours']['wall_s']:.2f}x")
    if args.json:
        meta = {k: v for k, v in vars(args).items() if k != "json"}
        Path(args.json).write_text(json.dumps(dict(
            args=meta, rss_source="/usr/bin/time -v" if GNU_TIME else "wait4 in a helper",
            runs=runs,
            best=best, peer_best_in_process=ip,
            check={k: dict(rows=n, auc=a) for k, (n, a) in rows_auc.items()},
            ratio_peer_over_ours=ratio, ratio_peer_over_ours_same_columns=ratio_lean), indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
