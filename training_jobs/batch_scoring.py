"""Batch scoring of the whole subscriber base: the two Processing steps around a Batch Transform.

    python -m training_jobs.batch_scoring prepare --features D --schema F --output-dir D
        [--snapshot-date YYYY-MM-DD] [--scoring-date YYYY-MM-DD] [--shard-rows N]
        [--model-package-arn ARN] [--champion-package-arn ARN|none] [--model-package-group G]
        [--model-type xgboost|pytorch] [--champion-model-type T]
        [--pytorch-instance-type T --xgboost-instance-type T]
    python -m training_jobs.batch_scoring publish --ids D --predictions D --scoring D --output-dir D
        [--scored-at ISO8601]

prepare: the feature table (Parquet or CSV; a table location with snapshot_date=YYYY-MM-DD partitions
  is narrowed to --snapshot-date or the latest one) -> under --output-dir:
    requests/requests-NNNNN.jsonl  one JSON object per line, exactly the handler's raw feature fields
                                   (application/jsonlines: what the transform sends, SplitType=Line)
    ids/ids-NNNNN.csv              the subscriber id of each request line, same shard, same order
    scoring/scoring.json           the run's decisions (the pipeline's property file): which model
                                   package scores (--model-package-arn, else the champion, else none:
                                   has_package "false"), its version and model type, the transform
                                   instance type for that type, snapshot and scoring dates, rows
publish: transform output (requests-NNNNN.jsonl.out: one prediction JSON object per line, in request
  order) joined back to the ids -> --output-dir/scores.parquet, the rows of one scoring_date partition
  of the scores table: subscriber id, probability, label, rank (1 = most likely to churn), decile
  (1 = the top 10%), model package ARN/group/version, snapshot_date, scored_at.
  A shard without its output, a line count that differs, or a line that is not a prediction is an
  error naming the file and the line number; nothing is written then.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset.schema import SchemaError, load_schema
from dataset.scores_table import SCORE_COLUMNS
from dataset.scores_table import SCORES_PARTITION as SCORES_PARTITION  # the partition the job writes under
from training_jobs.artifacts import write_json
from training_jobs.errors import JobError
from training_jobs.runner import run_job
from training_jobs.splits import normalise_features, read_table

PROCESSING = "/opt/ml/processing"
PARTITION = "snapshot_date"
REQUESTS_DIR, IDS_DIR, SCORING_DIR = "requests", "ids", "scoring"
SCORING_FILE = "scoring.json"
SCORES_FILE = "scores.parquet"
# SageMaker Batch Transform names each output object after its input object.
TRANSFORM_SUFFIX = ".out"
NO_PACKAGE = "none"
MODEL_TYPES = ("xgboost", "pytorch")
# arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>
PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})"
    r"/(?P<version>[1-9]\d*)$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PARTITION_DIR = re.compile(rf"^{PARTITION}=(\d{{4}}-\d{{2}}-\d{{2}})$")


def transform_environment(max_payload_mb: int) -> dict[str, str]:
    """What the transform sets in the serving container: a mini-batch holds as many records as fit in
    MaxPayloadInMB, so the handler's per-request record cap (meant for real-time callers) is lifted to
    what that payload can hold; the payload cap still bounds one request."""
    payload = max_payload_mb * 1024 * 1024
    return {"CHURN_MAX_RECORDS": str(payload), "CHURN_MAX_PAYLOAD_BYTES": str(payload)}


# ----------------------------------------------------------------------------------------- package
@dataclass(frozen=True)
class ModelPackage:
    arn: str
    group: str
    version: int


def parse_package_arn(arn: str, where: str, group: str | None = None) -> ModelPackage:
    """A versioned model package ARN (of `group` when given), or a JobError naming `where`."""
    match = PACKAGE_ARN.match(arn)
    if match is None:
        raise JobError(
            f"{where}: {arn!r} is not a versioned model package ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    if group and match["group"] != group:
        raise JobError(f"{where}: {arn} belongs to group {match['group']!r}, not {group!r}")
    return ModelPackage(arn, match["group"], int(match["version"]))


def choose_package(given: str, champion: str, group: str | None) -> ModelPackage | None:
    """The package that scores: the one given (the deployer passes the package it deployed), else the
    champion ChampionLookup found, else None (no approved package yet)."""
    if given.strip():
        return parse_package_arn(given.strip(), "--model-package-arn", group)
    if champion.strip() and champion.strip() != NO_PACKAGE:
        return parse_package_arn(champion.strip(), "--champion-package-arn", group)
    return None


def model_type_of(package: ModelPackage, args: argparse.Namespace) -> str:
    """The package's model type: the champion's when it is the champion, else --model-type (a package the
    registry no longer ranks first, e.g. a rollback, cannot be typed from inside the job)."""
    champion = args.champion_package_arn.strip()
    model_type = args.champion_model_type if package.arn == champion else args.model_type
    if model_type not in MODEL_TYPES:
        raise JobError(
            f"--model-type: {package.arn} is not the champion ({champion or NO_PACKAGE}); say which model it "
            f"holds with one of {list(MODEL_TYPES)} (pipeline parameter ModelType), got {model_type!r}"
        )
    return str(model_type)


# ----------------------------------------------------------------------------------------- prepare
def _date(value: str, flag: str) -> str:
    if not _DATE.match(value):
        raise JobError(f"{flag}: expected YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise JobError(f"{flag}: {value!r} is not a calendar date") from None


def snapshot_input(features: Path, requested: str) -> tuple[Path, str]:
    """(what to read, its snapshot date). A table location is narrowed to one snapshot_date partition."""
    if not features.exists():
        raise JobError(f"{features}: feature table not found")
    partitions = {}
    if features.is_dir():
        partitions = {m[1]: p for p in features.iterdir() if p.is_dir() and (m := _PARTITION_DIR.match(p.name))}
    if partitions:
        date = requested or max(partitions)
        if date not in partitions:
            raise JobError(f"{features}: no partition {PARTITION}={date} (found {', '.join(sorted(partitions))})")
        return partitions[date], date
    in_path = [m[1] for part in features.parts if (m := _PARTITION_DIR.match(part))]
    if in_path and requested and in_path[-1] != requested:
        raise JobError(f"{features}: is partition {PARTITION}={in_path[-1]}, but --snapshot-date is {requested}")
    date = requested or (in_path[-1] if in_path else "")
    if not date:
        raise JobError(
            f"{features}: cannot tell the snapshot date; pass --snapshot-date or point at a "
            f"{PARTITION}=YYYY-MM-DD partition"
        )
    return features, date


def request_lines(frame: pd.DataFrame, fields: list[str]) -> list[str]:
    """One compact JSON object per record with exactly `fields` (missing numbers as null)."""
    lines = []
    for record in frame[fields].to_dict(orient="records"):
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        lines.append(json.dumps(clean, separators=(",", ":"), allow_nan=False))
    return lines


def shard_name(index: int) -> str:
    return f"{index:05d}"


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    package = choose_package(args.model_package_arn, args.champion_package_arn, args.model_package_group)
    if package is not None:
        model_type_of(package, args)  # before any data work: a bad request fails fast
    snapshot_date = _date(args.snapshot_date, "--snapshot-date") if args.snapshot_date else ""
    scoring_date = (
        _date(args.scoring_date, "--scoring-date") if args.scoring_date else dt.datetime.now(dt.UTC).date().isoformat()
    )
    source, snapshot_date = snapshot_input(Path(args.features), snapshot_date)
    raw = read_table(source)
    if raw.empty:
        raise JobError(f"{source}: feature table has no rows")
    frame = normalise_features(raw, schema, str(source))
    ids = frame[schema.id_column]
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise JobError(
            f"{source}: subscriber id {duplicated.iloc[0]!r} appears more than once "
            f"({int(ids.duplicated().sum())} duplicate rows); one score per subscriber"
        )
    out = Path(args.output_dir)
    lines = request_lines(frame, schema.raw_feature_columns)
    shards = 0
    for shards, start in enumerate(range(0, len(lines), args.shard_rows), start=1):
        name = shard_name(shards - 1)
        _write_text(out / REQUESTS_DIR / f"requests-{name}.jsonl", lines[start : start + args.shard_rows])
        id_frame = pd.DataFrame({schema.id_column: ids.iloc[start : start + args.shard_rows].to_numpy()})
        (out / IDS_DIR).mkdir(parents=True, exist_ok=True)
        id_frame.to_csv(out / IDS_DIR / f"ids-{name}.csv", index=False)
    model_type = model_type_of(package, args) if package is not None else ""
    decision = {
        "has_package": "false" if package is None else "true",
        "model_package_arn": NO_PACKAGE if package is None else package.arn,
        "model_package_group": args.model_package_group or (package.group if package else ""),
        "model_package_version": 0 if package is None else package.version,
        "model_type": model_type,
        "instance_type": getattr(args, f"{model_type}_instance_type") if model_type else "",
        "snapshot_date": snapshot_date,
        "scoring_date": scoring_date,
        "records": len(lines),
        "shards": shards,
        "id_column": schema.id_column,
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint},
    }
    write_json(out / SCORING_DIR / SCORING_FILE, decision)
    return decision


def _write_text(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# ----------------------------------------------------------------------------------------- publish
def read_predictions(path: Path) -> tuple[np.ndarray, list[str | None]]:
    """(probabilities, labels) of a transform output file, one JSON prediction per line, in request
    order; a line that is not a prediction is an error naming the file and line number."""
    probabilities, labels = [], []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            probability, label = _prediction(line, f"{path}: line {number}")
            probabilities.append(probability)
            labels.append(label)
    return np.asarray(probabilities, dtype=np.float64), labels


def _prediction(line: str, where: str) -> tuple[float, str | None]:
    text = line.strip()
    if not text:
        raise JobError(f"{where}: empty line where a prediction was expected")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(doc, dict) or "probability" not in doc:
        raise JobError(f"{where}: expected an object with 'probability', got {text[:80]!r}")
    p = doc["probability"]
    if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise JobError(f"{where}: probability must be a number in [0, 1], got {p!r}")
    label = doc.get("label")
    if label is not None and not isinstance(label, str):
        raise JobError(f"{where}: label must be text, got {label!r}")
    return float(p), label


def ranks_and_deciles(ids: pd.Series, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank 1 = the highest probability (ties by subscriber id, so a rerun ranks alike); decile 1 = the
    top tenth of ranks, 10 the bottom."""
    order = np.lexsort((ids.astype(str).to_numpy(), -probability))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    decile = np.ceil(rank * 10 / len(rank)).astype(np.int64)
    return rank, decile


