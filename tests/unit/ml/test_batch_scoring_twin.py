"""The twin's batch scoring: the whole real table through the packaged handler, mini-batched as the
transform does, into the local scores table; the same probabilities as scoring the table in one call."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.record_validation import ClientError
from training_jobs import compile_model
from twin.batch_score import JSON, JSON_LINES, batch_score, local_package_arn, mini_batches
from twin.serve import _load_handler

from .conftest import SCHEMA

ARN = local_package_arn("churn-ibm_telco_churn", 2)


@pytest.fixture(scope="module")
def xgb_package(tmp_path_factory, xgb_model) -> Path:
    out = tmp_path_factory.mktemp("xgb-package")
    assert compile_model.main(["--model-dir", str(xgb_model), "--output-dir", str(out)]) == 0
    return out / "model.tar.gz"


def one_call_probabilities(package: Path, records: list[dict], where: Path) -> np.ndarray:
    """The table scored in a single application/json request, for comparison."""
    with tarfile.open(package) as tar:
        tar.extractall(where, filter="data")
    handler = _load_handler(where / "code")
    model = handler.model_fn(str(where))
    handler.MAX_RECORDS = len(records)
    body = json.dumps({"instances": records}).encode()
    answer = handler.output_fn(handler.predict_fn(handler.input_fn(body, JSON), model), JSON)
    return np.array([p["probability"] for p in json.loads(answer)["predictions"]])


def test_the_twin_scores_the_whole_table_like_the_transform(tmp_path, raw_csv, xgb_package) -> None:
    summary = batch_score(
        raw_csv,
        xgb_package,
        SCHEMA,
        tmp_path / "work",
        tmp_path / "scores",
        model_package_arn=ARN,
        scoring_date="2026-11-27",
        snapshot_date="2026-11-01",
        content_type=JSON,
        max_payload_mb=1,
        shard_rows=4000,
    )
    assert summary["rows"] == 7043 and summary["model_kind"] == "xgboost"
    assert summary["mini_batches"] >= 3  # 7,043 records of ~400 bytes do not fit one 1 MB payload
    scores = pd.read_parquet(tmp_path / "scores" / "scoring_date=2026-11-27" / "scores.parquet")
    assert summary["scores"] == str(tmp_path / "scores" / "scoring_date=2026-11-27" / "scores.parquet")
    requests = [
        json.loads(line)
        for p in sorted((tmp_path / "work" / "prepare" / "requests").glob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    expected = one_call_probabilities(xgb_package, requests, tmp_path / "direct")
    source_ids = pd.read_csv(raw_csv, dtype=str)["subscriber_id"].tolist()
    assert scores["subscriber_id"].tolist() == source_ids
    assert np.allclose(scores["probability"].to_numpy(), expected, atol=1e-7)
    assert set(scores["label"]) == {"Yes", "No"}
    assert set(scores["model_package_arn"]) == {ARN}
    assert ARN == "arn:aws:sagemaker:local:000000000000:model-package/churn-ibm-telco-churn/2"
    # The retention team's question: who are the 10% most likely to churn, and do they churn more?
    churned = pd.read_csv(raw_csv, dtype=str).set_index("subscriber_id")["churn"] == "Yes"
    top = scores.loc[scores["decile"] == 1, "subscriber_id"]
    assert churned[top].mean() > 2 * churned.mean()


class JsonLinesMissing(Exception):
    """The handler refused application/jsonlines as an unsupported content type (and nothing else)."""


@pytest.mark.xfail(
    strict=True,
    raises=JsonLinesMissing,
    reason="serving/inference.py has no application/jsonlines path yet (another branch adds it)",
)
def test_the_twin_scores_through_the_handlers_json_lines_path(tmp_path, raw_csv, xgb_package) -> None:
    try:
        summary = batch_score(
            raw_csv,
            xgb_package,
            SCHEMA,
            tmp_path / "work",
            tmp_path / "scores",
            model_package_arn=ARN,
            scoring_date="2026-11-27",
            snapshot_date="2026-11-01",
            content_type=JSON_LINES,
        )
    except ClientError as exc:
        if "unsupported content type 'application/jsonlines'" in str(exc):
            raise JsonLinesMissing(str(exc)) from exc
        raise
    assert summary["rows"] == 7043 and summary["content_type"] == JSON_LINES
    json_path = batch_score(
        raw_csv,
        xgb_package,
        SCHEMA,
        tmp_path / "work-json",
        tmp_path / "scores-json",
        model_package_arn=ARN,
        scoring_date="2026-11-27",
        snapshot_date="2026-11-01",
        content_type=JSON,
    )
    lines = pd.read_parquet(summary["scores"])
    lists = pd.read_parquet(json_path["scores"])
    assert lines["subscriber_id"].tolist() == lists["subscriber_id"].tolist()
    assert np.allclose(lines["probability"], lists["probability"], atol=1e-7)


def test_mini_batches_keep_order_and_respect_the_payload(tmp_path) -> None:
    lines = [json.dumps({"i": i, "pad": "x" * (i % 7)}) for i in range(50)]
    path = tmp_path / "requests-00000.jsonl"
    path.write_text("\n".join(lines) + "\n")
    batches = list(mini_batches(path, 100))
    assert [line for batch in batches for line in batch] == lines
    assert all(sum(len(line) + 1 for line in batch) <= 100 for batch in batches)
    assert len(list(mini_batches(path, 10))) == 50  # a line longer than the payload goes alone
