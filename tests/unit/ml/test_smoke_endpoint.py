"""scripts/smoke_endpoint.py against the local endpoint server (in-process, ephemeral port)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from scripts import smoke_endpoint
from twin.capture import CaptureWriter
from twin.endpoint_server import LocalEndpoint, LocalEndpointServer

NAME = "telecom-ml-smoke-churn"


@pytest.fixture
def local(served, tmp_path):
    handler, model = served
    endpoint = LocalEndpoint(NAME, handler, model, capture=CaptureWriter(tmp_path / "capture", NAME))
    with LocalEndpointServer([endpoint]) as srv:
        yield srv, tmp_path / "capture"


def test_smoke_against_the_local_server(local, raw_csv, tmp_path, capsys):
    server, capture = local
    t0 = time.perf_counter()
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
    elapsed = time.perf_counter() - t0
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
    assert elapsed < 3.0, f"the smoke run took {elapsed:.1f} s: {summary}"


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
    ],
)
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        smoke_endpoint.main(["--endpoint-name", NAME, *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
