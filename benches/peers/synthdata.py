"""Shared helper of the peer scripts: write (or reuse) a synth Parquet file with the `synth` example."""
from pathlib import Path

BIN = Path(__file__).resolve().parents[2] / "target" / "release"


def synth(workdir, rows, numeric, categorical, seed, run):
    """Path of the synth table; generated with `run(cmd)` under a temporary name, then renamed.
    Regenerated when the synth binary is newer than the file (its output may have changed)."""
    path = Path(workdir) / f"synth_n{rows}_k{numeric}_c{categorical}_s{seed}.parquet"
    exe = BIN / "examples/synth"
    if not path.exists() or path.stat().st_mtime < exe.stat().st_mtime:
        tmp = path.with_suffix(".tmp.parquet")
        run([exe, "--rows", rows, "--numeric", numeric,
             "--categorical", categorical, "--seed", seed, "--output", tmp])
        tmp.rename(path)
    return path
