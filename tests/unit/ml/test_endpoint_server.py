"""The local SageMaker Runtime server, called through boto3 exactly as a real endpoint is called."""

from __future__ import annotations

import base64
import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.unit.ml.test_inference import GOOD
from twin.capture import CaptureConfigError, CaptureWriter
from twin.endpoint_server import LocalEndpoint, LocalEndpointServer, local_endpoint

NAME = "telecom-ml-test-churn"
WHEN = datetime(2026, 11, 27, 10, 4, 5, 678000, tzinfo=UTC)


def runtime(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def capture_root(tmp_path) -> Path:
    return tmp_path / "data-capture"


@pytest.fixture
def server(served, capture_root, tmp_path):
    handler, model = served
    writer = CaptureWriter(capture_root, NAME, clock=lambda: WHEN)
    endpoint = LocalEndpoint(NAME, handler, model, capture=writer, async_root=tmp_path / "async")
    with LocalEndpointServer([endpoint]) as srv:
        yield srv


def capture_lines(root: Path) -> list[dict]:
    files = sorted(root.rglob("*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def model_error(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    err = exc.value.response
    assert err["Error"]["Code"] == "ModelError"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 424
    return err["OriginalStatusCode"], err["OriginalMessage"]


# ----------------------------------------------------------------------------- InvokeEndpoint
def test_invoke_endpoint_through_boto3_matches_the_handler(server, served):
    handler, model = served
    body = json.dumps([GOOD, {**GOOD, "tenure": 60, "contract": "Two year"}])
    resp = runtime(server.url).invoke_endpoint(
        EndpointName=NAME,
        Body=body,
        ContentType="application/json",
        Accept="application/json",
        InferenceId="sub-1:2026-11-27",
        CustomAttributes="trace=1",
    )
    assert resp["ContentType"] == "application/json"
    assert resp["InvokedProductionVariant"] == "primary"
    out = json.loads(resp["Body"].read())
    direct = json.loads(
        handler.output_fn(handler.predict_fn(handler.input_fn(body, "application/json"), model), "application/json")
    )
    assert out == direct


@pytest.mark.parametrize(
    "content_type, accept, body, check",
    [
        (
            "text/csv",
            "text/csv",
            ",".join(GOOD) + "\n" + ",".join(str(v) for v in GOOD.values()) + "\n",
            lambda text: re.fullmatch(r"0\.\d+(e-\d+)?,(Yes|No)\n", text),
        ),
        (
            "application/jsonlines",
            "application/jsonlines",
            json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n",
            lambda text: len(text.splitlines()) == 2 and "probability" in json.loads(text.splitlines()[0]),
        ),
        ("application/json", "*/*", json.dumps(GOOD), lambda text: "predictions" in json.loads(text)),
    ],
)
def test_content_types(server, content_type, accept, body, check):
    resp = runtime(server.url).invoke_endpoint(EndpointName=NAME, Body=body, ContentType=content_type, Accept=accept)
    assert resp["ContentType"] == ("application/json" if accept == "*/*" else accept)
    assert check(resp["Body"].read().decode())


@pytest.mark.parametrize(
    "body, content_type, accept, status, message",
    [
        (
            json.dumps([GOOD, {**GOOD, "tenure": 150}]),
            "application/json",
            "application/json",
            400,
            "record 1, field 'tenure': value 150 above max 120",
        ),
        (json.dumps(GOOD), "application/json", "application/xml", 406, "unsupported accept type"),
        ("{", "application/json", "application/xml", 406, "unsupported accept type"),  # Accept first
        (json.dumps(GOOD), "application/x-protobuf", "application/json", 415, "unsupported content type"),
        (
            json.dumps({**GOOD, "contract": "Weekly"}),
            "application/json",
            "application/json",
            400,
            "record 0, field 'contract': unknown category 'Weekly'",
        ),
    ],
)
def test_handler_errors_are_model_errors(server, body, content_type, accept, status, message):
    with pytest.raises(ClientError) as exc:
        runtime(server.url).invoke_endpoint(EndpointName=NAME, Body=body, ContentType=content_type, Accept=accept)
    original_status, original_message = model_error(exc)
    assert original_status == status
    assert message in original_message
    assert f"({status}) from primary" in exc.value.response["Error"]["Message"]


def test_model_output_error_is_a_server_model_error(server, monkeypatch):
    endpoint = server.httpd.endpoints[NAME]
    monkeypatch.setattr(type(endpoint.model), "predict_matrix", lambda self, x: x[:, 0] * float("nan"))
    with pytest.raises(ClientError) as exc:
        runtime(server.url).invoke_endpoint(EndpointName=NAME, Body=json.dumps(GOOD), ContentType="application/json")
    status, message = model_error(exc)
    assert status == 500 and "non-finite probability" in message
    assert "Received server error (500)" in exc.value.response["Error"]["Message"]


def test_unknown_endpoint_and_bad_headers_are_validation_errors(server):
    client = runtime(server.url)
    with pytest.raises(ClientError) as exc:
        client.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nope of account" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        client.invoke_endpoint(
            EndpointName=NAME, Body=json.dumps(GOOD), ContentType="application/json", InferenceId="x" * 65
        )
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert "X-Amzn-SageMaker-Inference-Id" in exc.value.response["Error"]["Message"]


# ----------------------------------------------------------------------------- data capture
def test_capture_layout_and_content(server, capture_root):
    client = runtime(server.url)
    body = json.dumps(GOOD)
    resp = client.invoke_endpoint(
        EndpointName=NAME, Body=body, ContentType="application/json", InferenceId="a1b2c3:2026-11-27"
    )
    answer = resp["Body"].read().decode()
    csv_body = ",".join(GOOD) + "\n" + ",".join(str(v) for v in GOOD.values()) + "\n"
    client.invoke_endpoint(EndpointName=NAME, Body=csv_body, ContentType="text/csv", Accept="text/csv")
    lines_body = json.dumps(GOOD) + "\n"
    client.invoke_endpoint(
        EndpointName=NAME, Body=lines_body, ContentType="application/jsonlines", Accept="application/jsonlines"
    )
    with pytest.raises(ClientError):  # errors are not captured
        client.invoke_endpoint(EndpointName=NAME, Body="{", ContentType="application/json")

    files = list(capture_root.rglob("*.jsonl"))
    assert len(files) == 1  # one file per hour and writer
    rel = files[0].relative_to(capture_root).as_posix()
    assert re.fullmatch(rf"{NAME}/primary/2026/11/27/10/04-05-678-[0-9a-f]{{8}}\.jsonl", rel), rel
    first, as_csv, as_lines = capture_lines(capture_root)
    assert first["eventVersion"] == "0"
    assert first["eventMetadata"]["inferenceId"] == "a1b2c3:2026-11-27"
    assert first["eventMetadata"]["inferenceTime"] == "2026-11-27T10:04:05Z"
    assert re.fullmatch(r"[0-9a-f-]{36}", first["eventMetadata"]["eventId"])
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "application/json",
        "mode": "INPUT",
        "data": body,
        "encoding": "JSON",
    }
    assert first["captureData"]["endpointOutput"] == {
        "observedContentType": "application/json",
        "mode": "OUTPUT",
        "data": answer,
        "encoding": "JSON",
    }
    assert "inferenceId" not in as_csv["eventMetadata"]
    assert as_csv["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert as_csv["captureData"]["endpointInput"]["data"] == csv_body
    assert as_csv["captureData"]["endpointOutput"]["observedContentType"] == "text/csv"
    out = as_lines["captureData"]["endpointOutput"]
    assert out["encoding"] == "BASE64" and "probability" in json.loads(base64.b64decode(out["data"]))


def test_capture_of_an_open_vocabulary_value_keeps_the_marker(served, tmp_path):
    from tests.unit.ml.test_inference_hardening import stub_model

    handler, _ = served
    writer = CaptureWriter(tmp_path / "cap", NAME)
    endpoint = LocalEndpoint(NAME, handler, stub_model(served, "contract"), capture=writer)
    with LocalEndpointServer([endpoint]) as srv:
        runtime(srv.url).invoke_endpoint(
            EndpointName=NAME,
            Body=json.dumps({**GOOD, "contract": "Weekly"}),
            ContentType="application/json",
            InferenceId="s9:2026-11-27",
        )
    (line,) = capture_lines(tmp_path / "cap")
    output = json.loads(line["captureData"]["endpointOutput"]["data"])
    assert output["predictions"][0]["unknown_categories"] == {"contract": "Weekly"}


def test_sampling(tmp_path):
    none = CaptureWriter(tmp_path / "none", NAME, sampling_percent=0)
    half = CaptureWriter(tmp_path / "half", NAME, sampling_percent=50, rng=random.Random(7))
    for _ in range(200):
        assert none.capture(b"{}", "application/json", b"{}", "application/json") is None
        half.capture(b"{}", "application/json", b"{}", "application/json")
    assert not (tmp_path / "none").exists() and none.skipped == 200
    assert 70 < half.captured < 130 and half.captured + half.skipped == 200
    assert len(capture_lines(tmp_path / "half")) == half.captured


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"endpoint": "../escape"}, "endpoint name '../escape': must match"),
        ({"variant": "a/b"}, "variant name 'a/b'"),
        ({"sampling_percent": 101}, "sampling percent 101: must be a number from 0 to 100"),
        ({"sampling_percent": True}, "sampling percent True"),
    ],
)
def test_capture_config_errors(tmp_path, kwargs, message):
    with pytest.raises(CaptureConfigError, match=re.escape(message)):
        CaptureWriter(tmp_path, **{"endpoint": NAME, **kwargs})


