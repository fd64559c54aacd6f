"""Serving benchmark: the handler on its own next to the local endpoint server called through boto3.

    .venv/bin/python benchmarks/bench_serving.py [--package model.tar.gz] [--requests 1000] [--repeats 3]
        [--clients 4] [--out build/bench/serving.json]

Package: --package, else the PyTorch package of the twin run that benchmarks/bench_ml.py leaves in
build/bench/twin (run that first). Records: the first 2,000 real IBM Telco subscribers (the schema's source).
Measured, each as the median of --repeats runs:
  handler   benchmarks/bench_ml.py's handler_bench, unchanged: single-record JSON latency p50/p99 (model_fn's
            model called in-process, no HTTP), batch rows/s for 10,000-record JSON and CSV requests;
  server    twin.endpoint_server on the loopback interface with data capture on (100 %, as the cloud
            endpoints capture), called through boto3 sagemaker-runtime invoke_endpoint:
            single-record JSON latency p50/p99 (one client, --requests sequential requests on one kept-alive
            connection; timed from the call to the last byte of the body read), requests/s with one client
            and with --clients concurrent clients (one boto3 client per thread, the server one thread per
            connection), and rows/s for 1,000-record JSON requests.
The load average before and after is kept: on a busy machine every figure is lower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ml import SCHEMA, handler_bench  # noqa: E402

from twin.endpoint_server import start_local_endpoint  # noqa: E402

ENDPOINT = "telecom-ml-bench-churn"


def real_records(n: int) -> list[dict[str, Any]]:
    from dataset.schema import load_schema
    from dataset.sources import load_source

    schema = load_schema(SCHEMA)
    frame = load_source(schema)[schema.raw_feature_columns].head(n)
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]


def runtime(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=4),
    )


def _call(client: Any, body: str) -> None:
    resp = client.invoke_endpoint(
        EndpointName=ENDPOINT, Body=body, ContentType="application/json", Accept="application/json"
    )
    resp["Body"].read()


def sequential(url: str, bodies: list[str], requests: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) of one client sending `requests` single-record requests."""
    client = runtime(url)
    for body in bodies[:20]:  # connection and botocore caches warm
        _call(client, body)
    times = []
    t_all = time.perf_counter()
    for i in range(requests):
        t = time.perf_counter()
        _call(client, bodies[i % len(bodies)])
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - t_all
    return float(np.percentile(times, 50)) * 1e3, float(np.percentile(times, 99)) * 1e3, requests / wall


def concurrent(url: str, bodies: list[str], requests: int, clients: int) -> float:
    """Requests/s of `clients` threads, each with its own boto3 client, `requests` in all."""
    per = requests // clients
    made = [runtime(url) for _ in range(clients)]
    for c in made:
        _call(c, bodies[0])
    start = threading.Barrier(clients + 1)

    def work(k: int) -> None:
        start.wait()
        for i in range(per):
            _call(made[k], bodies[(k * per + i) % len(bodies)])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return per * clients / (time.perf_counter() - t0)


def batch_rows(url: str, records: list[dict[str, Any]], rows: int) -> float:
    client = runtime(url)
    body = json.dumps({"instances": (records * (rows // len(records) + 1))[:rows]})
    _call(client, body)
    t = time.perf_counter()
    _call(client, body)
    return rows / (time.perf_counter() - t)


def server_bench(
    package: Path, records: list[dict[str, Any]], requests: int, repeats: int, clients: int
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    server = start_local_endpoint(package, work, ENDPOINT, capture_root=work / "data-capture")
    bodies = [json.dumps(r) for r in records[:200]]
    runs: dict[str, list[float]] = {"p50": [], "p99": [], "rps_1": [], "rps_n": [], "batch": []}
    try:
        for k in range(repeats):
            p50, p99, rps = sequential(server.url, bodies, requests)
            runs["p50"].append(p50)
            runs["p99"].append(p99)
            runs["rps_1"].append(rps)
            runs["rps_n"].append(concurrent(server.url, bodies, requests, clients))
            runs["batch"].append(batch_rows(server.url, records, 1000))
            print(
                f"  server run {k + 1}/{repeats}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {rps:,.0f} req/s "
                f"(1 client), {runs['rps_n'][-1]:,.0f} req/s ({clients} clients), "
                f"{runs['batch'][-1]:,.0f} rows/s (1,000-record requests)",
                flush=True,
            )
    finally:
        server.stop()
    captured = server.httpd.endpoints[ENDPOINT].capture
    return {
        "single_json_p50_ms": statistics.median(runs["p50"]),
        "single_json_p99_ms": statistics.median(runs["p99"]),
        "single_json_p99_ms_runs": runs["p99"],
        "requests_per_s_1_client": statistics.median(runs["rps_1"]),
        f"requests_per_s_{clients}_clients": statistics.median(runs["rps_n"]),
        "batch_1000_rows_per_s": statistics.median(runs["batch"]),
        "clients": clients,
        "requests_per_run": requests,
        "repeats": repeats,
        "data_capture": "on, 100 %",
        "captured_invocations": captured.captured if captured else 0,
    }


def default_package() -> Path:
    summary = ROOT / "build" / "bench" / "twin" / "summary.json"
    if not summary.is_file():
        raise SystemExit(f"{summary} not found: run benchmarks/bench_ml.py first, or pass --package")
    return Path(json.loads(summary.read_text())["artefacts"]["packages"]["pytorch"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", type=Path, help="model.tar.gz (default: the bench twin run's PyTorch package)")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "serving.json")
    args = ap.parse_args(argv)
    if args.requests < args.clients or args.repeats < 1 or args.clients < 1:
        ap.error("--requests must be >= --clients >= 1 and --repeats >= 1")
    package = args.package or default_package()
    if not package.is_file():
        ap.error(f"--package {package}: file not found")
    records = real_records(2000)
    load_before = os.getloadavg()
    print("handler (in-process) …", flush=True)
    handler = handler_bench(package, records, args.requests, args.repeats)
    print("local endpoint server through boto3 …", flush=True)
    server = server_bench(package, records, args.requests, args.repeats, args.clients)
    result = {
        "package": str(package),
        "handler": handler,
        "server": server,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True))
    print_table(result)
    print(f"wrote {args.out}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    h, s = r["handler"], r["server"]
    t = Table(title=f"Serving benchmark (medians of {s['repeats']} runs)")
    for c in ("measure", "handler (in-process)", "local server via boto3"):
        t.add_column(c)
    t.add_row(
        "single JSON record p50 / p99 (ms)",
        f"{h['single_json_p50_ms']:.3f} / {h['single_json_p99_ms']:.3f}",
        f"{s['single_json_p50_ms']:.3f} / {s['single_json_p99_ms']:.3f}",
    )
    t.add_row(
        "single-record requests/s, 1 client",
        f"{1e3 / h['single_json_p50_ms']:,.0f} (1 / p50)",
        f"{s['requests_per_s_1_client']:,.0f}",
    )
    n = s["clients"]
    t.add_row(f"single-record requests/s, {n} clients", "", f"{s[f'requests_per_s_{n}_clients']:,.0f}")
    t.add_row(
        "batch rows/s (JSON)",
        f"{h['batch_json_rows_per_s']:,.0f} (10,000-record requests)",
        f"{s['batch_1000_rows_per_s']:,.0f} (1,000-record requests)",
    )
    t.add_row(
        "load average before / after",
        f"{r['machine']['load_average_before'][0]:.1f}",
        f"{r['machine']['load_average_after'][0]:.1f}",
    )
    Console(width=120).print(t)


if __name__ == "__main__":
    sys.exit(main())
