from __future__ import annotations

import pytest

from dataset.schema import USAGE_FEATURES
from etl import InvariantError
from etl.cdr_usage import INT_FEATURES
from etl.features import build_features, check_rows, feature_columns

pytestmark = pytest.mark.spark


def _curated(spark):
    # curated prepaid rows (already typed/pseudonymised); "h3" has no CDRs
    return spark.createDataFrame(
        [("h1", "+x1", "prepaid", 30, 5, 12.5, True, 1), ("h2", "+x2", "hybrid", 41, 0, 0.0, False, 0),
         ("h3", "+x3", "postpaid", None, 9, 20.0, False, 0)],
        "account_ref string, phone_number string, plan string, age int, months_active int, arpu double, "
        "roaming boolean, left_operator int")


def _usage(spark):
    """Usage rows for h1, h2 and an id unknown to curated; value v (ints) or 1.5 * v (doubles)."""
    values = {"h1": 1, "h2": 2, "other": 3}
    rows = [(k, *[v if f in INT_FEATURES else v * 1.5 for f in USAGE_FEATURES]) for k, v in values.items()]
    schema = "account_ref string, " + ", ".join(
        f"{f} {'int' if f in INT_FEATURES else 'double'}" for f in USAGE_FEATURES)
    return spark.createDataFrame(rows, schema)


def test_left_join_gives_zero_usage_without_cdrs(spark, prepaid_schema) -> None:
    out = build_features(_curated(spark), prepaid_schema, "2026-01-01", _usage(spark))
    assert out.columns == feature_columns(prepaid_schema)
    assert "phone_number" not in out.columns  # PII passthrough is not a feature
    rows = {r["account_ref"]: r.asDict() for r in out.collect()}
    assert set(rows) == {"h1", "h2", "h3"}  # usage of unknown subscribers is not joined in
    assert rows["h1"]["usage_calls"] == 1 and rows["h2"]["usage_minutes"] == 3.0
    h3 = rows["h3"]
    assert all(h3[f] == 0 for f in prepaid_schema.usage.features)
    assert h3["usage_calls"] == 0 and isinstance(h3["usage_calls"], int)
    assert h3["usage_minutes"] == 0.0 and isinstance(h3["usage_minutes"], float)
    assert h3["age"] is None and h3["snapshot_date"] == "2026-01-01"
    types = dict(out.dtypes)
    assert types["roaming"] == "boolean" and types["left_operator"] == "int" and types["plan"] == "string"


def test_no_usage_frame_means_zero_usage(spark, prepaid_schema) -> None:
    out = build_features(_curated(spark), prepaid_schema, "2026-01-01", None)
    assert out.count() == 3
    assert out.filter("usage_calls != 0 or usage_minutes != 0").count() == 0


def test_schema_without_usage_section(spark, ibm_schema) -> None:
    cols = feature_columns(ibm_schema)
    assert not set(cols) & set(USAGE_FEATURES)
    assert cols[0] == ibm_schema.id_column and cols[-2:] == [ibm_schema.target_column, "snapshot_date"]


def test_row_check() -> None:
    check_rows(5, 5, "x")
    with pytest.raises(InvariantError, match=r"feature rows \(6\) != curated rows \(5\)"):
        check_rows(6, 5, "x")
