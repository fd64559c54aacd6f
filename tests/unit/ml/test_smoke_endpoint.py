"""scripts/smoke_endpoint.py against the local endpoint server (in-process, ephemeral port)."""

from __future__ import annotations

import json
import socket

import pytest

from scripts import smoke_endpoint
from twin.capture import CaptureWriter
from twin.endpoint_server import LocalEndpoint, LocalEndpointServer

NAME = "telecom-ml-smoke-churn"


@pytest.fixture
def local(served, tmp_path):
    handler, model = served
    endpoint = LocalEndpoint(
        NAME, handler, model, capture=CaptureWriter(tmp_path / "capture", NAME), async_root=tmp_path / "async"
    )
    with LocalEndpointServer([endpoint]) as srv:
        yield srv, tmp_path / "capture"


def test_smoke_against_the_local_server(local, raw_csv, tmp_path, capsys):
    server, capture = local
    rc = smoke_endpoint.main(
        [
            "--endpoint-url",
            server.url,
            "--endpoint-name",
            NAME,
            "--records",
            "40",
            "--data",
            str(raw_csv),
            "--scoring-date",
            "2026-11-27",
            "--json",
            str(tmp_path / "smoke.json"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"endpoint {NAME} at {server.url}: 40 requests, 40 answered, 0 failed" in out
    assert "client-side latency (ms): p50 " in out and " p90 " in out and " p99 " in out
    summary = json.loads((tmp_path / "smoke.json").read_text())
    assert summary["answered"] == 40 and 0 < summary["probability_mean"] < 1
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p90"] <= summary["latency_ms"]["p99"]
    # one record per request, each captured with its InferenceId <subscriber id>:<scoring date>
    lines = [json.loads(line) for f in capture.rglob("*.jsonl") for line in f.read_text().splitlines()]
    ids = [line["eventMetadata"]["inferenceId"] for line in lines]
    assert ids == [f"{i}:2026-11-27" for i in range(1, 41)]  # the data's subscriber ids, in order
    assert all(len(json.loads(line["captureData"]["endpointOutput"]["data"])["predictions"]) == 1 for line in lines)


def test_async_smoke_against_the_local_server(local, raw_csv, tmp_path, capsys):
    """InvokeEndpointAsync: bodies put under --async-input, answers polled from each OutputLocation."""
    server, capture = local
    inputs = tmp_path / "async-input"
    argv = ["--endpoint-url", server.url, "--endpoint-name", NAME, "--records", "12", "--data", str(raw_csv)]
    argv += ["--scoring-date", "2026-11-27", "--async-input", str(inputs), "--async-poll", "0.05"]
    rc = smoke_endpoint.main([*argv, "--json", str(tmp_path / "smoke.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"endpoint {NAME} at {server.url}: 12 async requests, 12 answered, 0 failed" in out
    assert "end-to-end latency, to within the poll (ms): p50 " in out
    summary = json.loads((tmp_path / "smoke.json").read_text())
    assert summary["mode"] == "async" and 0 < summary["probability_mean"] < 1
    assert len(list(inputs.glob("smoke-2026-11-27-*.json"))) == 12
    lines = [json.loads(line) for f in capture.rglob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(line["eventMetadata"]["inferenceId"] for line in lines) == sorted(
        f"{i}:2026-11-27" for i in range(1, 13)
    )


def test_async_failures_are_read_from_the_failure_location(local, raw_csv, tmp_path, capsys):
    server, _ = local
    bad = tmp_path / "bad.csv"
    text = raw_csv.read_text().splitlines()
    header, row = text[0].split(","), text[1].split(",")
    row[header.index("tenure")] = "999"
    bad.write_text("\n".join([text[0], ",".join(row), text[2]]) + "\n")
    argv = ["--endpoint-url", server.url, "--endpoint-name", NAME, "--records", "2", "--data", str(bad)]
    rc = smoke_endpoint.main([*argv, "--async-input", str(tmp_path / "in"), "--async-poll", "0.05"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "2 async requests, 1 answered, 1 failed" in out
    failure = next(line for line in out.splitlines() if line.startswith("  error: subscriber 1: "))
    assert "record 0, field 'tenure': value 999 above max 120" in failure  # the FailureLocation's text


class _NeverAnswers:
    """An async endpoint that queues every request and never writes an answer."""

    def __init__(self, root):
        self.root = root

    def invoke_endpoint_async(self, **request):
        name = request["InferenceId"].replace(":", "_")
        return {
            "OutputLocation": (self.root / f"{name}.out").as_uri(),
            "FailureLocation": (self.root / f"{name}-error.out").as_uri(),
        }


def test_async_answers_that_never_come_are_failures_not_a_hang(raw_csv, tmp_path):
    records = smoke_endpoint.load_records(smoke_endpoint.DEFAULT_SCHEMA, raw_csv, 3)
    files = smoke_endpoint.LocalAsyncFiles(tmp_path / "in")
    summary = smoke_endpoint.smoke_async(
        _NeverAnswers(tmp_path), files, NAME, "stub", records, "2026-11-27", wait_s=0.2, poll_s=0.05
    )
    assert (summary.sent, summary.answered, summary.failed) == (3, 0, 3)
    assert "no answer at file://" in summary.errors[0] and "after --async-wait 0.2 s" in summary.errors[0]


def test_s3_async_files_put_bodies_and_read_answers_once_written(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="ml-artefacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        files = smoke_endpoint.S3AsyncFiles(s3, "s3://ml-artefacts/async-input/telecom-ml-dev-churn/")
        location = files.put("smoke-1.json", b'{"tenure": 1}')
        assert location == "s3://ml-artefacts/async-input/telecom-ml-dev-churn/smoke-1.json"
        put = s3.get_object(Bucket="ml-artefacts", Key="async-input/telecom-ml-dev-churn/smoke-1.json")
        assert put["Body"].read() == b'{"tenure": 1}'
        answer = "s3://ml-artefacts/async-output/telecom-ml-dev-churn/x.out"
        assert files.get(answer) is None  # not written yet
        s3.put_object(Bucket="ml-artefacts", Key="async-output/telecom-ml-dev-churn/x.out", Body=b"{}")
        assert files.get(answer) == b"{}"


def test_model_errors_are_counted_and_shown(local, raw_csv, tmp_path, capsys):
    server, _ = local
    bad = tmp_path / "bad.csv"
    text = raw_csv.read_text().splitlines()
    header = text[0].split(",")
    row = text[1].split(",")
    row[header.index("tenure")] = "999"
    bad.write_text("\n".join([text[0], ",".join(row), text[2]]) + "\n")
    rc = smoke_endpoint.main(
        ["--endpoint-url", server.url, "--endpoint-name", NAME, "--records", "2", "--data", str(bad)]
    )
    out = capsys.readouterr().out
    assert rc == 1
    assert "2 requests, 1 answered, 1 failed" in out
    assert "error: subscriber 1: ModelError (400): record 0, field 'tenure': value 999 above max 120" in out


def test_unknown_endpoint(local, raw_csv, capsys):
    server, _ = local
    rc = smoke_endpoint.main(
        ["--endpoint-url", server.url, "--endpoint-name", "telecom-ml-nope", "--records", "1", "--data", str(raw_csv)]
    )
    assert rc == 2
    assert "error: endpoint 'telecom-ml-nope' not found at http://" in capsys.readouterr().err


def test_connection_refused(raw_csv, capsys):
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = smoke_endpoint.main(
        [
            "--endpoint-url",
            f"http://127.0.0.1:{port}",
            "--endpoint-name",
            NAME,
            "--records",
            "1",
            "--data",
            str(raw_csv),
            "--timeout",
            "2",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert f"error: cannot connect to http://127.0.0.1:{port}" in err
    assert "is the local server running?" in err


def test_no_credentials_for_a_real_endpoint(raw_csv, tmp_path, monkeypatch, capsys):
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    rc = smoke_endpoint.main(
        ["--endpoint-name", NAME, "--region", "eu-west-1", "--records", "1", "--data", str(raw_csv)]
    )
    assert rc == 2
    assert "error: no usable AWS credentials" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--records", "0"], "--records 0: must be 1..100000"),
        (["--scoring-date", "27/11/2026"], "not a date in YYYY-MM-DD form"),
        (["--data", "/no/such.csv"], "--data /no/such.csv: file not found"),
        (["--async-input", "build/in"], "a real endpoint reads its input from S3"),
        (["--endpoint-url", "http://127.0.0.1:1", "--async-input", "s3://b/p/"], "reads a local directory, not s3://"),
        (["--async-wait", "0"], "--async-wait and --async-poll must be positive"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        smoke_endpoint.main(["--endpoint-name", NAME, *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
