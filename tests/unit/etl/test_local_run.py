"""run_lake_locally end to end: the real IBM Telco data and the second (prepaid) schema."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from etl import EtlError
from etl.cdr_generator import generate, read_ids
from etl.local_run import LakeRunResult, main, run_lake_locally
from etl.pseudonymise import DEV_PSEUDONYMISATION_KEY, hmac_hex
from tests.unit.etl.conftest import (
    IBM_SCHEMA_PATH,
    PREPAID_HEADER,
    PREPAID_SCHEMA_PATH,
    prepaid_rows,
    write_csv,
)

pytestmark = pytest.mark.spark


def _ids_in_files(root: Path) -> set[str]:
    """Distinct subscriber ids of the parseable CDR lines (independent of Spark)."""
    out = set()
    for p in root.rglob("*.json"):
        for line in p.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("subscriber_id") and rec.get("duration_seconds", 0) >= 0 and "noon" not in rec["event_time"]:
                out.add(rec["subscriber_id"])
    return out


def test_ibm_telco_end_to_end_with_cdrs(spark, ibm_csv: Path, ibm_schema, tmp_path: Path) -> None:
    ids = read_ids(ibm_csv, ibm_schema.id_column)
    generate(ids[:5000], 20000, 30, date(2025, 12, 31), 1, tmp_path / "cdr", malformed=2)
    res = run_lake_locally(ibm_csv, IBM_SCHEMA_PATH, tmp_path / "lake", tmp_path / "cdr")
    assert isinstance(res, LakeRunResult)
    assert (res.rows_in, res.rows_curated, res.rows_quarantined) == (7043, 7043, 0)
    assert res.usage_subscribers == len(_ids_in_files(tmp_path / "cdr")) > 4000
    assert res.cdr_records_quarantined == 2
    feats = pd.read_parquet(res.features_path)
    assert feats.shape == (7043, 3 + len(ibm_schema.raw_feature_columns))
    assert list(feats.columns[:1]) == ["subscriber_id"] and "usage_calls" not in feats.columns
    curated = pd.read_parquet(res.curated_path)
    assert len(curated) == 7043 and len(pd.read_parquet(res.quarantine_path)) == 0
    assert (curated.loc[curated["tenure"] == 0, "total_charges"] == 0.0).sum() == 11
    assert (res.curated_path / "snapshot_date=2026-01-01").is_dir()


def test_second_schema_end_to_end(spark, tmp_path: Path, prepaid_schema) -> None:
    rows = prepaid_rows(40)
    rows[0][1] = ""              # phone number missing -> quarantined
    rows[1][0] = rows[2][0]      # duplicate account ref -> both quarantined
    raw = write_csv(tmp_path / "prepaid.csv", PREPAID_HEADER, rows)
    generate([f"A{i:04d}" for i in range(1, 31)], 3000, 14, date(2026, 3, 31), 4, tmp_path / "cdr")
    res = run_lake_locally(raw, PREPAID_SCHEMA_PATH, tmp_path / "lake", tmp_path / "cdr",
                           snapshot_date="2026-04-01")
    assert (res.rows_in, res.rows_curated, res.rows_quarantined) == (40, 37, 3)
    q = pd.read_parquet(res.quarantine_path)
    assert sorted(q["dq_reason"]) == ["account_ref: duplicate id (2 rows)"] * 2 + ["phone_number: missing value"]
    feats = pd.read_parquet(res.features_path)
    assert len(feats) == 37
    assert [c for c in feats.columns if c.startswith("usage_")] == list(prepaid_schema.usage.features)
    by_id = feats.set_index("account_ref")
    assert by_id.loc[hmac_hex("A0035", DEV_PSEUDONYMISATION_KEY), "usage_calls"] == 0
    assert by_id.loc[hmac_hex("A0010", DEV_PSEUDONYMISATION_KEY), "usage_calls"] > 0
    assert res.usage_subscribers == len(_ids_in_files(tmp_path / "cdr")) == 29  # one of the 30 accounts drew no events
    curated = pd.read_parquet(res.curated_path)
    assert set(curated["phone_number"]) <= {hmac_hex(r[1], DEV_PSEUDONYMISATION_KEY) for r in rows}
    assert res.snapshot_date == "2026-04-01"


def test_cli_and_errors(spark, tmp_path: Path, capsys) -> None:
    raw = write_csv(tmp_path / "p.csv", PREPAID_HEADER, prepaid_rows(6))
    assert main(["--schema", str(PREPAID_SCHEMA_PATH), "--data", str(raw), "--out", str(tmp_path / "out")]) == 0
    assert "6 rows in = 6 curated + 0 quarantined" in capsys.readouterr().out
    with pytest.raises(EtlError, match="not found"):
        run_lake_locally(tmp_path / "absent.csv", PREPAID_SCHEMA_PATH, tmp_path / "o")
    assert main(["--schema", str(PREPAID_SCHEMA_PATH), "--data", str(raw), "--out", str(tmp_path / "o2"),
                 "--snapshot-date", "2026-13-01"]) == 2
    assert "not a date" in capsys.readouterr().err
