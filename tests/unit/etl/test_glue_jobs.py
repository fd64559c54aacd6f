"""Both Glue entry points run locally via main([...]) with the documented arguments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from etl import glue_conform, glue_features
from etl.cdr_generator import generate
from etl.pseudonymise import DEV_PSEUDONYMISATION_KEY, hmac_hex
from tests.unit.etl.conftest import PREPAID_HEADER, PREPAID_SCHEMA_PATH, prepaid_rows, write_csv

pytestmark = pytest.mark.spark
GLUE_NOISE = ["--JOB_NAME", "conform-job", "--job-bookmark-option", "job-bookmark-disable",
              "--TempDir", "s3://x/tmp"]


def _conform_args(lake: Path, csv_path: Path, schema: Path = PREPAID_SCHEMA_PATH) -> list[str]:
    return ["--schema_uri", str(schema), "--input_uri", str(csv_path),
            "--curated_uri", str(lake / "curated"), "--quarantine_uri", str(lake / "quarantine")]


def _land(lake: Path, day: str, rows: list[list[str]]) -> Path:
    return write_csv(lake / "raw" / f"ingest_date={day}" / "snap.csv", PREPAID_HEADER, rows)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A prepaid lake: snapshot 2026-01-01 (30 good + 2 bad rows) and CDRs for 20 of the accounts."""
    root = tmp_path_factory.mktemp("lake")
    rows = prepaid_rows(30)
    bad = prepaid_rows(32)[30:]
    bad[0][5] = "9"       # age below min 16
    bad[1][4] = "family"  # unknown plan
    csv_path = _land(root, "2026-01-01", rows + bad)
    rc = glue_conform.main([*GLUE_NOISE, *_conform_args(root, csv_path), "--allow_dev_key", "true"], spark)
    assert rc == 0
    ids = [f"A{i:04d}" for i in range(1, 21)] + ["Z9999"]  # Z9999: CDRs of an unknown subscriber
    generate(ids, 4000, 20, date(2025, 12, 31), 21, root / "cdr", malformed=3)
    rc = glue_features.main([
        *GLUE_NOISE, "--schema_uri", str(PREPAID_SCHEMA_PATH), "--curated_uri", str(root / "curated"),
        "--cdr_uri", str(root / "cdr"), "--cdr_quarantine_uri", str(root / "cdr_quarantine"),
        "--features_uri", str(root / "features"), "--allow_dev_key", "true",
        "--pseudonymisation_secret_id", "",
    ], spark)
    assert rc == 0
    return root


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())


def test_conform_outputs_and_summary(lake: Path) -> None:
    s = _summary(lake / "curated" / "_runs" / "snapshot_date=2026-01-01" / "conform_summary.json")
    assert (s["rows_in"], s["rows_curated"], s["rows_quarantined"]) == (32, 30, 2)
    assert s["null_fills"] == {"arpu": 10} and s["key_source"] == "local-dev-key"
    curated = pd.read_parquet(lake / "curated")
    assert len(curated) == 30 and set(curated["snapshot_date"].astype(str)) == {"2026-01-01"}
    assert hmac_hex("A0001", DEV_PSEUDONYMISATION_KEY) in set(curated["account_ref"])
    q = pd.read_parquet(lake / "quarantine").set_index("account_ref")
    assert q.loc["A0031", "dq_reason"] == "age: value 9 below min 16"
    assert q.loc["A0032", "dq_reason"] == "plan: 'family' not in allowed values"


def _hand_counts(cdr_root: Path, sub: str, start: datetime, end: datetime) -> tuple[int, float]:
    calls, secs = 0, 0
    for p in cdr_root.rglob("*.json"):
        for line in p.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if r.get("subscriber_id") != sub or r.get("event_type") != "voice":
                continue
            ts = datetime.fromisoformat(r["event_time"].replace("Z", "+00:00")) \
                if r["event_time"].endswith("Z") else None
            if ts and start <= ts < end and r["duration_seconds"] >= 0:
                calls += 1
                secs += r["duration_seconds"]
    return calls, secs / 60


def test_features_table(lake: Path, prepaid_schema) -> None:
    feats = pd.read_parquet(lake / "features")
    usage = list(prepaid_schema.usage.features)
    assert list(feats.columns) == ["account_ref", "plan", "age", "months_active", "arpu", *usage,
                                   "roaming", "left_operator", "snapshot_date"]
    assert len(feats) == 30
    assert str(feats["roaming"].dtype) == "bool" and str(feats["left_operator"].dtype) == "int32"
    assert set(feats["left_operator"]) == {0, 1}
    by_id = feats.set_index("account_ref")
    # accounts 21..30 have no CDRs: all usage features are zero
    no_cdr = by_id.loc[[hmac_hex(f"A{i:04d}", DEV_PSEUDONYMISATION_KEY) for i in range(21, 31)], usage]
    assert (no_cdr == 0).all().all()
    # independent check against the JSON files: 14 full days before 2026-01-01
    end = datetime(2026, 1, 1, tzinfo=UTC)
    calls, minutes = _hand_counts(lake / "cdr", "A0001", end - timedelta(days=14), end)
    row = by_id.loc[hmac_hex("A0001", DEV_PSEUDONYMISATION_KEY)]
    assert calls > 0
    assert row["usage_calls"] == calls
    assert row["usage_minutes"] == pytest.approx(minutes)