def _read_scoring(path: Path) -> dict[str, Any]:
    file = path / SCORING_FILE if path.is_dir() else path
    try:
        doc = json.loads(file.read_text())
    except FileNotFoundError:
        raise JobError(f"{file}: scoring decision not found (prepare writes it)") from None
    except json.JSONDecodeError as exc:
        raise JobError(f"{file}: not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise JobError(f"{file}: expected a JSON object")
    missing = sorted({"has_package", "model_package_arn", "snapshot_date", "scoring_date", "id_column"} - set(doc))
    if missing:
        raise JobError(f"{file}: missing {missing}")
    if doc["has_package"] != "true":
        raise JobError(f"{file}: no model package scored this run; nothing to publish")
    return doc


def publish(args: argparse.Namespace) -> dict[str, Any]:
    decision = _read_scoring(Path(args.scoring))
    package = parse_package_arn(decision["model_package_arn"], f"{args.scoring}: model_package_arn")
    scoring_date = _date(decision["scoring_date"], f"{args.scoring}: scoring_date")
    snapshot_date = _date(decision["snapshot_date"], f"{args.scoring}: snapshot_date")
    id_column = decision["id_column"]
    ids_dir, predictions_dir = Path(args.ids), Path(args.predictions)
    id_files = sorted(ids_dir.glob("ids-*.csv"))
    if not id_files:
        raise JobError(f"{ids_dir}: no ids-*.csv files (prepare writes them)")
    expected = {f"requests-{f.stem.removeprefix('ids-')}.jsonl{TRANSFORM_SUFFIX}" for f in id_files}
    unexpected = sorted(p.name for p in predictions_dir.glob(f"*{TRANSFORM_SUFFIX}") if p.name not in expected)
    if unexpected:
        raise JobError(f"{predictions_dir}: transform output {unexpected} matches no ids file")
    frames = []
    for id_file in id_files:
        ids = pd.read_csv(id_file, dtype=str, keep_default_na=False)[id_column]
        output = predictions_dir / f"requests-{id_file.stem.removeprefix('ids-')}.jsonl{TRANSFORM_SUFFIX}"
        if not output.is_file():
            raise JobError(f"{output}: transform output missing for {id_file.name} ({len(ids)} records)")
        probability, labels = read_predictions(output)
        if len(probability) != len(ids):
            raise JobError(
                f"{output}: {len(probability)} prediction lines for {len(ids)} requests in "
                f"{id_file.name}; the transform must keep one line per record, in order"
            )
        frames.append(
            pd.DataFrame(
                {"subscriber_id": ids.to_numpy(), "probability": probability, "label": pd.Series(labels, dtype=object)}
            )
        )
    scores = finish_scores(pd.concat(frames, ignore_index=True), package, snapshot_date, _scored_at(args.scored_at))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(out / SCORES_FILE, index=False)
    top = scores.loc[scores["decile"] == 1, "probability"]
    return {
        "rows": len(scores),
        "scoring_date": scoring_date,
        "model_package_arn": package.arn,
        "model_package_version": package.version,
        "top_decile_min_probability": float(top.min()),
    }


def finish_scores(
    scores: pd.DataFrame, package: ModelPackage, snapshot_date: str, scored_at: dt.datetime
) -> pd.DataFrame:
    """The scores table's columns (SCORE_COLUMNS; scoring_date is the partition, not a column of the file)."""
    rank, decile = ranks_and_deciles(scores["subscriber_id"], scores["probability"].to_numpy())
    out = scores.assign(rank=rank, decile=decile)
    out["snapshot_date"] = snapshot_date
    out["model_package_arn"] = package.arn
    out["model_package_group"] = package.group
    out["model_version"] = np.int64(package.version)
    out["scored_at"] = pd.Timestamp(scored_at).tz_convert("UTC").as_unit("ms")
    return out[[name for name, _ in SCORE_COLUMNS]]


def _scored_at(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise JobError(f"--scored-at: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise JobError(f"--scored-at: {value!r} has no time zone (e.g. 2026-11-27T10:00:00Z)")
    return parsed


# --------------------------------------------------------------------------------------------- cli
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="batch_scoring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("prepare", help="feature table -> JSON-lines requests + ids")
    pre.add_argument("--features", default=f"{PROCESSING}/input/features")
    pre.add_argument("--schema", required=True)
    pre.add_argument("--output-dir", default=f"{PROCESSING}/output")
    pre.add_argument("--snapshot-date", default="")
    pre.add_argument("--scoring-date", default="")
    pre.add_argument("--shard-rows", type=int, default=100_000)
    pre.add_argument("--model-package-arn", default="")
    pre.add_argument("--champion-package-arn", default="")
    pre.add_argument("--model-package-group", default="")
    pre.add_argument("--model-type", default="", help="the given package's model type, when it is not the champion")
    pre.add_argument("--champion-model-type", default="")
    pre.add_argument("--pytorch-instance-type", default="", help="transform instance type for a PyTorch package")
    pre.add_argument("--xgboost-instance-type", default="", help="transform instance type for an XGBoost package")
    pub = sub.add_parser("publish", help="transform output + ids -> one partition of the scores table")
    pub.add_argument("--ids", required=True)
    pub.add_argument("--predictions", required=True)
    pub.add_argument("--scoring", required=True, help="prepare's scoring/ dir or scoring.json")
    pub.add_argument("--output-dir", required=True)
    pub.add_argument("--scored-at", default="")
    args = ap.parse_args(argv)
    if args.command == "prepare" and args.shard_rows < 1:
        pre.error(f"--shard-rows must be at least 1, got {args.shard_rows}")
    return args


def describe(args: argparse.Namespace) -> str:
    if args.command == "prepare":
        d = prepare(args)
        who = d["model_package_arn"] if d["has_package"] == "true" else "no approved model package"
        return (
            f"{d['records']} subscribers of snapshot {d['snapshot_date']} in {d['shards']} request "
            f"file(s) for {d['scoring_date']}; scoring with {who}"
        )
    s = publish(args)
    return (
        f"{s['rows']} scores for {s['scoring_date']} by model version {s['model_package_version']} "
        f"(top decile from p={s['top_decile_min_probability']:.4f})"
    )


def main(argv: list[str] | None = None) -> int:
    return run_job("batch_scoring", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
