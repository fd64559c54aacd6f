from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from etl.cdr_generator import FIELDS, generate, main, read_ids
from etl.cdr_usage import compute_usage
from tests.unit.etl.conftest import TEST_KEY


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    ids = [str(i) for i in range(1, 51)]
    generate(ids, 3000, 5, date(2025, 12, 31), 11, tmp_path / "a", malformed=4)
    generate(ids, 3000, 5, date(2025, 12, 31), 11, tmp_path / "b", malformed=4)
    generate(ids, 3000, 5, date(2025, 12, 31), 12, tmp_path / "c", malformed=4)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert set(a) == set(c) and a != c
    assert sorted(a) == [f"event_date=2025-12-{d}/cdr-2025-12-{d}.json" for d in range(27, 32)]


def test_records_follow_the_documented_format(tmp_path: Path) -> None:
    ids = ["A", "B", "C"]
    stats = generate(ids, 2000, 3, date(2026, 2, 1), 3, tmp_path)
    lines = [ln for p in sorted(tmp_path.rglob("*.json")) for ln in p.read_text().splitlines()]
    assert stats.rows == len(lines) == 2000
    recs = [json.loads(ln) for ln in lines]
    assert all(tuple(r) == FIELDS for r in recs)
    assert {r["subscriber_id"] for r in recs} <= set(ids)
    assert {r["event_type"] for r in recs} == {"voice", "sms", "data"}
    assert len({r["event_id"] for r in recs}) == 2000
    for r in recs:
        day = r["event_time"][:10]
        assert day in ("2026-01-30", "2026-01-31", "2026-02-01")
        assert r["event_time"].endswith("Z") and len(r["event_time"]) == 20
        assert r["duration_seconds"] >= 0
        assert (r["called_country"] is None) == (r["event_type"] == "data")
        assert r["is_international"] == (r["called_country"] not in (None, "US"))
        assert r["call_result"] in ("completed", "dropped", "failed")
        if r["event_type"] == "sms":
            assert r["duration_seconds"] == 0
    # files partitioned by the event date of their records
    for p in tmp_path.rglob("*.json"):
        day = p.parent.name.removeprefix("event_date=")
        assert all(json.loads(ln)["event_time"].startswith(day) for ln in p.read_text().splitlines())


def test_cli_with_ids_from_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = tmp_path / "subs.csv"
    csv_path.write_text("cust,plan\nX1,a\n X2 ,b\nX1,a\n,c\n")
    assert read_ids(csv_path, None) == ["X1", "X2"]
    rc = main(["--subscriber-ids-from", str(csv_path), "--rows", "100", "--days", "2",
               "--end-date", "2025-06-30", "--seed", "5", "--out", str(tmp_path / "out")])
    assert rc == 0
    assert "wrote 100 events" in capsys.readouterr().out
    recs = [json.loads(ln) for p in (tmp_path / "out").rglob("*.json") for ln in p.read_text().splitlines()]
    assert len(recs) == 100 and {r["subscriber_id"] for r in recs} <= {"X1", "X2"}
    assert main(["--subscriber-ids-from", str(csv_path), "--id-column", "nope", "--rows", "1",
                 "--out", str(tmp_path / "o2")]) == 2
    assert "no column 'nope'" in capsys.readouterr().err


@pytest.mark.spark
def test_generated_malformed_lines_are_quarantined(spark, tmp_path: Path) -> None:
    ids = [str(i) for i in range(1, 21)]
    generate(ids, 1500, 10, date(2025, 12, 31), 9, tmp_path, malformed=8)
    res = compute_usage(spark, str(tmp_path), date(2026, 1, 1), 10, TEST_KEY)
    assert res.counts["records_in"] == 1508
    assert res.counts["records_invalid"] == 8
    assert res.counts["records_used"] == 1500 and res.counts["records_out_of_window"] == 0
    reasons = sorted(r["dq_reason"].split(":")[0] for r in res.quarantined.collect())
    assert reasons == ["duration_seconds"] * 2 + ["event_time"] * 2 + ["record"] * 2 + ["subscriber_id"] * 2
    assert res.counts["usage_subscribers"] == 20
