"""Per-record validation of a scoring request against the model's fields (transformer.json).

Numpy only: ships in model.tar.gz as `code/record_validation.py` next to `code/inference.py`,
whose input_fn parses the payload and whose predict_fn calls `validate` before scoring.
Every error is a ClientError (HTTP 4xx) naming the record index and the field.

Numeric domains: a numeric field whose transformer.json entry carries a `domain` (written from the
schema's declared type and `checks.min`/`checks.max`) is held to the ETL data-quality gate's TYPE
and RANGE rules (etl/conform.py parse_expr, etl/quality.py column_rules): an integer field takes
whole numbers in the 32-bit range only (CSV text: optional sign, digits, optionally ".0..."), a
double field in CSV decimal or scientific notation only, and both must lie within [min, max].
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

try:  # inside the SageMaker serving containers: the toolkit turns this base class into the status code
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # anywhere else (tests, the twin, the local endpoint server)

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        """Stand-in for the toolkit's base class outside the serving containers."""


# The gate's patterns for text values (etl/conform.py _INT_RE / _DOUBLE_RE) and Spark's int range.
_INT_TEXT = re.compile(r"^[+-]?[0-9]+(\.0*)?$")
_DOUBLE_TEXT = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Larger JSON integers do not survive float64 (the model's number type) exactly.
SAFE_INTEGER = 2**53


class ServingError(_ToolkitError, ValueError):
    """A request the handler answers with an HTTP error status instead of predictions.

    In the SageMaker containers it is a `BaseInferenceToolkitError`, which the inference toolkit
    answers with `status_code` and `message` (any other exception becomes a 500)."""

    status_code = 500

    def __init__(self, message: str, status_code: int | None = None):
        ValueError.__init__(self, message)
        if status_code is not None:
            self.status_code = status_code
        self.message = message  # the toolkit's response body
        self.phrase = " ".join(message.split())[:200]  # the toolkit's status line: one line

    def __str__(self) -> str:
        return self.message


class ClientError(ServingError):
    """The request is malformed; maps to HTTP 4xx. The message names record and field."""

    status_code = 400

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message, status_code)


class HugeInteger:
    """A JSON integer beyond +-2**53, kept as text so validation names its record and field
    (Python would parse it exactly, or refuse with a ValueError past 4,300 digits)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        digits = self.text.lstrip("+-")
        return self.text if len(digits) <= 40 else f"{self.text[:12]}... ({len(digits)} digits)"


def parse_int(text: str) -> int | HugeInteger:
    """`json.loads(parse_int=...)`: an int, or a HugeInteger beyond the float64-exact range."""
    if len(text.lstrip("-")) >= 16:  # 2**53 has 16 digits; never convert thousands of digits
        if len(text) > 24:
            return HugeInteger(text)
        value = int(text)
        return value if abs(value) <= SAFE_INTEGER else HugeInteger(text)
    return int(text)


def _type_name(v: Any) -> str:
    return "integer" if isinstance(v, HugeInteger) else "boolean" if type(v) is bool else type(v).__name__


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(float(x))


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"allowed range [{_num(lo)}, {_num(hi)}]"
    return f"allowed: >= {_num(lo)}" if lo is not None else f"allowed: <= {_num(hi)}"  # type: ignore[arg-type]


def _from_text(i: int, name: str, text: str, kind: str | None) -> float:
    """A CSV value as the gate types it (`kind` None: no declared domain, any float text)."""
    if kind == "integer" and not _INT_TEXT.match(text):
        raise ClientError(f"record {i}, field '{name}': cannot parse {text!r:.40} as integer")
    if kind == "double" and not _DOUBLE_TEXT.match(text):
        raise ClientError(f"record {i}, field '{name}': cannot parse {text!r:.40} as double")
    try:
        return float(text)
    except ValueError:
        raise ClientError(f"record {i}, field '{name}': expected a number, got {text!r:.40}") from None


def _check_domain(i: int, name: str, f: float, domain: dict[str, Any]) -> None:
    """The gate's TYPE (integers: whole, 32-bit) and RANGE rules on one finite value."""
    if domain.get("type") == "integer":
        if not f.is_integer():
            raise ClientError(
                f"record {i}, field '{name}': {f!r} is not an integer (the schema declares '{name}' integer)"
            )
        if not INT32_MIN <= f <= INT32_MAX:
            raise ClientError(
                f"record {i}, field '{name}': {_num(f)} is outside the integer range [{INT32_MIN}, {INT32_MAX}]"
            )
    lo, hi = domain.get("min"), domain.get("max")
    if lo is not None and f < lo:
        raise ClientError(f"record {i}, field '{name}': value {_num(f)} below min {_num(lo)}; {_range_text(lo, hi)}")
    if hi is not None and f > hi:
        raise ClientError(f"record {i}, field '{name}': value {_num(f)} above max {_num(hi)}; {_range_text(lo, hi)}")


