"""The batch-scoring step of the twin: the whole local feature table scored through the packaged handler
exactly as the cloud's Batch Transform does, then published as the local scores table.

    prepare    training_jobs.batch_scoring prepare  -> requests/requests-NNNNN.jsonl + ids/ (same order)
    transform  each request file split into lines (SplitType=Line), lines packed into mini-batches of at
               most max_payload_mb (BatchStrategy=MultiRecord), each mini-batch sent to the model.tar.gz's
               code/inference.py as one request, the answers' lines appended (AssembleWith=Line) to
               requests-NNNNN.jsonl.out, as SageMaker names transform output
    publish    training_jobs.batch_scoring publish  -> <scores table>/scoring_date=D/scores.parquet

`content_type` is what the transform sends and accepts: application/jsonlines (one record per line
in, one prediction per line out), the pipeline's setting. application/json sends each mini-batch as
a JSON list and writes each of the response's predictions as one line, the same output file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training_jobs import batch_scoring
from training_jobs.batch_scoring import transform_environment
from twin.serve import _load_handler

JSON_LINES = "application/jsonlines"
JSON = "application/json"
CONTENT_TYPES = (JSON_LINES, JSON)
DEFAULT_MAX_PAYLOAD_MB = 6  # CreateTransformJob's default MaxPayloadInMB


def local_package_arn(registered_model: str, version: int | str) -> str:
    """A model package ARN for a twin registry version (region `local`, account zeros): the scores table
    keeps the same columns as in the cloud."""
    group = re.sub(r"[^A-Za-z0-9]+", "-", registered_model).strip("-")
    return f"arn:aws:sagemaker:local:000000000000:model-package/{group}/{int(version)}"


def batch_score(
    features: Path,
    package: Path,
    schema_path: Path,
    work: Path,
    scores_table: Path,
    *,
    model_package_arn: str,
    scoring_date: str,
    snapshot_date: str = "",
    content_type: str = JSON_LINES,
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB,
    shard_rows: int = 100_000,
    scored_at: str = "",
) -> dict[str, Any]:
    """Score every subscriber of `features` with `package` (a model.tar.gz); returns the step's summary.
    Job failures raise RuntimeError with the job's one-line message."""
    if content_type not in CONTENT_TYPES:
        raise ValueError(f"content_type {content_type!r} is not one of {CONTENT_TYPES}")
    shutil.rmtree(work, ignore_errors=True)
    prepared, predictions = work / "prepare", work / "transform"
    handler, model = _load_package(package, work / "model", transform_environment(max_payload_mb))
    _job(
        [
            "prepare",
            "--features",
            str(features),
            "--schema",
            str(schema_path),
            "--output-dir",
            str(prepared),
            "--model-package-arn",
            model_package_arn,
            "--model-type",
            model.kind,
            f"--{model.kind}-instance-type",
            "local",
            "--scoring-date",
            scoring_date,
            "--snapshot-date",
            snapshot_date,
            "--shard-rows",
            str(shard_rows),
        ]
    )
    decision = json.loads((prepared / batch_scoring.SCORING_DIR / batch_scoring.SCORING_FILE).read_text())
    t0 = time.perf_counter()
    batches = 0
    predictions.mkdir(parents=True)
    for requests in sorted((prepared / batch_scoring.REQUESTS_DIR).glob("requests-*.jsonl")):
        target = predictions / f"{requests.name}{batch_scoring.TRANSFORM_SUFFIX}"
        with target.open("w", encoding="utf-8") as out:
            for lines in mini_batches(requests, max_payload_mb * 1024 * 1024):
                out.writelines(f"{line}\n" for line in invoke(handler, model, lines, content_type))
                batches += 1
    seconds = time.perf_counter() - t0
    partition = scores_table / f"{batch_scoring.SCORES_PARTITION}={decision['scoring_date']}"
    _job(
        [
            "publish",
            "--ids",
            str(prepared / batch_scoring.IDS_DIR),
            "--predictions",
            str(predictions),
            "--scoring",
            str(prepared / batch_scoring.SCORING_DIR),
            "--output-dir",
            str(partition),
            "--scored-at",
            scored_at,
        ]
    )
    return {
        "rows": decision["records"],
        "snapshot_date": decision["snapshot_date"],
        "scoring_date": decision["scoring_date"],
        "model_package_arn": decision["model_package_arn"],
        "content_type": content_type,
        "mini_batches": batches,
        "transform_seconds": seconds,
        "rows_per_s": decision["records"] / seconds if seconds > 0 else float("inf"),
        "scores": str(partition / batch_scoring.SCORES_FILE),
        "model_kind": model.kind,
    }


def mini_batches(requests: Path, max_bytes: int) -> Iterator[list[str]]:
    """The file's lines packed in order into batches of at most `max_bytes` (a longer line alone)."""
    batch: list[str] = []
    size = 0
    with requests.open(encoding="utf-8") as lines:
        for raw in lines:
            line = raw.rstrip("\n")
            if not line:
                continue
            length = len(line.encode()) + 1
            if batch and size + length > max_bytes:
                yield batch
                batch, size = [], 0
            batch.append(line)
            size += length
    if batch:
        yield batch


def invoke(handler: Any, model: Any, lines: list[str], content_type: str) -> list[str]:
    """One mini-batch through input_fn/predict_fn/output_fn; one prediction line per request line."""
    if content_type == JSON_LINES:
        body = "".join(f"{line}\n" for line in lines).encode()
        answer = handler.output_fn(handler.predict_fn(handler.input_fn(body, JSON_LINES), model), JSON_LINES)
        out = [line for line in _text(answer).splitlines() if line.strip()]
    else:
        body = ("[" + ",".join(lines) + "]").encode()
        answer = handler.output_fn(handler.predict_fn(handler.input_fn(body, JSON), model), JSON)
        out = [json.dumps(p, separators=(",", ":")) for p in json.loads(_text(answer))["predictions"]]
    if len(out) != len(lines):
        raise RuntimeError(f"the handler answered {len(out)} predictions for {len(lines)} records")
    return out


def _text(answer: Any) -> str:
    return answer.decode() if isinstance(answer, bytes | bytearray) else str(answer)


def _load_package(package: Path, model_dir: Path, environment: dict[str, str]) -> tuple[Any, Any]:
    """The package extracted as the transform container sees it: /opt/ml/model with code/inference.py,
    imported with the transform job's environment."""
    model_dir.mkdir(parents=True)
    with tarfile.open(package) as tar:
        tar.extractall(model_dir, filter="data")
    saved = {k: os.environ.get(k) for k in environment}
    os.environ.update(environment)
    try:
        handler = _load_handler(model_dir / "code")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return handler, handler.model_fn(str(model_dir))


def _job(argv: list[str]) -> None:
    import contextlib
    import io

    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        status = batch_scoring.main(argv)
    if status != 0:
        raise RuntimeError(errors.getvalue().strip() or f"batch_scoring {argv[0]} exited {status}")
