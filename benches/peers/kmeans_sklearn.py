#!/usr/bin/env python3
"""k-means fit on 1M × 4 (blobs + noise, seeded): churn's segment::kmeans (linfa-clustering)
beside sklearn KMeans(n_init=1), same data, same k, one run each, in one process run.

Target (issue 4): churn time <= 1.0x sklearn's, SSE within 1%.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

ROOT = Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=4)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = ROOT / "target/release/examples/kmeans_fit"
    if not exe.exists():
        sys.exit("build it first: cargo build --release --example kmeans_fit")
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, size=(args.k, args.dims))
    x = centers[rng.integers(0, args.k, args.rows)] + rng.normal(0, 1.5, size=(args.rows, args.dims))
    x = np.ascontiguousarray(x, dtype="<f8")
    sk_t, sk_sse, ch_t, ch_sse = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "x.f64"
        x.tofile(f)
        for r in range(args.repeat):
            t = time.perf_counter()
            km = KMeans(n_clusters=args.k, n_init=1, max_iter=300, tol=1e-4, random_state=r).fit(x)
            sk_t.append(time.perf_counter() - t)
            sk_sse.append(float(km.inertia_))
            out = subprocess.run([exe, f, str(args.rows), str(args.dims), str(args.k)],
                                 capture_output=True, text=True, check=True)
            res = json.loads(out.stdout)
            ch_t.append(res["fit_seconds"])
            ch_sse.append(res["sse"])
    print(f"sklearn KMeans(n_init=1): best {min(sk_t):.3f} s, SSE {min(sk_sse):.1f}")
    print(f"churn (linfa-clustering): best {min(ch_t):.3f} s, SSE {min(ch_sse):.1f}")
    print(f"time ratio churn/sklearn = {min(ch_t) / min(sk_t):.2f} (target <= 1.0); "
          f"SSE ratio = {min(ch_sse) / min(sk_sse):.4f} (target within 1%)")


if __name__ == "__main__":
    main()