def test_features_summary_and_cdr_quarantine(lake: Path) -> None:
    s = _summary(lake / "features" / "_runs" / "snapshot_date=2026-01-01" / "features_summary.json")
    assert s["snapshot_date"] == "2026-01-01" and s["feature_rows"] == 30 == s["curated_rows"]
    cdr = s["cdr"]
    assert cdr["records_in"] == 4003 and cdr["records_invalid"] == 3
    assert cdr["records_in"] == cdr["records_used"] + cdr["records_out_of_window"] + cdr["records_quarantined"]
    assert cdr["records_out_of_window"] > 0  # 20 days generated, 14-day window
    assert s["usage_subscribers"] == 21 and s["usage_subscribers_matched"] == 20
    q = pd.read_parquet(lake / "cdr_quarantine")
    assert len(q) == cdr["records_quarantined"] and q["dq_reason"].notna().all()


def test_conform_rejects_bad_arguments(spark, tmp_path: Path, capsys) -> None:
    rows = prepaid_rows(3)
    no_date = write_csv(tmp_path / "raw" / "snap.csv", PREPAID_HEADER, rows)
    assert glue_conform.main([*_conform_args(tmp_path, no_date), "--allow_dev_key", "true"], spark) == 2
    assert "no 'ingest_date=YYYY-MM-DD' path segment" in capsys.readouterr().err
    dated = _land(tmp_path, "2026-02-01", rows)
    assert glue_conform.main(_conform_args(tmp_path, dated), spark) == 2
    assert "--allow_dev_key true" in capsys.readouterr().err
    bad_date = _land(tmp_path, "2026-02-31", rows)
    assert glue_conform.main([*_conform_args(tmp_path, bad_date), "--allow_dev_key", "true"], spark) == 2
    assert "not a date" in capsys.readouterr().err
    empty = write_csv(tmp_path / "raw" / "ingest_date=2026-03-01" / "e.csv", PREPAID_HEADER, [])
    assert glue_conform.main([*_conform_args(tmp_path, empty), "--allow_dev_key", "true"], spark) == 2
    assert "no data rows" in capsys.readouterr().err


def test_partition_overwrite_latest_default_and_json_schema(spark, tmp_path: Path, capsys) -> None:
    schema_json = tmp_path / "prepaid.json"
    schema_json.write_text(json.dumps(yaml.safe_load(PREPAID_SCHEMA_PATH.read_text())))
    for day, n in (("2026-01-01", 5), ("2026-02-01", 7)):
        csv_path = _land(tmp_path, day, prepaid_rows(n))
        assert glue_conform.main([*_conform_args(tmp_path, csv_path, schema_json),
                                  "--allow_dev_key", "true"], spark) == 0
    # re-run January with 3 rows: only that partition changes
    csv_path = _land(tmp_path, "2026-01-01", prepaid_rows(3))
    assert glue_conform.main([*_conform_args(tmp_path, csv_path, schema_json), "--allow_dev_key", "true"],
                             spark) == 0
    counts = pd.read_parquet(tmp_path / "curated")["snapshot_date"].astype(str).value_counts().to_dict()
    assert counts == {"2026-01-01": 3, "2026-02-01": 7}
    feats_args = ["--schema_uri", str(schema_json), "--curated_uri", str(tmp_path / "curated"),
                  "--features_uri", str(tmp_path / "features")]
    assert glue_features.main(feats_args, spark) == 0  # no CDRs: no key needed, usage = 0
    feats = pd.read_parquet(tmp_path / "features")
    assert set(feats["snapshot_date"].astype(str)) == {"2026-02-01"} and len(feats) == 7
    assert (feats[["usage_calls", "usage_minutes"]] == 0).all().all()
    assert glue_features.main([*feats_args, "--snapshot_date", "2025-12-01"], spark) == 2
    assert "no partition snapshot_date=2025-12-01" in capsys.readouterr().err


def test_invariant_failure_exits_non_zero(spark, tmp_path: Path, monkeypatch, capsys) -> None:
    csv_path = _land(tmp_path, "2026-01-01", prepaid_rows(4))
    monkeypatch.setattr(glue_conform, "count_parquet", lambda _spark, _uri: 0)
    assert glue_conform.main([*_conform_args(tmp_path, csv_path), "--allow_dev_key", "true"], spark) == 1
    assert "INVARIANT FAILED" in capsys.readouterr().err
    assert not (tmp_path / "curated" / "_runs").exists()  # no success summary written


def test_key_from_secrets_manager(spark, tmp_path: Path, fake_aws_credentials) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    with moto.mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="telecom-ml/pseudonymisation", SecretString=json.dumps({"key": "moto-secret-key-0123456789"}))
        csv_path = _land(tmp_path, "2026-01-05", prepaid_rows(2))
        assert glue_conform.main([*_conform_args(tmp_path, csv_path), "--pseudonymisation_secret_id",
                                  "telecom-ml/pseudonymisation"], spark) == 0
    curated = pd.read_parquet(tmp_path / "curated")
    assert set(curated["account_ref"]) == {hmac_hex(f"A000{i}", b"moto-secret-key-0123456789") for i in (1, 2)}
    s = _summary(tmp_path / "curated" / "_runs" / "snapshot_date=2026-01-05" / "conform_summary.json")
    assert s["key_source"] == "secretsmanager:telecom-ml/pseudonymisation"
