"""Conform + data-quality gate on the real IBM Telco data and on crafted bad rows."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from etl import EtlError, InvariantError
from etl.conform import (
    align_columns,
    conform_subscribers,
    curated_projection,
    read_raw_snapshot,
    typed_frame,
)
from etl.pseudonymise import hmac_hex
from etl.quality import gate
from tests.unit.etl.conftest import PREPAID_HEADER, TEST_KEY, prepaid_rows, write_csv

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def ibm_result(spark, ibm_schema, ibm_csv):
    return conform_subscribers(read_raw_snapshot(spark, str(ibm_csv)), ibm_schema, TEST_KEY, str(ibm_csv))


def test_ibm_rows_in_equals_curated_plus_quarantined(ibm_result) -> None:
    assert ibm_result.rows_in == 7043
    assert ibm_result.rows_curated + ibm_result.rows_quarantined == 7043
    # The published data is clean once the explicit null_fill rule is applied.
    assert (ibm_result.rows_curated, ibm_result.rows_quarantined) == (7043, 0)
    assert ibm_result.curated.count() == 7043
    assert ibm_result.quarantined.count() == 0


def test_ibm_blank_total_charges_filled_by_rule(ibm_result, ibm_schema, ibm_csv) -> None:
    with open(ibm_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    blank_ids = sorted(r[ibm_schema.id_column] for r in rows if not r["total_charges"].strip())
    assert len(blank_ids) == 11
    assert ibm_result.null_fills == {"total_charges": 11}
    filled = ibm_result.curated.filter("tenure = 0").select("subscriber_id", "total_charges").collect()
    assert len(filled) == 11
    assert all(r["total_charges"] == 0.0 for r in filled)
    assert sorted(r["subscriber_id"] for r in filled) == sorted(hmac_hex(i, TEST_KEY) for i in blank_ids)


def test_ibm_types_target_and_pseudonymised_ids(ibm_result, ibm_schema) -> None:
    types = dict(ibm_result.curated.dtypes)
    assert types["churn"] == "int" and types["tenure"] == "int"
    assert types["monthly_charges"] == "double" and types["total_charges"] == "double"
    assert all(types[c] == "boolean" for c in ibm_schema.boolean_columns)
    assert all(types[c] == "string" for c in ibm_schema.categorical_columns)
    churn = {r["churn"]: r["count"] for r in ibm_result.curated.groupBy("churn").count().collect()}
    assert churn == {1: 1869, 0: 5174}  # 1,869 "Yes" in the published data
    ids = [r["subscriber_id"] for r in ibm_result.curated.select("subscriber_id").collect()]
    assert len(set(ids)) == 7043
    assert hmac_hex("1", TEST_KEY) in set(ids) and "1" not in set(ids)


GOOD = ["9001", "No", "1", "0", "1", "0", "12", "1", "No", "DSL", "Yes", "No", "No", "No", "No", "No",
        "One year", "0", "Mailed check", "50.5", "606"]


def _row(**changes: str) -> list[str]:
    header = _ibm_header()
    row = list(GOOD)
    for k, v in changes.items():
        row[header.index(k)] = v
    return row


def _ibm_header() -> list[str]:
    from dataset.schema import load_schema
    from tests.unit.etl.conftest import IBM_SCHEMA_PATH

    return load_schema(IBM_SCHEMA_PATH).source_columns


CRAFTED = {
    # id -> (row changes, expected reason fragments)
    "9101": ({"tenure": "abc"}, ["tenure: cannot parse 'abc' as integer"]),
    "9102": ({"tenure": "1.5"}, ["tenure: cannot parse '1.5' as integer"]),
    "9103": ({"monthly_charges": "NaN"}, ["monthly_charges: cannot parse 'NaN' as double"]),
    "9104": ({"tenure": "150"}, ["tenure: value 150 above max 120"]),
    "9105": ({"monthly_charges": "-3"}, ["monthly_charges: value -3 below min 0"]),
    "9106": ({"contract": "Weekly"}, ["contract: 'Weekly' not in allowed values"]),
    "9107": ({"partner": "maybe"}, ["partner: 'maybe' is not a boolean token"]),
    "9108": ({"churn": ""}, ["churn: missing value"]),
    "9109": ({"total_charges": "", "tenure": "5"}, ["total_charges: missing value"]),
    "9110": ({"tenure": "150", "contract": "Weekly"},
             ["tenure: value 150 above max 120", "contract: 'Weekly' not in allowed values"]),
    "9111": ({"churn": "Maybe"}, ["churn: 'Maybe' not in allowed values"]),
}


@pytest.fixture(scope="module")
def crafted(spark, ibm_schema, tmp_path_factory):
    header = ibm_schema.source_columns
    rows = [_row(subscriber_id=str(9000 + i)) for i in range(1, 6)]  # 5 good rows
    rows.append(_row(subscriber_id="9006", tenure=" 3.0 ", partner="YES", total_charges="", churn=" Yes "))
    rows.append(_row(subscriber_id="9007", tenure="0", total_charges=""))  # null_fill applies
    for rid, (changes, _) in CRAFTED.items():
        rows.append(_row(subscriber_id=rid, **changes))
    rows.append(_row(subscriber_id=""))  # missing id
    rows += [_row(subscriber_id="9200"), _row(subscriber_id=" 9200 ", tenure="7"), _row(subscriber_id="9200")]
    path = write_csv(tmp_path_factory.mktemp("crafted") / "snap.csv", header, rows)
    # a row with one field too many (malformed CSV record)
    with open(path, "a") as fh:
        fh.write(",".join([*_row(subscriber_id="9300"), "EXTRA"]) + "\n")
    result = conform_subscribers(read_raw_snapshot(spark, str(path)), ibm_schema, TEST_KEY, str(path))
    quarantine = {r["subscriber_id"]: r.asDict() for r in result.quarantined.collect()}
    return result, quarantine, len(rows) + 1


def test_crafted_counts(crafted) -> None:
    result, _, n = crafted
    assert result.rows_in == n
    assert result.rows_curated + result.rows_quarantined == n
    assert result.rows_curated == 6  # 9001-9005 and 9007 (tenure 0, filled)
    # 9006 (blank total, tenure 3), 11 crafted, missing id, 3 x id 9200, malformed 9300
    assert result.rows_quarantined == 1 + len(CRAFTED) + 1 + 3 + 1 == n - 6


@pytest.mark.parametrize("rid", sorted(CRAFTED))
def test_crafted_bad_row_has_reason(crafted, rid: str) -> None:
    _, quarantine, _ = crafted
    reason = quarantine[rid]["dq_reason"]
    for fragment in CRAFTED[rid][1]:
        assert fragment in reason
    # every failed rule listed, nothing else
    assert reason.count("; ") == len(CRAFTED[rid][1]) - 1


def test_missing_id_duplicates_and_malformed_record(crafted) -> None:
    result, quarantine, _ = crafted
    assert quarantine[None]["dq_reason"] == "subscriber_id: missing value"
    dupes = result.quarantined.filter("trim(subscriber_id) = '9200'").collect()
    assert len(dupes) == 3
    assert {r["dq_reason"] for r in dupes} == {"subscriber_id: duplicate id (3 rows)"}
    assert " 9200 " in {r["subscriber_id"] for r in dupes}  # original raw value kept, untrimmed
    bad = quarantine["9300"]
    assert bad["dq_reason"].startswith("row: malformed CSV record")
    assert bad["dq_raw_record"].endswith("EXTRA")


def test_quarantine_keeps_original_raw_values(crafted) -> None:
    _, quarantine, _ = crafted
    assert quarantine["9104"]["tenure"] == "150"
    assert quarantine["9107"]["partner"] == "maybe"
    assert quarantine["9006"]["tenure"] == " 3.0 "
    assert quarantine["9006"]["dq_reason"] == "total_charges: missing value"


def test_lenient_but_strict_parsing_of_good_values(crafted) -> None:
    result, _, _ = crafted
    rows = {r["subscriber_id"]: r for r in result.curated.collect()}
    filled = rows[hmac_hex("9007", TEST_KEY)]
    assert filled["total_charges"] == 0.0 and filled["tenure"] == 0
    assert result.null_fills == {"total_charges": 1}
    assert result.failures_by_column["subscriber_id"] == 4  # 1 missing + 3 duplicates
    assert result.failures_by_column["tenure"] == 4


def test_case_insensitive_boolean_and_trimmed_target(spark, prepaid_schema, tmp_path) -> None:
    rows = prepaid_rows(4)
    rows[0][8] = " Y "  # roaming true token, case/space-insensitive
    rows[1][8] = "OFF"
    rows[2][9] = "TRUE"
    path = write_csv(tmp_path / "p.csv", PREPAID_HEADER, rows)
    res = conform_subscribers(read_raw_snapshot(spark, str(path)), prepaid_schema, TEST_KEY)
    assert (res.rows_curated, res.rows_quarantined) == (4, 0)
    got = {r["account_ref"]: r for r in res.curated.collect()}
    assert got[hmac_hex("A0001", TEST_KEY)]["roaming"] is True
    assert got[hmac_hex("A0002", TEST_KEY)]["roaming"] is False
    assert got[hmac_hex("A0003", TEST_KEY)]["left_operator"] == 1
    assert got[hmac_hex("A0003", TEST_KEY)]["arpu"] == 0.0  # months_active 0 -> null_fill
    assert got[hmac_hex("A0001", TEST_KEY)]["phone_number"] == hmac_hex("+15550000001", TEST_KEY)
    assert dict(res.curated.dtypes)["last_seen_at"] == "timestamp"
    assert dict(res.curated.dtypes)["signup_date"] == "date"


def test_prepaid_bad_timestamp_date_and_token(spark, prepaid_schema, tmp_path) -> None:
    rows = prepaid_rows(4)
    rows[0][2] = "2025-13-01T00:00:00Z"
    rows[1][3] = "2024-02-30"
    rows[2][8] = "yes"  # not one of this schema's tokens
    rows[3][4] = 'pre "paid", maybe'  # quoted field with a comma and doubled quotes (RFC 4180)
    path = write_csv(tmp_path / "p.csv", PREPAID_HEADER, rows)
    res = conform_subscribers(read_raw_snapshot(spark, str(path)), prepaid_schema, TEST_KEY)
    reasons = {r["account_ref"]: r["dq_reason"] for r in res.quarantined.collect()}
    assert reasons["A0001"] == "last_seen_at: cannot parse '2025-13-01T00:00:00Z' as timestamp"
    assert reasons["A0002"] == "signup_date: cannot parse '2024-02-30' as date"
    assert reasons["A0003"].startswith("roaming: 'yes' is not a boolean token (true: on/y, false: off/n)")
    assert reasons["A0004"] == "plan: 'pre \"paid\", maybe' not in allowed values"
    assert res.rows_in == 4


def test_missing_declared_column_is_an_error(spark, prepaid_schema, tmp_path) -> None:
    header = [c for c in PREPAID_HEADER if c != "plan"]
    rows = [r[:4] + r[5:] for r in prepaid_rows(2)]
    path = write_csv(tmp_path / "p.csv", header, rows)
    with pytest.raises(EtlError, match=r"missing declared column\(s\) \['plan'\]"):
        conform_subscribers(read_raw_snapshot(spark, str(path)), prepaid_schema, TEST_KEY, str(path))


def test_undeclared_column_dropped_with_warning(spark, prepaid_schema, tmp_path, caplog) -> None:
    rows = [[*r, "extra"] for r in prepaid_rows(2)]
    path = write_csv(tmp_path / "p.csv", [*PREPAID_HEADER, "crm_notes"], rows)
    with caplog.at_level(logging.WARNING):
        res = conform_subscribers(read_raw_snapshot(spark, str(path)), prepaid_schema, TEST_KEY, "snap")
    assert res.dropped_columns == ["crm_notes"]
    assert "crm_notes" not in res.curated.columns
    assert any("crm_notes" in rec.getMessage() for rec in caplog.records)
    assert res.rows_curated == 2


def test_invariant_violation_raises(spark, prepaid_schema, tmp_path) -> None:
    path = write_csv(tmp_path / "p.csv", PREPAID_HEADER, prepaid_rows(3))
    aligned, _ = align_columns(read_raw_snapshot(spark, str(path)), prepaid_schema, "p")
    typed, _ = typed_frame(aligned, prepaid_schema)
    with pytest.raises(InvariantError, match=r"rows in \(4\) != curated \(3\) \+ quarantined \(0\)"):
        gate(typed, prepaid_schema, curated_projection(prepaid_schema, TEST_KEY), "p", rows_in=4)


def test_snapshot_header_path_errors(spark, tmp_path: Path) -> None:
    with pytest.raises(EtlError, match="cannot read raw snapshot"):
        read_raw_snapshot(spark, str(tmp_path / "nope.csv"))


def test_rerun_on_rewritten_snapshot_is_not_served_from_cache(spark, prepaid_schema, tmp_path) -> None:
    path = write_csv(tmp_path / "p.csv", PREPAID_HEADER, prepaid_rows(5))
    first = conform_subscribers(read_raw_snapshot(spark, str(path)), prepaid_schema, TEST_KEY)
    assert first.rows_curated == 5  # not released on purpose
    write_csv(tmp_path / "p.csv", PREPAID_HEADER, prepaid_rows(3))
    second = conform_subscribers(read_raw_snapshot(spark, str(path)), prepaid_schema, TEST_KEY)
    assert (second.rows_in, second.rows_curated, second.curated.count()) == (3, 3, 3)
