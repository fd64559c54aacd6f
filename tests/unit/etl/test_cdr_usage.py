"""CDR usage aggregation checked by hand on a small hand-written event set."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from dataset.schema import USAGE_FEATURES
from etl import EtlError
from etl.cdr_usage import compute_usage
from etl.pseudonymise import hmac_hex
from tests.unit.etl.conftest import TEST_KEY

pytestmark = pytest.mark.spark

AS_OF = date(2026, 1, 1)
WINDOW = 7  # [2025-12-25T00:00:00Z, 2026-01-01T00:00:00Z)


def ev(eid: str, sub: str | None, ts: str, etype: str = "voice", dur: object = 60,
       result: str | None = "completed", cell: str = "c1", intl: bool | None = False) -> dict:
    rec: dict = {"event_id": eid, "subscriber_id": sub, "event_time": ts, "event_type": etype,
                 "direction": "outgoing", "duration_seconds": dur, "called_country": "US",
                 "is_international": intl, "call_result": result, "cell_id": cell}
    return {k: v for k, v in rec.items() if v is not None or k in ("called_country",)}


S1 = [
    ev("e1", "S1", "2025-12-31T05:59:59Z", dur=120),                       # night, last second
    ev("e2", "S1", "2025-12-31T06:00:00Z", dur=60, result="dropped", cell="c2", intl=True),  # morning
    ev("e3", "S1", "2025-12-30T11:59:59Z", dur=30),                        # morning, last second
    ev("e4", "S1", "2025-12-30T12:00:00Z", dur=90, result="failed", cell="c3"),  # afternoon
    ev("e5", "S1", "2025-12-25T00:00:00Z", dur=300),                       # window start: included
    ev("e6", "S1", "2025-12-31T01:30:00+02:00", dur=600),                  # = 12-30 23:30Z: evening
    ev("e7", "S1", "2025-12-28T18:00:00Z", etype="sms", dur=0, cell="c4"),
    ev("e8", "S1", "2025-12-29T23:59:59Z", etype="data", dur=1000, cell="c5"),
    ev("e9", "S1", "2025-12-24T23:59:59Z", dur=999),                       # 1 s before window
    ev("e10", "S1", "2026-01-01T00:00:00Z", dur=999),                      # window end: excluded
]
DUPLICATE = ev("e2", "S1", "2025-12-31T06:00:00Z", dur=60, result="dropped", cell="c2", intl=True)
S2 = [ev("f1", " S2 ", "2025-12-27T09:00:00Z", etype="sms", dur=0, cell="c9")]
MALFORMED = {
    '{"event_id": "m1", "subscriber_id": "S3", "event_time": ': "record: unparseable JSON",
    json.dumps(ev("m2", None, "2025-12-30T10:00:00Z")): "subscriber_id: missing",
    json.dumps(ev("m3", "S3", "2025-12-30T10:00:00Z", dur=-5)): "duration_seconds: negative value -5",
    json.dumps(ev("m4", "S3", "2025-12-30 10:00:00")):
        "event_time: cannot parse '2025-12-30 10:00:00' as ISO-8601 timestamp with zone",
    json.dumps(ev("m5", "S3", "2025-12-30T10:00:00")): "event_time: cannot parse '2025-12-30T10:00:00'",
    json.dumps(ev("m6", "S3", "2025-12-30T10:00:00Z", dur="abc")): "record: unparseable JSON or a field",
    json.dumps(ev("m7", "S3", "2025-12-30T10:00:00Z", etype="video")): "event_type: 'video' not one of",
    json.dumps(ev("m8", "S3", "2025-12-30T10:00:00Z", result=None)): "call_result: missing on a voice record",
}


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def usage(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("cdr")
    # two layouts under one prefix: found recursively
    _write(root / "event_date=2025-12-31" / "a.json", [json.dumps(e) for e in S1[:5]] + list(MALFORMED))
    _write(root / "2025" / "12" / "30" / "b.json",
           [json.dumps(e) for e in [*S1[5:], DUPLICATE, *S2]])
    result = compute_usage(spark, str(root), AS_OF, WINDOW, TEST_KEY)
    rows = {r["subscriber_id"]: r.asDict() for r in result.usage.collect()}
    quarantine = result.quarantined.collect()
    return result, rows, quarantine


def test_hand_computed_usage_for_s1(usage) -> None:
    _, rows, _ = usage
    s1 = rows[hmac_hex("S1", TEST_KEY)]
    assert s1 == {
        "subscriber_id": hmac_hex("S1", TEST_KEY),
        "usage_calls": 6,
        "usage_minutes": pytest.approx(20.0),            # (120+60+30+90+300+600) / 60
        "usage_minutes_night": pytest.approx(7.0),       # e1 + e5
        "usage_minutes_morning": pytest.approx(1.5),     # e2 + e3
        "usage_minutes_afternoon": pytest.approx(1.5),   # e4
        "usage_minutes_evening": pytest.approx(10.0),    # e6 (offset converted to UTC)
        "usage_international_calls": 1,
        "usage_dropped_calls": 1,
        "usage_dropped_call_rate": pytest.approx(1 / 6),
        "usage_distinct_cells": 5,                       # c1..c5 over voice, sms and data
        "usage_active_days": 5,                          # 12-25, 12-28, 12-29, 12-30, 12-31
    }


def test_subscriber_without_calls_and_trimmed_id(usage) -> None:
    result, rows, _ = usage
    assert set(rows) == {hmac_hex("S1", TEST_KEY), hmac_hex("S2", TEST_KEY)}
    s2 = rows[hmac_hex("S2", TEST_KEY)]
    assert (s2["usage_calls"], s2["usage_minutes"], s2["usage_dropped_call_rate"]) == (0, 0.0, 0.0)
    assert (s2["usage_distinct_cells"], s2["usage_active_days"]) == (1, 1)
    assert result.usage.columns == ["subscriber_id", *USAGE_FEATURES]
    types = dict(result.usage.dtypes)
    assert types["usage_calls"] == "int" and types["usage_minutes"] == "double"


def test_counts_and_invariant(usage) -> None:
    result, _, quarantine = usage
    assert result.counts == {
        "records_in": 20,
        "records_invalid": 8,
        "records_duplicate": 1,
        "records_quarantined": 9,
        "records_out_of_window": 2,
        "records_used": 9,
        "usage_subscribers": 2,
    }
    assert len(quarantine) == 9


def test_malformed_records_quarantined_with_reason(usage) -> None:
    _, _, quarantine = usage
    reasons = [r["dq_reason"] for r in quarantine]
    for expected in MALFORMED.values():
        matches = [r for r in quarantine if expected in r["dq_reason"]]
        assert matches, (expected, reasons)
        assert all(r["source_file"] and r["source_file"].endswith("a.json") for r in matches)
    corrupt = [r for r in quarantine if r["raw_record"].startswith('{"event_id": "m1"')]
    assert len(corrupt) == 1 and corrupt[0]["dq_reason"].startswith("record: unparseable JSON")
    dup = [r for r in quarantine if r["dq_reason"] == "event_id: duplicate delivery"]
    assert len(dup) == 1 and json.loads(dup[0]["raw_record"])["event_id"] == "e2"


def test_window_must_be_positive(spark, tmp_path) -> None:
    _write(tmp_path / "x.json", [json.dumps(S1[0])])
    with pytest.raises(EtlError, match="window_days must be >= 1"):
        compute_usage(spark, str(tmp_path), AS_OF, 0, TEST_KEY)


def test_missing_cdr_path_is_a_clear_error(spark, tmp_path) -> None:
    with pytest.raises(EtlError, match="cannot read CDRs from"):
        compute_usage(spark, str(tmp_path / "absent"), AS_OF, WINDOW, TEST_KEY)


def test_rerun_on_rewritten_input_is_not_served_from_cache(spark, tmp_path) -> None:
    _write(tmp_path / "a.json", [json.dumps(e) for e in S1[:4]])
    first = compute_usage(spark, str(tmp_path), AS_OF, WINDOW, TEST_KEY)  # not released on purpose
    assert first.counts["records_in"] == 4
    _write(tmp_path / "a.json", [json.dumps(e) for e in S1[:2]])
    second = compute_usage(spark, str(tmp_path), AS_OF, WINDOW, TEST_KEY)
    assert second.counts["records_in"] == 2 and second.counts["records_used"] == 2
    assert second.usage.first()["usage_calls"] == 2
