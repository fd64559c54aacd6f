r"""Smoke test of a churn endpoint: real subscribers, one request each, through boto3's sagemaker-runtime.

    # the local twin endpoint (python -m twin.endpoint_server --package ...):
    .venv/bin/python scripts/smoke_endpoint.py --endpoint-url http://127.0.0.1:8080 \
        --endpoint-name telecom-ml-local-churn
    # a real endpoint (the default credential chain and region: AWS_PROFILE, AWS_REGION, ...):
    .venv/bin/python scripts/smoke_endpoint.py --endpoint-name telecom-ml-dev-churn --region eu-west-1

Each of the first --records subscribers of the dataset (the schema's own source, or --data, a raw snapshot
CSV as it lands in the raw zone) is sent as one application/json request holding its raw feature fields,
with the InferenceId of dataset/inference_ids.py, `<subscriber part>:<scoring date>` (the id as the data
holds it; production callers send the lake's pseudonymised ids, cut to fit SageMaker's 64 characters).
Prints the predictions summary and the client-side latency percentiles (each request timed from the call
to the last byte of the body read).

An asynchronous endpoint (dev's `ml.endpoint.mode: async`) answers InvokeEndpointAsync only: pass
--async-input, where each request body is put before the call (the endpoint's `async-input/<endpoint>/`
prefix of the ML artefact bucket, `s3://<bucket>/async-input/<endpoint>/`, for a real endpoint; a local
directory for the local server). The client then polls each OutputLocation / FailureLocation until the
answer is there or --async-wait runs out; latency is then end to end (queue, scaling from zero, inference),
to within the poll interval:

    .venv/bin/python scripts/smoke_endpoint.py --endpoint-name telecom-ml-dev-churn --region eu-west-1 \
        --async-input s3://<ML artefact bucket>/async-input/telecom-ml-dev-churn/ --async-wait 900

Exit codes: 0 every request answered; 1 some requests failed (the first errors are printed); 2 the
endpoint could not be called at all (connection refused, no credentials, no region, unknown endpoint)
or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from anywhere: the repository's packages
    sys.path.insert(0, str(ROOT))

DEFAULT_SCHEMA = ROOT / "dataset" / "schemas" / "ibm_telco_churn.yaml"


class SmokeError(Exception):
    """The endpoint cannot be called at all; the message says why and what to do."""


@dataclass
class Summary:
    endpoint: str
    target: str
    mode: str = "realtime"
    sent: int = 0
    answered: int = 0
    failed: int = 0
    positives: int = 0
    probability_mean: float | None = None
    probability_min: float | None = None
    probability_max: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def load_records(schema_path: Path, data: Path | None, n: int) -> list[tuple[str, dict[str, Any]]]:
    """(subscriber id, raw feature fields) of the first `n` subscribers, nulls as None."""
    import pandas as pd

    from dataset.schema import load_schema, rename_columns

    schema = load_schema(schema_path)
    if data is None:
        from dataset.sources import load_source

        frame = load_source(schema)
    else:
        frame = pd.read_csv(data, nrows=n)
        frame = frame.set_axis(rename_columns(schema, [str(c) for c in frame.columns]), axis=1)
    fields = schema.raw_feature_columns
    missing = [c for c in [schema.id_column, *fields] if c not in frame.columns]
    if missing:
        raise SmokeError(f"{data or schema.source}: lacks the columns {missing}")
    out = []
    for rec in frame[[schema.id_column, *fields]].head(n).to_dict(orient="records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        out.append((str(clean.pop(schema.id_column)), clean))
    return out


def runtime_client(endpoint_url: str | None, region: str | None, timeout_s: float) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1})
    if endpoint_url:  # the local server ignores the signature: any credentials do
        return boto3.client(
            "sagemaker-runtime",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=config,
        )
    from botocore.exceptions import NoRegionError

    try:  # a session of its own: credentials resolve now, never from a default session cached earlier
        return boto3.session.Session().client("sagemaker-runtime", region_name=region, config=config)
    except NoRegionError:
        raise SmokeError("no AWS region: pass --region or set AWS_REGION (or a profile's region)") from None


def async_files(location: str, region: str | None, timeout_s: float) -> LocalAsyncFiles | S3AsyncFiles:
    if not location.startswith("s3://"):
        return LocalAsyncFiles(Path(location))
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 3})
    return S3AsyncFiles(boto3.session.Session().client("s3", region_name=region, config=config), location)


def _fatal(exc: Exception, endpoint: str, target: str) -> SmokeError | None:
    """The errors that stop the run: connection, credentials, unknown endpoint."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, EndpointConnectionError):
        hint = (
            " - is the local server running? (.venv/bin/python -m twin.endpoint_server --package ...)"
            if target.startswith("http")
            else ""
        )
        return SmokeError(f"cannot connect to {target}: {exc}{hint}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return SmokeError(
            f"no usable AWS credentials for {target} ({exc}): set AWS_PROFILE or the "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables, or pass --endpoint-url for "
            "the local server"
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        if err.get("Code") == "ValidationError" and "not found" in str(err.get("Message", "")):
            return SmokeError(f"endpoint {endpoint!r} not found at {target}: {err.get('Message')}")
        if err.get("Code") in (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ExpiredTokenException",
            "AccessDeniedException",
        ):
            return SmokeError(f"{target} refused the credentials: {err.get('Code')}: {err.get('Message')}")
    return None


def _describe(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        r = exc.response
        if r.get("Error", {}).get("Code") == "ModelError":
            return f"ModelError ({r.get('OriginalStatusCode')}): {r.get('OriginalMessage')}"
        return f"{r.get('Error', {}).get('Code')}: {r.get('Error', {}).get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    import numpy as np

    if not latencies_s:
        return {}
    ms = np.asarray(latencies_s) * 1e3
    return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 90, 99)} | {"max": float(ms.max())}