def test_capture_rolls_over_to_a_new_hour_folder(tmp_path):
    times = iter([WHEN, WHEN.replace(minute=59), WHEN.replace(hour=11, minute=0)])
    writer = CaptureWriter(tmp_path, NAME, clock=lambda: next(times))
    paths = [writer.capture(b"{}", "application/json", b"{}", "application/json") for _ in range(3)]
    assert paths[0] == paths[1] != paths[2]
    assert paths[2] is not None and paths[2].parent.name == "11"


# ----------------------------------------------------------------------------- InvokeEndpointAsync
def test_invoke_endpoint_async_writes_the_result(server, tmp_path, capture_root):
    source = tmp_path / "input.json"
    source.write_text(json.dumps([GOOD, GOOD]))
    client = runtime(server.url)
    resp = client.invoke_endpoint_async(
        EndpointName=NAME,
        InputLocation=source.as_uri(),
        ContentType="application/json",
        Accept="application/json",
        InferenceId="sub-7:2026-11-27",
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert resp["InferenceId"] == "sub-7:2026-11-27"
    output = Path(resp["OutputLocation"].removeprefix("file://"))
    failure = Path(resp["FailureLocation"].removeprefix("file://"))
    server.drain()
    assert len(json.loads(output.read_text())["predictions"]) == 2
    assert not failure.exists()
    (line,) = capture_lines(capture_root)
    assert line["eventMetadata"]["inferenceId"] == "sub-7:2026-11-27"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**GOOD, "tenure": -3}))
    resp = client.invoke_endpoint_async(EndpointName=NAME, InputLocation=str(bad), ContentType="application/json")
    assert re.fullmatch(r"[0-9a-f-]{36}", resp["InferenceId"])  # generated when the client sends none
    server.drain()
    failure = Path(resp["FailureLocation"].removeprefix("file://"))
    assert "record 0, field 'tenure': value -3 below min 0" in failure.read_text()
    assert not Path(resp["OutputLocation"].removeprefix("file://")).exists()


