"""An erased subscriber stays erased: erasure adds the pseudonym to the suppression list, and the conform and
labels jobs drop that subscriber when an old raw snapshot or labels batch is conformed again."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dataset import inference_ids
from etl import EtlError, erasure, glue_conform, labels, suppression
from etl.pseudonymise import DEV_PSEUDONYMISATION_KEY, hmac_hex
from tests.unit.etl.conftest import PREPAID_HEADER, PREPAID_SCHEMA_PATH, REPO, prepaid_rows, write_csv

pytestmark = pytest.mark.spark
LABELS_SCHEMA = REPO / "dataset" / "schemas" / "churn_labels.yaml"


def pseudonym(clear: str) -> str:
    value = hmac_hex(clear, DEV_PSEUDONYMISATION_KEY)
    assert value is not None
    return value


def conform(spark, lake: Path, snapshot: Path, *extra: str) -> dict:
    argv = [
        "--schema_uri",
        str(PREPAID_SCHEMA_PATH),
        "--input_uri",
        str(snapshot),
        "--curated_uri",
        str(lake / "curated"),
        "--quarantine_uri",
        str(lake / "quarantine"),
        "--allow_dev_key",
        "true",
        *extra,
    ]
    assert glue_conform.main(argv, spark) == 0
    return json.loads((lake / "curated" / "_runs" / "snapshot_date=2026-01-01" / "conform_summary.json").read_text())


def test_a_reconformed_snapshot_does_not_bring_an_erased_subscriber_back(spark, tmp_path: Path, capsys) -> None:
    lake, erased = tmp_path / "lake", pseudonym("A0002")
    snapshot = write_csv(lake / "raw" / "ingest_date=2026-01-01" / "snap.csv", PREPAID_HEADER, prepaid_rows(6))
    listed = str(tmp_path / "curated-root" / "_erased" / "subscribers")
    conform(spark, lake, snapshot, "--suppression_uri", listed)  # no list yet: nothing suppressed
    assert erased in set(pd.read_parquet(lake / "curated")["account_ref"])
    dry = ["--subscriber_id", erased, "--parquet_uris", f"{lake / 'curated'}#account_ref", "--suppression_uri", listed]
    assert erasure.main(dry) == 0 and suppression.read(listed) == frozenset()  # a dry run lists nobody
    assert "would be added to the suppression list" in capsys.readouterr().out
    assert erasure.main([*dry, "--dry_run", "false"]) == 0
    assert suppression.read(listed) == {erased}
    assert erased not in set(pd.read_parquet(lake / "curated")["account_ref"])

    summary = conform(spark, lake, snapshot, "--suppression_uri", listed)  # the old snapshot, again
    kept = set(pd.read_parquet(lake / "curated")["account_ref"])
    assert erased not in kept and len(kept) == 5
    assert (summary["rows_curated"], summary["rows_suppressed"]) == (6, 1)


def test_a_reconformed_labels_batch_does_not_bring_an_erased_subscriber_back(spark, tmp_path: Path) -> None:
    listed = tmp_path / "_erased"
    suppression.add(str(listed), pseudonym("1001"))
    raw = write_csv(
        tmp_path / "raw" / "labels" / "ingest_date=2026-11-20" / "b.csv",
        ["subscriber_id", "churned", "observed_at", "inference_id"],
        [
            ["1001", "yes", "2026-11-19", inference_ids.make(pseudonym("1001"), "2026-10-31")],
            ["1002", "no", "2026-11-19", ""],
        ],
    )
    summary = labels.run(
        [
            "--schema_uri",
            str(LABELS_SCHEMA),
            "--input_uri",
            str(raw),
            "--labels_uri",
            str(tmp_path / "labels"),
            "--quarantine_uri",
            str(tmp_path / "q"),
            "--allow_dev_key",
            "true",
            "--suppression_uri",
            str(listed),
            "--ground_truth_uri",
            str(tmp_path / "gt"),
        ],
        spark,
    )
    table = pd.read_parquet(tmp_path / "labels")
    assert list(table["subscriber_id"]) == [pseudonym("1002")]
    assert (summary["rows_curated"], summary["rows_suppressed"]) == (2, 1)
    assert summary["ground_truth"]["records"] == 0  # the erased subscriber's InferenceId is not written either


def test_the_list_holds_pseudonyms_only(tmp_path: Path) -> None:
    with pytest.raises(EtlError, match="only a pseudonymised id"):
        suppression.add(str(tmp_path), "A0002")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(EtlError, match="1 entries are not pseudonyms"):
        suppression.read(str(tmp_path))
    assert suppression.read(str(tmp_path / "missing")) == frozenset()


def test_the_list_on_s3(fake_aws_credentials) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket="curated", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        for clear in ("a", "b"):
            suppression.add("s3://curated/_erased/subscribers/", pseudonym(clear))
        assert suppression.read("s3://curated/_erased/subscribers") == {pseudonym("a"), pseudonym("b")}


def test_erasure_from_a_request_object_derives_the_pseudonym_and_never_shows_the_clear_id(
    spark, tmp_path: Path, capsys
) -> None:
    lake = tmp_path / "lake"
    snapshot = write_csv(lake / "raw" / "ingest_date=2026-01-01" / "snap.csv", PREPAID_HEADER, prepaid_rows(4))
    conform(spark, lake, snapshot)
    request = lake / "raw" / "erasure-requests" / "ticket-42.json"
    request.parent.mkdir(parents=True)
    request.write_text(json.dumps({"subscriber_id": " A0003 "}))  # trimmed, as conform trims
    listed = str(tmp_path / "_suppression")
    argv = [
        "--request_uri",
        str(request),
        "--parquet_uris",
        f"{lake / 'curated'}#account_ref",
        "--allow_dev_key",
        "true",
        "--suppression_uri",
        listed,
    ]
    assert erasure.main(argv) == 0 and request.exists()  # a dry run keeps the request
    assert erasure.main([*argv, "--dry_run", "false"]) == 0
    out = capsys.readouterr().out
    assert "A0003" not in out and pseudonym("A0003")[:8] in out
    assert pseudonym("A0003") not in set(pd.read_parquet(lake / "curated")["account_ref"])
    assert suppression.read(listed) == {pseudonym("A0003")} and not request.exists()


@pytest.mark.parametrize(
    ("body", "extra", "message"),
    [
        ('{"subscriber_id": ""}', [], 'expected {"subscriber_id"'),
        ("not json", [], "not a JSON object"),
        ('{"subscriber_id": "A1"}', ["--subscriber_id", "a" * 64], "exactly one of --subscriber_id"),
    ],
)
def test_bad_erasure_requests_fail_naming_the_argument(tmp_path: Path, capsys, body: str, extra: list, message: str):
    request = tmp_path / "r.json"
    request.write_text(body)
    argv = ["--request_uri", str(request), "--parquet_uris", str(tmp_path), "--allow_dev_key", "true", *extra]
    assert erasure.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "A1" not in err
