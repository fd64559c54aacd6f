"""The ETL data-quality gate and the inference handler agree on the schema's numeric domains.

The same raw values go through the gate (Spark, the conform job's own code) and through the
handler (from the packaged transformer.json); a value the gate quarantines for a numeric field's
TYPE or RANGE rule is a 400 naming that field, and a value the gate curates is scored.
"""

from __future__ import annotations

import csv
import json

import pytest

from dataset.sources import load_source
from tests.unit.ml.test_inference import score

# field -> raw CSV values, good and bad, as they would land in the raw zone
CASES = {
    "tenure": ["0", "120", "3.00", " 7 ", "121", "-1", "3.5", "1e2", "2147483648", "+5", "abc"],
    "monthly_charges": ["0", "1000", "1e2", "-.5", ".5", "1000.01", "-0.5", "1_000", "1e3", "NaN", "0x10"],
    "total_charges": ["0", "100000", "99999.99", "100000.5", "-1", "1e6", "Infinity"],
}
NUMERIC_CODES = ("TYPE", "RANGE")
pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def gate_verdicts(tmp_path_factory, schema):
    """Per case id: (field, raw value, the gate's dq_codes or None when curated)."""
    from etl.conform import conform_subscribers, read_raw_snapshot
    from etl.spark_session import local_spark

    base = load_source(schema).iloc[0].to_dict()  # a real subscriber (tenure 1, billed)
    base = {k: str(v) for k, v in base.items()}
    rows, cases = [], {}
    for field, values in CASES.items():
        for value in values:
            rid = f"p{len(rows)}"
            cases[rid] = (field, value)
            rows.append(
                {
                    **base,
                    "subscriber_id": rid,
                    field: value,
                    # keep the null_fill rule out of play and tenure in range for charges cases
                    **({"tenure": "12"} if field != "tenure" else {}),
                }
            )
    path = tmp_path_factory.mktemp("parity") / "snapshot.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=schema.source_columns)
        w.writeheader()
        w.writerows(rows)
    # The ETL tests' session settings: in a worker that already runs one, it is reused, not restarted.
    spark = local_spark("etl-unit-tests", cores=2, shuffle_partitions=2, driver_memory="2g")
    result = conform_subscribers(read_raw_snapshot(spark, str(path)), schema, b"parity-test-key-0123456789", str(path))
    codes = {r["subscriber_id"]: r["dq_codes"] for r in result.quarantined.collect()}
    assert result.rows_in == len(rows)
    return {rid: (field, value, rows[int(rid[1:])], codes.get(rid)) for rid, (field, value) in cases.items()}


def test_gate_and_handler_agree_on_numeric_domains(served, schema, gate_verdicts):
    handler, _ = served
    fields = schema.raw_feature_columns
    rejected_by_both = 0
    for field, value, row, codes in gate_verdicts.values():
        body = ",".join(fields) + "\n" + ",".join(row[f] for f in fields) + "\n"
        gate_rejects = codes is not None
        if gate_rejects:  # nothing but the numeric rule under test may fail in these rows
            assert {c.split(":")[0] for c in codes.split(";")} <= set(NUMERIC_CODES), codes
            assert {c.split(":")[1] for c in codes.split(";")} == {field}, codes
        try:
            out = json.loads(score(served, body, "text/csv"))
        except handler.ClientError as exc:
            assert gate_rejects, f"{field}={value!r}: the gate curates it, the handler says {exc}"
            assert f"record 0, field '{field}'" in str(exc)
            assert exc.status_code == 400
            rejected_by_both += 1
        else:
            assert not gate_rejects, f"{field}={value!r}: the gate quarantines it ({codes}), the handler scored it"
            assert 0.0 <= out["predictions"][0]["probability"] <= 1.0
    assert rejected_by_both >= 15  # the cases above hold 17 bad values; most must be refused by both


def test_json_numbers_follow_the_same_rules(served, gate_verdicts):
    """A JSON number is typed already: whole floats are integers (like '3.00'), ranges are the gate's."""
    handler, _ = served
    from tests.unit.ml.test_inference import GOOD

    for field, value, _, codes in gate_verdicts.values():
        try:
            number = json.loads(value.strip().lstrip("+"))
        except ValueError:
            continue  # not a JSON number literal ('1_000', '.5', 'abc' ...): the CSV test covers it
        if not isinstance(number, int | float) or number != number or number in (float("inf"), float("-inf")):
            continue
        if field == "tenure" and "e" in value.lower():
            continue  # JSON 1e2 is the number 100; only the text '1e2' fails the gate's integer pattern
        body = json.dumps({**GOOD, "tenure": 12, field: number})
        try:
            score(served, body)
        except handler.ClientError as exc:
            assert codes is not None, f"{field}={number!r}: the gate curates it, the handler says {exc}"
            assert f"field '{field}'" in str(exc)
        else:
            assert codes is None, f"{field}={number!r}: the gate quarantines it ({codes}), the handler scored it"
