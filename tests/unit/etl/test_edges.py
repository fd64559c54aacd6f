"""Crafted raw files at the edges of CSV: nothing lost, nothing silently changed.

Every test states the file's record count as the fixture knows it (KNOWN) and checks
curated + quarantined against that number, not against the job's own counter.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from etl import EtlError, glue_conform
from etl.conform import conform_subscribers, read_raw_snapshot
from etl.preflight import preflight_snapshot
from etl.pseudonymise import hmac_hex
from etl.quality import MAX_REASON_CHARS, SHOWN_VALUE_CHARS
from tests.unit.etl.conftest import IBM_SCHEMA_PATH, PREPAID_HEADER, TEST_KEY, prepaid_rows

pytestmark = pytest.mark.spark

TAG = re.compile(r"^[A-Z_]+:[a-z][a-z0-9_]*$")


def _line(row: list[str], newline: str = "\n") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerow(row)
    return buf.getvalue().encode("utf-8")


def _conform(spark, schema, path: Path):
    header = preflight_snapshot(schema, str(path))
    return conform_subscribers(read_raw_snapshot(spark, str(path), header.columns), schema, TEST_KEY, str(path))


def _by_id(result) -> dict[str, dict]:
    return {r["account_ref"]: r.asDict() for r in result.quarantined.collect()}


@pytest.fixture(scope="module")
def kitchen_sink(spark, prepaid_schema, tmp_path_factory):
    """11 records, 4 blank lines: every record-level edge in one file, conformed once."""
    rows = prepaid_rows(12)
    rows[9][4] = "x" * 5000 + "; evil: y"          # A0010: huge value with the separators inside
    rows[10][1] = "+1555\n0000011"                  # A0011: quoted field spanning two lines (valid)
    rows[11][4] = "pre\n\npaid"                     # A0012: a blank line inside a quoted field
    data = b"".join([
        _line(PREPAID_HEADER), _line(rows[0]), _line(rows[1]), _line(rows[2]),
        b"\n",
        _line(rows[3]).replace(b"A0004", b"B\xff1"),   # invalid UTF-8 in the id ...
        _line(rows[4]).replace(b"A0005", b"B\xfe1"),   # ... a different invalid id that reads the same
        b"\n", b"\n",
        _line(rows[5]).replace(b"A0006", b"L" * 129),  # id over the 128-character cap
        _line(rows[6]).replace(b"A0007", b"M" * 128),  # id at the cap: fine
        _line(rows[9]), _line(rows[10]), _line(rows[11]),
        _line([*rows[7], "EXTRA"]),                     # A0008: one field too many
        b"\n",
    ])
    path = tmp_path_factory.mktemp("edges") / "sink.csv"
    path.write_bytes(data)
    return _conform(spark, prepaid_schema, path)


KNOWN_RECORDS, KNOWN_BLANK = 11, 4


def test_rows_in_equals_curated_plus_quarantined_against_the_known_count(kitchen_sink) -> None:
    assert kitchen_sink.rows_curated + kitchen_sink.rows_quarantined == KNOWN_RECORDS
    assert kitchen_sink.curated.count() + kitchen_sink.quarantined.count() == KNOWN_RECORDS
    assert (kitchen_sink.rows_curated, kitchen_sink.rows_quarantined) == (5, 6)


def test_blank_lines_are_counted_not_dropped_silently(kitchen_sink) -> None:
    summary = kitchen_sink.summary()
    assert summary["blank_lines"] == KNOWN_BLANK  # the empty line inside A0012's quotes is not one
    assert summary["multiline_records"] == 2
    assert summary["lines_in"] == 1 + KNOWN_BLANK + KNOWN_RECORDS + 1 + 2


def test_invalid_utf8_ids_are_quarantined_never_merged(kitchen_sink) -> None:
    bad = [r for r in kitchen_sink.quarantined.collect() if "\ufffd" in r["account_ref"]]
    assert len(bad) == 2  # two different invalid byte sequences: both kept, both quarantined
    for r in bad:
        assert r["dq_codes"] == "ENCODING:account_ref;UNIQUE:account_ref"
        assert "account_ref: invalid UTF-8 in the file (value holds U+FFFD)" in r["dq_reason"]
    curated_ids = {r["account_ref"] for r in kitchen_sink.curated.collect()}
    assert hmac_hex("B\ufffd1", TEST_KEY) not in curated_ids


def test_overlong_id_is_quarantined_at_the_cap(kitchen_sink) -> None:
    q = _by_id(kitchen_sink)
    assert q["L" * 129]["dq_codes"] == "LENGTH:account_ref"
    assert q["L" * 129]["dq_reason"] == "account_ref: value longer than 128 characters (129)"
    curated_ids = {r["account_ref"] for r in kitchen_sink.curated.collect()}
    assert hmac_hex("M" * 128, TEST_KEY) in curated_ids


def test_reasons_are_bounded_and_keyed_by_declared_columns(kitchen_sink) -> None:
    huge = _by_id(kitchen_sink)["A0010"]
    assert huge["dq_codes"] == "ALLOWED:plan"
    assert huge["dq_reason"] == f"plan: '{'x' * SHOWN_VALUE_CHARS}…' not in allowed values"
    assert huge["plan"] == "x" * 5000 + "; evil: y"  # the raw value itself is kept whole
    for r in kitchen_sink.quarantined.collect():
        assert len(r["dq_reason"]) <= MAX_REASON_CHARS
        assert all(TAG.match(tag) for tag in r["dq_codes"].split(";"))
    assert set(kitchen_sink.failures_by_column) <= set(PREPAID_HEADER)
    assert kitchen_sink.failures_by_rule["MALFORMED:record"] == 1
    assert all(TAG.match(tag) for tag in kitchen_sink.failures_by_rule)
    assert kitchen_sink.failures_by_column["account_ref"] == 2 + 2 + 1  # encoding, duplicate, length
    assert kitchen_sink.failures_by_rule["ENCODING:account_ref"] == 2


def test_quoted_line_breaks_stay_in_one_record(kitchen_sink) -> None:
    curated = {r["account_ref"]: r for r in kitchen_sink.curated.collect()}
    assert curated[hmac_hex("A0011", TEST_KEY)]["phone_number"] == hmac_hex("+1555\n0000011", TEST_KEY)
    q = _by_id(kitchen_sink)
    assert q["A0012"]["plan"] == "pre\n\npaid"
    assert q["A0012"]["dq_reason"] == "plan: 'pre\u240a\u240apaid' not in allowed values"  # ␊: a line break
    assert q["A0008"]["dq_codes"] == "MALFORMED:record" and q["A0008"]["dq_raw_record"].endswith(",EXTRA")


def test_repeated_header_column_is_named_when_read_without_preflight(spark, prepaid_schema, tmp_path) -> None:
    path = tmp_path / "dupe.csv"
    path.write_bytes(_line([*PREPAID_HEADER, "roaming"]) + _line([*prepaid_rows(1)[0], "on"]))
    with pytest.raises(EtlError, match=r"header repeats column\(s\) \['roaming'\]"):
        read_raw_snapshot(spark, str(path))


def test_crlf_file_with_quoted_crlf_and_blank_lines(spark, prepaid_schema, tmp_path) -> None:
    rows = prepaid_rows(4)
    rows[1][1] = "+1555\r\n0000002"
    data = b"".join([_line(PREPAID_HEADER, "\r\n"), _line(rows[0], "\r\n"), b"\r\n",
                     _line(rows[1], "\r\n"), b"\r\n", b"\r\n", _line(rows[2], "\r\n"), _line(rows[3], "\r\n")])
    path = tmp_path / "crlf.csv"
    path.write_bytes(data)
    res = _conform(spark, prepaid_schema, path)
    assert res.rows_curated + res.rows_quarantined == 4 == res.rows_curated
    assert res.summary()["blank_lines"] == 3 and res.summary()["multiline_records"] == 1


def test_unterminated_quote_swallowing_the_rest_is_one_quarantined_record(spark, prepaid_schema, tmp_path) -> None:
    rows = prepaid_rows(4)
    data = _line(PREPAID_HEADER) + _line(rows[0]) + _line(rows[1]).replace(b"A0002,", b'A0002,"', 1) \
        + _line(rows[2]) + _line(rows[3])
    path = tmp_path / "open.csv"
    path.write_bytes(data)
    res = _conform(spark, prepaid_schema, path)
    known = 2  # A0001, then one record running from A0002's open quote to the end of the file
    assert res.rows_curated + res.rows_quarantined == known
    (bad,) = res.quarantined.collect()
    assert bad["dq_codes"].startswith("MALFORMED:record")
    assert "A0003" in bad["dq_raw_record"] and "A0004" in bad["dq_raw_record"]


def test_file_ending_inside_a_quoted_field_is_rejected(spark, prepaid_schema, tmp_path) -> None:
    rows = prepaid_rows(2)
    rows[1][9] = '"true'  # the last field opens a quote the file never closes
    data = _line(PREPAID_HEADER) + _line(rows[0]) + ",".join(rows[1]).encode() + b"\n"
    path = tmp_path / "eof.csv"
    path.write_bytes(data)
    with pytest.raises(EtlError, match=r"file has 3 line\(s\) = 1 header \+ 0 blank \+ 2 other; the file most "
                                       r"likely ends inside an unterminated quoted field"):
        _conform(spark, prepaid_schema, path)


def test_glue_conform_reads_source_column_names_and_reports_blank_lines(spark, tmp_path) -> None:
    import json

    from dataset.schema import load_schema

    schema = load_schema(IBM_SCHEMA_PATH)
    good = ["No", "1", "0", "1", "0", "12", "1", "No", "DSL", "Yes", "No", "No", "No", "No", "No",
            "One year", "0", "Mailed check", "50.5", "606"]
    header = ["rownames", *schema.source_columns[1:]]  # the source's own id column name
    data = _line(header) + _line(["1", *good]) + b"\n" + _line(["2", *good])
    landed = tmp_path / "raw" / "ingest_date=2026-02-01" / "snap.csv"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(data)
    rc = glue_conform.main(["--schema_uri", str(IBM_SCHEMA_PATH), "--input_uri", str(landed),
                            "--curated_uri", str(tmp_path / "c"), "--quarantine_uri", str(tmp_path / "q"),
                            "--allow_dev_key", "true"], spark)
    assert rc == 0
    summary = json.loads((tmp_path / "c" / "_runs" / "snapshot_date=2026-02-01" / "conform_summary.json").read_text())
    assert (summary["rows_in"], summary["rows_curated"], summary["blank_lines"]) == (2, 2, 1)
    assert summary["renamed_columns"] == {"rownames": "subscriber_id"} and summary["failures_by_rule"] == {}
