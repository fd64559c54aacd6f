from __future__ import annotations

import json

import pytest

from dataset.schema import SchemaError
from etl import EtlError
from etl.lake_io import (
    join,
    load_schema_uri,
    parse_bool,
    partition_uri,
    read_text,
    snapshot_date_from_uri,
    write_json,
)
from tests.unit.etl.conftest import PREPAID_SCHEMA_PATH


def test_snapshot_date_from_uri() -> None:
    assert snapshot_date_from_uri("s3://raw/subscribers/ingest_date=2026-01-31/part.csv") == "2026-01-31"
    with pytest.raises(EtlError, match="no 'ingest_date=YYYY-MM-DD' path segment"):
        snapshot_date_from_uri("s3://raw/subscribers/2026-01-31/part.csv")
    with pytest.raises(EtlError, match="conflicting ingest_date"):
        snapshot_date_from_uri("s3://r/ingest_date=2026-01-01/ingest_date=2026-01-02/x.csv")


def test_uri_helpers_and_bool() -> None:
    assert join("s3://b/curated/", "_runs", "x.json") == "s3://b/curated/_runs/x.json"
    assert partition_uri("/tmp/c", "2026-01-01") == "/tmp/c/snapshot_date=2026-01-01"
    assert parse_bool(" TRUE ", "--x") is True and parse_bool("false", "--x") is False
    with pytest.raises(EtlError, match="--allow_dev_key: expected true or false, got 'maybe'"):
        parse_bool("maybe", "--allow_dev_key")


def test_schema_and_summary_on_s3(monkeypatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for var, val in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(var, val)
    with moto.mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="schemas/prepaid.yaml", Body=PREPAID_SCHEMA_PATH.read_bytes())
        schema = load_schema_uri("s3://lake/schemas/prepaid.yaml")
        assert schema.name == "prepaid_churn" and schema.id_column == "account_ref"
        write_json("s3://lake/curated/_runs/snapshot_date=2026-01-01/conform_summary.json", {"rows_in": 3})
        assert json.loads(read_text("s3://lake/curated/_runs/snapshot_date=2026-01-01/conform_summary.json")) \
            == {"rows_in": 3}
        with pytest.raises(SchemaError, match=r"cannot read s3://lake/schemas/absent\.yaml"):
            load_schema_uri("s3://lake/schemas/absent.yaml")