def smoke(
    client: Any, endpoint: str, target: str, records: list[tuple[str, dict[str, Any]]], scoring_date: str
) -> Summary:
    from dataset import inference_ids

    summary = Summary(endpoint, target)
    latencies: list[float] = []
    probabilities: list[float] = []
    for sid, fields in records:
        body = json.dumps(fields)
        summary.sent += 1
        t0 = time.perf_counter()
        try:
            resp = client.invoke_endpoint(
                EndpointName=endpoint,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
                InferenceId=inference_ids.make(sid, scoring_date),
            )
            answer = json.loads(resp["Body"].read())
        except Exception as exc:
            _call_failed(summary, sid, exc, endpoint, target)
            continue
        latencies.append(time.perf_counter() - t0)
        _answered(summary, probabilities, answer)
    _finish(summary, probabilities, latencies)
    return summary


class LocalAsyncFiles:
    """--async-input as a local directory, for the local server (it reads and writes file:// URLs)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, name: str, body: bytes) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / name
        path.write_bytes(body)
        return path.resolve().as_uri()

    def get(self, location: str) -> bytes | None:
        from urllib.parse import unquote, urlparse

        path = Path(unquote(urlparse(location).path))
        return path.read_bytes() if path.is_file() else None


class S3AsyncFiles:
    """--async-input as s3://bucket/prefix/: bodies put there, results read where SageMaker writes them."""

    def __init__(self, s3: Any, uri: str) -> None:
        self.s3 = s3
        self.bucket, self.prefix = split_s3_uri(uri)

    def put(self, name: str, body: bytes) -> str:
        key = f"{self.prefix}{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return f"s3://{self.bucket}/{key}"

    def get(self, location: str) -> bytes | None:
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(location)
        try:
            return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:] or uri[5:].startswith("/"):
        raise SmokeError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


@dataclass
class _Pending:
    sid: str
    started: float
    output: str
    failure: str


def smoke_async(
    client: Any,
    files: LocalAsyncFiles | S3AsyncFiles,
    endpoint: str,
    target: str,
    records: list[tuple[str, dict[str, Any]]],
    scoring_date: str,
    wait_s: float,
    poll_s: float = 1.0,
) -> Summary:
    """Every request queued first (InvokeEndpointAsync), then every answer polled until --async-wait."""
    from dataset import inference_ids

    summary = Summary(endpoint, target, mode="async")
    pending: list[_Pending] = []
    for index, (sid, fields) in enumerate(records):
        summary.sent += 1
        inference_id = inference_ids.make(sid, scoring_date)
        try:
            location = files.put(f"smoke-{scoring_date}-{index:06d}.json", json.dumps(fields).encode())
            resp = client.invoke_endpoint_async(
                EndpointName=endpoint,
                InputLocation=location,
                ContentType="application/json",
                Accept="application/json",
                InferenceId=inference_id,
            )
        except Exception as exc:
            _call_failed(summary, sid, exc, endpoint, target)
            continue
        pending.append(_Pending(sid, time.perf_counter(), resp["OutputLocation"], resp.get("FailureLocation", "")))
    latencies: list[float] = []
    probabilities: list[float] = []
    deadline = time.perf_counter() + wait_s
    while pending:
        still = []
        for p in pending:
            answer = files.get(p.output)
            if answer is not None:
                latencies.append(time.perf_counter() - p.started)
                _answered(summary, probabilities, json.loads(answer))
                continue
            failure = files.get(p.failure) if p.failure else None
            if failure is not None:
                _failed(summary, p.sid, failure.decode("utf-8", "replace").strip())
                continue
            still.append(p)
        pending = still
        if pending and time.perf_counter() >= deadline:
            for p in pending:
                _failed(summary, p.sid, f"no answer at {p.output} after --async-wait {wait_s:g} s")
            break
        if pending:
            time.sleep(poll_s)
    _finish(summary, probabilities, latencies)
    return summary