def _numeric(
    name: str, values: list[Any], nullable: bool, from_csv: bool, domain: dict[str, Any] | None = None
) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    kind = domain.get("type") if domain else None
    for i, v in enumerate(values):
        if from_csv and isinstance(v, str):
            s = v.strip()
            v = None if s == "" else _from_text(i, name, s, kind)
        if v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            out[i] = np.nan
            continue
        t = type(v)
        if t is HugeInteger:
            raise ClientError(
                f"record {i}, field '{name}': integer {v!r} is beyond +-2^53, the range a float64 holds exactly"
            )
        if t is not int and t is not float:
            raise ClientError(f"record {i}, field '{name}': expected a number, got {_type_name(v)} {v!r:.40}")
        try:
            f = float(v)
        except OverflowError:
            raise ClientError(f"record {i}, field '{name}': number out of range") from None
        if not math.isfinite(f):
            raise ClientError(f"record {i}, field '{name}': must be a finite number, got {v!r}")
        if domain:
            _check_domain(i, name, f, domain)
        out[i] = f
    return out


def _categorical(name: str, values: list[Any], allowed: set[str] | None, nullable: bool, from_csv: bool) -> list[Any]:
    """`allowed` None: a learned (open) vocabulary, where any string is a category (the transformer
    encodes one it did not learn as the column's other bucket)."""
    if from_csv:
        values = [None if v.strip() == "" else v for v in values]
    for i, v in enumerate(values):
        if v.__class__ is str and (allowed is None or v in allowed):
            continue
        if v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            continue
        if not isinstance(v, str):
            raise ClientError(f"record {i}, field '{name}': expected a string category, got {_type_name(v)} {v!r:.40}")
        assert allowed is not None  # an open vocabulary accepted every string above
        raise ClientError(f"record {i}, field '{name}': unknown category {v!r:.60}; allowed: {sorted(allowed)}")
    return values


def _boolean(name: str, values: list[Any], mapping: dict[str, float], nullable: bool, from_csv: bool) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        t = type(v)
        if t is bool:
            out[i] = 1.0 if v else 0.0
        elif t is str:
            hit = mapping.get(v.strip().lower())
            if hit is None:
                if from_csv and v.strip() == "":
                    if not nullable:
                        raise ClientError(f"record {i}, field '{name}': must not be empty")
                    out[i] = np.nan
                    continue
                raise ClientError(
                    f"record {i}, field '{name}': {v!r:.40} is not a boolean; use true/false "
                    f"or one of {sorted(mapping)}"
                )
            out[i] = hit
        elif t is int and v in (0, 1):
            out[i] = float(v)
        elif v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            out[i] = np.nan
        else:
            raise ClientError(f"record {i}, field '{name}': expected a boolean, got {_type_name(v)} {v!r:.40}")
    return out


def validate(records: list[dict[str, Any]], from_csv: bool, transformer: Any) -> dict[str, Any]:
    """Check every record against the transformer's fields; return typed columns.

    `from_csv`: values arrive as text (empty = null) rather than JSON-typed.
    """
    fields = transformer.input_fields
    field_set = set(fields)
    for i, rec in enumerate(records):
        if rec.keys() != field_set:
            keys = set(rec)
            missing = [f for f in fields if f not in keys]
            if missing:
                raise ClientError(
                    f"record {i}: missing field '{missing[0]}'"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
            unknown = sorted(str(k) for k in keys - field_set)
            raise ClientError(f"record {i}: unknown field '{unknown[0]:.60}'; expected fields: {fields}")
    columns: dict[str, Any] = {}
    cats = {c["name"]: c for c in transformer.categorical}
    bools = {c["name"]: c for c in transformer.boolean}
    nums = {c["name"]: c for c in transformer.numeric}
    for name in fields:
        values = [r[name] for r in records]
        if name in nums:
            c = nums[name]
            nullable = bool(c.get("nullable", True)) or "null_fill" in c
            columns[name] = _numeric(name, values, nullable, from_csv, c.get("domain"))
        elif name in cats:
            c = cats[name]
            allowed = None if c.get("other_bucket") is not None else set(c["categories"])
            vals = _categorical(name, values, allowed, bool(c.get("nullable", True)), from_csv)
            columns[name] = np.array(vals, dtype=object)
        else:
            c = bools[name]
            mapping = {t: 1.0 for t in c["true_values"]} | {t: 0.0 for t in c["false_values"]}
            mapping |= {"true": 1.0, "false": 0.0}
            columns[name] = _boolean(name, values, mapping, bool(c.get("nullable", True)), from_csv)
    for c in transformer.numeric:
        if c.get("null_fill") is not None:
            _apply_null_fill(c, columns)
    return columns


def _apply_null_fill(c: dict[str, Any], columns: dict[str, Any]) -> None:
    """The schema's rule for an expected null (e.g. no bill yet in month 0): fill it, in place, where the
    rule's condition holds; elsewhere a null in a not-null field is an error."""
    rule = c["null_fill"]
    col = columns[c["name"]]
    nulls = np.isnan(col)
    if not nulls.any():
        return
    when = columns[rule["when_column"]]
    ok = np.ones(len(col), dtype=bool)
    if rule["when_min"] is not None:
        ok &= when >= rule["when_min"]
    if rule["when_max"] is not None:
        ok &= when <= rule["when_max"]
    bad = nulls & ~ok
    if bad.any() and not c.get("nullable", True):
        i = int(np.argmax(bad))
        raise ClientError(
            f"record {i}, field '{c['name']}': must not be null (null is accepted only "
            f"when '{rule['when_column']}' is within [{rule['when_min']}, "
            f"{rule['when_max']}])"
        )
    col[nulls & ok] = rule["value"]
