"""Benchmark: CDR validation + usage aggregation at 1M, 4M and 16M events (local Spark, 2 cores).

    .venv/bin/python benchmarks/bench_etl.py [--sizes 1000000 4000000 16000000] [--repeats 3 3 1]

What is measured, per size:
  * input: newline-delimited JSON CDRs written by etl.cdr_generator (the real
    Firehose format, 7,043 subscribers, 30 days, seed 7, 0.001% malformed lines), generated
    once and cached under build/bench/cdr_<rows>/ (generation time reported separately);
  * timed work = exactly what the features job does with CDRs: cdr_usage.compute_usage
    (JSON parse, validation, status counts, per-subscriber dedupe + aggregation, hashing)
    followed by materialising the CDR quarantine (a noop write, which re-reads the input);
  * each size runs in a fresh Python process with a fresh Spark JVM (local[2], 4 GB
    driver), so peak memory is per size: the VmHWM (peak RSS, from /proc/<pid>/status) of
    the Spark driver JVM and of the Python driver process. The JVM figure mostly reflects
    how far the 4 GB heap was allowed to grow before collection, not the minimum the job
    needs. Small sizes are repeated and the median is quoted.
Results: a table on stdout and build/bench/etl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "bench"
N_SUBSCRIBERS = 7043
DAYS = 30
SEED = 7
AS_OF = date(2026, 1, 1)


def _data_dir(rows: int) -> Path:
    return OUT / f"cdr_{rows}"


def ensure_data(rows: int) -> dict:
    sys.path.insert(0, str(REPO))
    from etl.cdr_generator import generate

    target = _data_dir(rows)
    stamp = target / "_generated.json"
    malformed = max(1, rows // 100_000)
    params = {"rows": rows, "malformed": malformed, "subscribers": N_SUBSCRIBERS, "days": DAYS, "seed": SEED}
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        return json.loads(stamp.read_text())
    if target.exists():
        for p in sorted(target.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    t0 = time.perf_counter()
    generate([str(i) for i in range(1, N_SUBSCRIBERS + 1)], rows, DAYS, date(2025, 12, 31), SEED,
             target, malformed=malformed)
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in target.rglob("*.json"))
    info = {"params": params, "generate_seconds": round(seconds, 2), "bytes": size}
    stamp.write_text(json.dumps(info))
    return info


def _vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def worker(rows: int, repeats: int) -> dict:
    """Runs inside a fresh process: time compute_usage `repeats` times, report peaks."""
    sys.path.insert(0, str(REPO))
    from etl.cdr_usage import compute_usage
    from etl.pseudonymise import DEV_PSEUDONYMISATION_KEY
    from etl.spark_session import local_spark

    spark = local_spark("bench-etl", cores=2, shuffle_partitions=8, driver_memory="4g")
    jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # type: ignore[union-attr]
    times, counts = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = compute_usage(spark, str(_data_dir(rows)), AS_OF, DAYS, DEV_PSEUDONYMISATION_KEY)
        res.quarantined.write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - t0)
        counts = res.counts
        res.release()
    out = {
        "rows": rows, "repeats": repeats, "seconds": [round(t, 3) for t in times],
        "jvm_peak_rss_mib": round(_vm_hwm_kib(jvm_pid) / 1024, 1),
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so it would report the
        # parent's peak (which generated the data) instead of this worker's.
        "python_peak_rss_mib": round(_vm_hwm_kib(os.getpid()) / 1024, 1),
        "counts": counts,
    }
    spark.stop()
    return out


def run_size(rows: int, repeats: int) -> dict:
    """Generate (or reuse) the input for one size and time it in a fresh worker process."""
    gen = ensure_data(rows)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(rows), "--repeats", str(repeats)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"worker for {rows} rows failed (exit {proc.returncode})")
    res = json.loads(line.removeprefix("RESULT "))
    res["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    med = statistics.median(res["seconds"])
    res.update({
        "median_seconds": round(med, 3),
        "rows_per_second": round(rows / med),
        "input_bytes": gen["bytes"],
        "generate_seconds": gen["generate_seconds"],
        "generate_rows_per_second": round(rows / gen["generate_seconds"]) if gen["generate_seconds"] else None,
    })
    print(f"  {rows:>11,} rows: median {med:7.2f} s  ({res['seconds']})", flush=True)
    return res


def verdict(results: list[dict]) -> tuple[bool, str]:
    """Scaling verdict; sets each result's throughput relative to the smallest size."""
    base = results[0]
    for r in results:
        r["throughput_vs_smallest"] = round(r["rows_per_second"] / base["rows_per_second"], 2)
    worst = min(r["throughput_vs_smallest"] for r in results)
    linear = worst >= 0.7
    text = (f"near-linear: throughput at the largest size is {results[-1]['throughput_vs_smallest']:.2f}x "
            f"that of the smallest (worst {worst:.2f}x; >= 0.70 counts as near-linear)"
            if linear else f"NOT near-linear: throughput drops to {worst:.2f}x of the smallest size")
    return linear, text


def print_table(results: list[dict]) -> None:
    print()
    print(f"{'rows':>12} {'runs':>4} {'median s':>9} {'rows/s':>10} {'vs 1st':>6} {'JVM peak MiB':>12} "
          f"{'Py peak MiB':>11} {'input MiB':>9} {'gen s':>6}")
    for r in results:
        print(f"{r['rows']:>12,} {r['repeats']:>4} {r['median_seconds']:>9.2f} {r['rows_per_second']:>10,} "
              f"{r['throughput_vs_smallest']:>6.2f} {r['jvm_peak_rss_mib']:>12,.0f} {r['python_peak_rss_mib']:>11,.0f} "
              f"{r['input_bytes'] / 2**20:>9,.0f} {r['generate_seconds']:>6.1f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    p.add_argument("--repeats", type=int, nargs="+", default=[3, 3, 1])
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.repeats[0])))
        return 0
    if len(args.repeats) != len(args.sizes):
        p.error("--repeats needs one value per size")

    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = [run_size(rows, repeats) for rows, repeats in zip(args.sizes, args.repeats, strict=True)]
    linear, text = verdict(results)
    print_table(results)
    print(text)
    report = {
        "benchmark": "cdr_usage.compute_usage + CDR quarantine materialisation",
        "machine": {"cpus": os.cpu_count(), "spark_master": "local[2]", "driver_memory": "4g",
                    "shuffle_partitions": 8,
                    "note": "shared machine: other processes may compete for the 2 cores; "
                            "see load_average_1m_after per size"},
        "input": "newline-delimited JSON CDRs from cdr_generator (7,043 subscribers, 30 days, seed 7)",
        "results": results,
        "near_linear": linear,
        "verdict": text,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    (OUT / "etl.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT / 'etl.json'} ({report['total_seconds']} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