def _answered(summary: Summary, probabilities: list[float], answer: dict[str, Any]) -> None:
    pred = answer["predictions"][0]
    probabilities.append(float(pred["probability"]))
    summary.positives += int(pred["label"] == answer.get("positive_label"))
    summary.answered += 1


def _call_failed(summary: Summary, sid: str, exc: Exception, endpoint: str, target: str) -> None:
    """A call that stops the run (connection, credentials, unknown endpoint) raises; any other is one failure."""
    fatal = _fatal(exc, endpoint, target)
    if fatal is not None:
        raise fatal from None
    _failed(summary, sid, _describe(exc))


def _failed(summary: Summary, sid: str, why: str) -> None:
    summary.failed += 1
    if len(summary.errors) < 5:
        summary.errors.append(f"subscriber {sid}: {why}")


def _finish(summary: Summary, probabilities: list[float], latencies: list[float]) -> None:
    if probabilities:
        summary.probability_mean = sum(probabilities) / len(probabilities)
        summary.probability_min, summary.probability_max = min(probabilities), max(probabilities)
    summary.latency_ms = percentiles(latencies)


def report(s: Summary) -> str:
    kind = "requests" if s.mode == "realtime" else "async requests"
    lines = [f"endpoint {s.endpoint} at {s.target}: {s.sent} {kind}, {s.answered} answered, {s.failed} failed"]
    if s.answered:
        lines.append(
            f"  predicted churners: {s.positives} of {s.answered}; probability mean "
            f"{s.probability_mean:.3f} (min {s.probability_min:.3f}, max {s.probability_max:.3f})"
        )
        lat = s.latency_ms
        what = "client-side latency" if s.mode == "realtime" else "end-to-end latency, to within the poll"
        lines.append(
            f"  {what} (ms): p50 {lat['p50']:.2f}, p90 {lat['p90']:.2f}, p99 {lat['p99']:.2f}, max {lat['max']:.2f}"
        )
    lines += [f"  error: {e}" for e in s.errors]
    return "\n".join(lines)


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-name", required=True)
    ap.add_argument("--endpoint-url", help="the local server's URL (none: the real SageMaker Runtime)")
    ap.add_argument("--region", help="AWS region (default: the environment's / profile's)")
    ap.add_argument("--records", type=int, default=50, help="subscribers to send, one request each")
    ap.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA)
    ap.add_argument("--data", type=Path, help="raw snapshot CSV (default: the schema's source)")
    ap.add_argument("--scoring-date", default=None, help="YYYY-MM-DD in the InferenceId (default: today, UTC)")
    ap.add_argument("--timeout", type=float, default=10.0, help="connect/read timeout per request, seconds")
    ap.add_argument("--json", type=Path, help="also write the summary here")
    ap.add_argument(
        "--async-input",
        help="asynchronous endpoint: where request bodies are put (s3://bucket/prefix/, or a local directory "
        "for the local server)",
    )
    ap.add_argument("--async-wait", type=float, default=60.0, help="seconds to wait for async answers")
    ap.add_argument("--async-poll", type=float, default=1.0, help="seconds between polls of async answers")
    args = ap.parse_args(argv)
    if args.async_wait <= 0 or args.async_poll <= 0:
        ap.error("--async-wait and --async-poll must be positive")
    if args.async_input is not None:
        if args.endpoint_url is None and not args.async_input.startswith("s3://"):
            ap.error(
                f"--async-input {args.async_input!r}: a real endpoint reads its input from S3 (s3://bucket/prefix/)"
            )
        if args.endpoint_url is not None and args.async_input.startswith("s3://"):
            ap.error("--async-input: the local server reads a local directory, not s3://")
        if args.async_input.startswith("s3://") and not args.async_input.endswith("/"):
            args.async_input += "/"
    if not 1 <= args.records <= 100_000:
        ap.error(f"--records {args.records}: must be 1..100000")
    if args.timeout <= 0:
        ap.error(f"--timeout {args.timeout}: must be positive")
    if args.scoring_date is None:
        args.scoring_date = datetime.now(UTC).date().isoformat()
    try:
        date.fromisoformat(args.scoring_date)
    except ValueError:
        ap.error(f"--scoring-date {args.scoring_date!r}: not a date in YYYY-MM-DD form")
    for what, path in (("--schema", args.schema), ("--data", args.data)):
        if path is not None and not path.is_file():
            ap.error(f"{what} {path}: file not found")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    target = args.endpoint_url or f"the SageMaker Runtime in {args.region or 'the default region'}"
    try:
        records = load_records(args.schema, args.data, args.records)
        client = runtime_client(args.endpoint_url, args.region, args.timeout)
        if args.async_input is None:
            summary = smoke(client, args.endpoint_name, target, records, args.scoring_date)
        else:
            files = async_files(args.async_input, args.region, args.timeout)
            summary = smoke_async(
                client, files, args.endpoint_name, target, records, args.scoring_date, args.async_wait, args.async_poll
            )
    except SmokeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(summary))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(summary), indent=2))
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
