"""The labels feed: a real-shaped batch through the data-quality gate into churn_labels (the labels contract)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dataset import inference_ids
from dataset.schema import SchemaError, load_schema, parse_schema
from dataset.schema_labels import labels_contract
from etl import EtlError, labels
from etl.pseudonymise import DEV_PSEUDONYMISATION_KEY, hmac_hex
from tests.unit.etl.conftest import REPO, write_csv

pytestmark = pytest.mark.spark
LABELS_SCHEMA = REPO / "dataset" / "schemas" / "churn_labels.yaml"
HEADER = ["subscriber_id", "churned", "observed_at", "inference_id"]
BATCH = "2026-11-20"


def pseudonym(clear: str) -> str:
    return hmac_hex(clear, DEV_PSEUDONYMISATION_KEY)


# (raw row, expected dq_codes or None when the row is labelled)
ROWS: list[tuple[list[str], str | None]] = [
    (["1001", "Yes", "2026-11-19", inference_ids.make(pseudonym("1001"), "2026-10-31")], None),
    (["1002", "no", "2026-11-20", ""], None),
    (
        [" 1003 ", "TRUE", "2026-11-01", inference_ids.make(pseudonym("1003"), "2026-10-01")],
        None,
    ),  # trimmed id hashes as '1003'
    (["1004", "0", "2026-11-18", ""], None),
    (["", "yes", "2026-11-19", ""], "NOT_NULL:subscriber_id"),
    (["2001", "maybe", "2026-11-19", ""], "TYPE:churned"),
    (["2002", "no", "2026-02-30", ""], "TYPE:observed_at"),
    (["2003", "no", "2026-11-21", ""], "FUTURE:observed_at"),
    (["2004", "yes", "2026-11-19", "not-an-inference-id"], "FORMAT:inference_id"),
    (["2010", "yes", "2026-11-19", f"{pseudonym('2010')}:2026-10-31"], "FORMAT:inference_id"),  # 75 characters
    (["2005", "yes", "2026-11-19", inference_ids.make(pseudonym("1001"), "2026-10-31")], "MISMATCH:inference_id"),
    (
        ["2006", "yes", "2026-11-19", f"{inference_ids.subscriber_part(pseudonym('2006'))}:2026-13-01"],
        "TYPE:inference_id",
    ),
    (["2007", "yes", "2026-11-19", inference_ids.make(pseudonym("2007"), "2026-11-25")], "FUTURE:inference_id"),
    (["3001", "yes", "2026-11-19", ""], "UNIQUE:subscriber_id"),
    (["3001", "no", "2026-11-10", ""], "UNIQUE:subscriber_id"),
    (["2008", "", "", ""], "NOT_NULL:churned;NOT_NULL:observed_at"),
]


@pytest.fixture(scope="module")
def batch(spark, tmp_path_factory) -> labels.LocalLabelsRun:
    root = tmp_path_factory.mktemp("labels")
    raw = write_csv(root / "in" / "outcomes.csv", HEADER, [row for row, _ in ROWS])
    return labels.run_labels_locally(raw, LABELS_SCHEMA, root / "lake", BATCH, spark)


def test_valid_rows_land_in_the_label_date_partition_with_contract_types(batch):
    table = pd.read_parquet(batch.labels_path)
    assert list(table.columns) == ["subscriber_id", "churned", "observed_at", "inference_id", "label_date"]
    assert set(table["label_date"].astype(str)) == {BATCH}
    assert sorted(table["subscriber_id"]) == sorted(pseudonym(c) for c in ("1001", "1002", "1003", "1004"))
    by_id = table.set_index("subscriber_id")
    assert bool(by_id.loc[pseudonym("1001"), "churned"])
    assert not bool(by_id.loc[pseudonym("1004"), "churned"])
    assert str(by_id.loc[pseudonym("1003"), "observed_at"])[:10] == "2026-11-01"
    assert by_id.loc[pseudonym("1003"), "inference_id"] == inference_ids.make(pseudonym("1003"), "2026-10-01")
    assert pd.isna(by_id.loc[pseudonym("1002"), "inference_id"])
    files = list((batch.labels_path / f"label_date={BATCH}").glob("*.parquet"))
    import pyarrow.parquet as pq

    types = {f.name: str(f.type) for f in pq.read_schema(files[0])}
    assert types == {
        "subscriber_id": "string",
        "churned": "bool",
        "observed_at": "date32[day]",
        "inference_id": "string",
    }


def test_bad_rows_are_quarantined_with_codes_and_reasons(batch):
    quarantined = pd.read_parquet(batch.quarantine_path)
    expected = sorted(code for _, code in ROWS if code)
    assert sorted(quarantined["dq_codes"]) == expected
    reasons = dict(zip(quarantined["dq_codes"], quarantined["dq_reason"], strict=False))
    assert reasons["FUTURE:observed_at"] == "observed_at: 2026-11-21 is after the batch's label_date 2026-11-20"
    assert reasons["TYPE:churned"].startswith("churned: 'maybe' is not a boolean token")
    assert reasons["FORMAT:inference_id"] == (
        "inference_id: 'not-an-inference-id' is not <subscriber id's first 53 characters>:<YYYY-MM-DD>"
    )
    assert reasons["MISMATCH:inference_id"] == "inference_id: names another subscriber than this row's subscriber_id"
    assert reasons["TYPE:inference_id"] == "inference_id: scoring date '2026-13-01' is not a valid date"
    assert reasons["FUTURE:inference_id"] == (
        "inference_id: scoring date 2026-11-25 is after the batch's label_date 2026-11-20"
    )
    assert reasons["UNIQUE:subscriber_id"] == "subscriber_id: duplicate id (2 rows)"
    # the quarantine keeps the raw strings as delivered, like the subscriber quarantine
    assert "2026-02-30" in set(quarantined["observed_at"])


def test_summary_accounts_for_every_row(batch):
    s = batch.summary
    assert (s["rows_in"], s["rows_curated"], s["rows_quarantined"]) == (len(ROWS), 4, len(ROWS) - 4)
    assert s["failures_by_rule"]["UNIQUE:subscriber_id"] == 2
    assert s["label_date"] == BATCH
    on_disk = json.loads(Path(s["summary_uri"]).read_text())
    assert on_disk["rows_quarantined"] == len(ROWS) - 4 and on_disk["key_source"] == "local-dev-key"


def test_labels_with_an_inference_id_become_model_monitor_ground_truth(spark, tmp_path):
    """Model Monitor's merge format, in the label_date's folder; rows without an InferenceId counted, not written."""
    raw = write_csv(tmp_path / "in.csv", HEADER, [row for row, _ in ROWS])
    run = labels.run_labels_locally(raw, LABELS_SCHEMA, tmp_path / "lake", BATCH, spark, tmp_path / "gt")
    target = tmp_path / "gt" / "2026" / "11" / "20" / "00" / f"churn-labels-{BATCH}.jsonl"
    assert run.summary["ground_truth"] == {"uri": str(target), "records": 2, "without_inference_id": 2}
    assert run.summary["outputs"]["ground_truth"] == str(target)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    expected = {
        inference_ids.make(pseudonym("1001"), "2026-10-31"): "1",  # churned Yes
        inference_ids.make(pseudonym("1003"), "2026-10-01"): "1",  # churned TRUE
    }
    assert {line["eventMetadata"]["eventId"]: line["groundTruthData"]["data"] for line in lines} == expected
    for line in lines:
        assert line["groundTruthData"]["encoding"] == "CSV" and line["eventVersion"] == "0"
        assert set(line) == {"groundTruthData", "eventMetadata", "eventVersion"}
    # A re-delivered batch replaces its ground truth object, as it replaces its partition.
    again = write_csv(tmp_path / "again.csv", HEADER, [["1001", "no", "2026-11-19", next(iter(expected))]])
    labels.run_labels_locally(again, LABELS_SCHEMA, tmp_path / "lake", BATCH, spark, tmp_path / "gt")
    [line] = [json.loads(line) for line in target.read_text().splitlines()]
    assert line["groundTruthData"]["data"] == "0"


def test_ground_truth_lines_are_one_json_object_per_label():
    assert json.loads(labels.ground_truth_line("abc:2026-10-31", False)) == {
        "groundTruthData": {"data": "0", "encoding": "CSV"},
        "eventMetadata": {"eventId": "abc:2026-10-31"},
        "eventVersion": "0",
    }
    assert labels.ground_truth_key("2026-01-05") == "2026/01/05/00/churn-labels-2026-01-05.jsonl"


def test_ground_truth_goes_to_s3_as_one_object(fake_aws_credentials):
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="ml-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        key = "monitoring/telecom-ml-dev-churn/ground-truth/2026/11/20/00/churn-labels-2026-11-20.jsonl"
        rows = [("a:2026-11-01", True), ("b:2026-11-02", False)]
        assert labels.write_ground_truth_lines(rows, f"s3://ml-artifacts/{key}") == 2
        body = s3.get_object(Bucket="ml-artifacts", Key=key)["Body"].read().decode().splitlines()
    assert [json.loads(line)["groundTruthData"]["data"] for line in body] == ["1", "0"]


def test_redelivered_batch_replaces_only_its_partition(spark, tmp_path):
    lake = tmp_path / "lake"
    first = write_csv(tmp_path / "a.csv", HEADER, [["1", "yes", "2026-11-01", ""]])
    labels.run_labels_locally(first, LABELS_SCHEMA, lake, "2026-11-01", spark)
    second = write_csv(tmp_path / "b.csv", HEADER, [["2", "no", "2026-11-02", ""], ["3", "no", "2026-11-02", ""]])
    labels.run_labels_locally(second, LABELS_SCHEMA, lake, "2026-11-02", spark)
    again = write_csv(tmp_path / "c.csv", HEADER, [["4", "no", "2026-11-02", ""]])
    labels.run_labels_locally(again, LABELS_SCHEMA, lake, "2026-11-02", spark)
    table = pd.read_parquet(lake / "labels")
    counts = table.groupby(table["label_date"].astype(str)).size().to_dict()
    assert counts == {"2026-11-01": 1, "2026-11-02": 1}


def test_bad_batches_fail_with_a_message_naming_the_file(spark, tmp_path):
    header_only = write_csv(tmp_path / "empty.csv", HEADER, [])
    with pytest.raises(EtlError, match="header but no data rows"):
        labels.run_labels_locally(header_only, LABELS_SCHEMA, tmp_path / "lake", BATCH, spark)
    missing = write_csv(tmp_path / "short.csv", ["subscriber_id", "churned"], [["1", "yes"]])
    with pytest.raises(EtlError, match=r"short\.csv.*observed_at"):
        labels.run_labels_locally(missing, LABELS_SCHEMA, tmp_path / "lake", BATCH, spark)
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    ok = write_csv(tmp_path / "ok.csv", HEADER, [["1", "yes", "2026-11-01", ""]])
    with pytest.raises(EtlError, match=f"ingest_date {tomorrow} is in the future"):
        labels.run_labels_locally(ok, LABELS_SCHEMA, tmp_path / "lake", tomorrow, spark)


def test_glue_entry_point_exit_codes(spark, tmp_path):
    raw = write_csv(
        tmp_path / "raw" / "labels" / f"ingest_date={BATCH}" / "x.csv", HEADER, [["1", "yes", "2026-11-01", ""]]
    )
    args = [
        "--JOB_NAME",
        "labels",
        "--schema_uri",
        str(LABELS_SCHEMA),
        "--input_uri",
        str(raw),
        "--labels_uri",
        str(tmp_path / "labels"),
        "--quarantine_uri",
        str(tmp_path / "q"),
    ]
    assert labels.main([*args, "--allow_dev_key", "true"], spark) == 0
    assert labels.main(args, spark) == 2  # no secret and no dev key: refused
    no_date = write_csv(tmp_path / "raw" / "labels" / "x.csv", HEADER, [["1", "yes", "2026-11-01", ""]])
    bad = [a if a != str(raw) else str(no_date) for a in args]
    assert labels.main([*bad, "--allow_dev_key", "true"], spark) == 2


def _labels_doc(**changes: object) -> dict:
    import yaml

    doc = yaml.safe_load(LABELS_SCHEMA.read_text())
    for column in doc["columns"]:
        column.update(changes.get(column["name"], {}))  # type: ignore[call-overload]
    return doc


def test_the_shipped_schema_matches_contract_c5():
    contract = labels_contract(load_schema(LABELS_SCHEMA))
    assert not contract.pseudonymised_in_raw
    assert date.fromisoformat(BATCH)  # the fixture's batch date is a real date


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"churned": {"type": "string", "role": "target"}}, "'churned' must be type boolean with role target"),
        ({"inference_id": {"checks": {"not_null": True}}}, "'inference_id' is optional in the labels contract"),
        ({"observed_at": {"name": "seen_at"}}, r"missing \['observed_at'\], not allowed \['seen_at'\]"),
    ],
)
def test_a_labels_schema_that_breaks_the_contract_is_refused(changes, message):
    with pytest.raises(SchemaError, match=message):
        labels_contract(parse_schema(_labels_doc(**changes), "labels.yaml"))
