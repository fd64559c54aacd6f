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
    latencies, probabilities = [], []
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
            fatal = _fatal(exc, endpoint, target)
            if fatal is not None:
                raise fatal from None
            summary.failed += 1
            if len(summary.errors) < 5:
                summary.errors.append(f"subscriber {sid}: {_describe(exc)}")
            continue
        latencies.append(time.perf_counter() - t0)
        pred = answer["predictions"][0]
        probabilities.append(float(pred["probability"]))
        summary.positives += int(pred["label"] == answer.get("positive_label"))
        summary.answered += 1
    if probabilities:
        summary.probability_mean = sum(probabilities) / len(probabilities)
        summary.probability_min, summary.probability_max = min(probabilities), max(probabilities)
    summary.latency_ms = percentiles(latencies)
    return summary


def report(s: Summary) -> str:
    lines = [f"endpoint {s.endpoint} at {s.target}: {s.sent} requests, {s.answered} answered, {s.failed} failed"]
    if s.answered:
        lines.append(
            f"  predicted churners: {s.positives} of {s.answered}; probability mean "
            f"{s.probability_mean:.3f} (min {s.probability_min:.3f}, max {s.probability_max:.3f})"
        )
        lat = s.latency_ms
        lines.append(
            f"  client-side latency (ms): p50 {lat['p50']:.2f}, p90 {lat['p90']:.2f}, "
            f"p99 {lat['p99']:.2f}, max {lat['max']:.2f}"
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
    args = ap.parse_args(argv)
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
        summary = smoke(client, args.endpoint_name, target, records, args.scoring_date)
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