@pytest.mark.parametrize(
    "location, message",
    [
        ("s3://bucket/async-input/x.json", "reads file:// URLs or local paths, not s3://"),
        ("file:///no/such/input.json", "no such file"),
    ],
)
def test_invoke_endpoint_async_validation(server, location, message):
    with pytest.raises(ClientError) as exc:
        runtime(server.url).invoke_endpoint_async(EndpointName=NAME, InputLocation=location)
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert message in exc.value.response["Error"]["Message"]


# ----------------------------------------------------------------------------- loading the package
def test_local_endpoint_loads_the_packaged_model(pt_package, tmp_path):
    endpoint = local_endpoint(pt_package, tmp_path / "work", NAME, tmp_path / "cap")
    assert endpoint.model.kind == "pytorch" and endpoint.capture is not None
    assert endpoint.handler.__name__ == "twin_served_inference"  # code/inference.py from the package
    with LocalEndpointServer([endpoint]) as srv:
        resp = runtime(srv.url).invoke_endpoint(
            EndpointName=NAME, Body=json.dumps(GOOD), ContentType="application/json"
        )
    assert 0 <= json.loads(resp["Body"].read())["predictions"][0]["probability"] <= 1
    with pytest.raises(FileNotFoundError, match=r"neither a model\.tar\.gz"):
        local_endpoint(tmp_path / "missing.tar.gz", tmp_path / "w2")


def test_concurrent_clients_each_get_their_answer_and_one_capture_line(server, capture_root):
    import threading

    answers: dict[int, float] = {}
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            rt = runtime(server.url)
            for i in range(10):
                tenure = 10 * k + i
                resp = rt.invoke_endpoint(
                    EndpointName=NAME,
                    Body=json.dumps({**GOOD, "tenure": tenure}),
                    ContentType="application/json",
                    InferenceId=f"s{tenure}:2026-11-27",
                )
                answers[tenure] = json.loads(resp["Body"].read())["predictions"][0]["probability"]
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(answers) == list(range(40))
    lines = capture_lines(capture_root)  # every line whole: writes never interleave
    assert sorted(line["eventMetadata"]["inferenceId"] for line in lines) == sorted(
        f"s{t}:2026-11-27" for t in range(40)
    )
    by_id = {line["eventMetadata"]["inferenceId"]: line for line in lines}
    for tenure, p in answers.items():
        out = json.loads(by_id[f"s{tenure}:2026-11-27"]["captureData"]["endpointOutput"]["data"])
        assert out["predictions"][0]["probability"] == p


def test_server_cli_refuses_a_missing_package(tmp_path, capsys):
    from twin.endpoint_server import main

    assert main(["--package", str(tmp_path / "nope.tar.gz"), "--work", str(tmp_path / "w")]) == 2
    assert "neither a model.tar.gz nor an extracted model directory" in capsys.readouterr().err
    assert main(["--package", str(tmp_path), "--endpoint-name", "bad/name", "--work", str(tmp_path / "w")]) == 2
    assert "endpoint name 'bad/name': must match" in capsys.readouterr().err
