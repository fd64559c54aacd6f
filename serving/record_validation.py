"""Per-record validation of a scoring request against the model's fields (transformer.json).

Numpy only: ships in model.tar.gz as `code/record_validation.py` next to `code/inference.py`,
whose input_fn parses the payload and whose predict_fn calls `validate` before scoring.
Every error is a ClientError (HTTP 4xx) naming the record index and the field.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class ClientError(ValueError):
    """The request is malformed; maps to HTTP 4xx. The message names record and field."""

    status_code = 400

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


def _numeric(name: str, values: list[Any], nullable: bool, from_csv: bool) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if from_csv and isinstance(v, str):
            s = v.strip()
            if s == "":
                v = None
            else:
                try:
                    v = float(s)
                except ValueError:
                    raise ClientError(f"record {i}, field '{name}': expected a number, got {v!r}") from None
        if v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            out[i] = np.nan
            continue
        t = type(v)
        if t is not int and t is not float:
            raise ClientError(f"record {i}, field '{name}': expected a number, got "
                              f"{'boolean' if t is bool else t.__name__} {v!r:.40}")
        try:
            f = float(v)
        except OverflowError:
            raise ClientError(f"record {i}, field '{name}': number out of range") from None
        if not math.isfinite(f):
            raise ClientError(f"record {i}, field '{name}': must be a finite number, got {v!r}")
        out[i] = f
    return out


def _categorical(name: str, values: list[Any], allowed: set[str] | None, nullable: bool, from_csv: bool
                 ) -> list[Any]:
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
            raise ClientError(f"record {i}, field '{name}': expected a string category, got "
                              f"{type(v).__name__} {v!r:.40}")
        assert allowed is not None  # an open vocabulary accepted every string above
        raise ClientError(f"record {i}, field '{name}': unknown category {v!r:.60}; "
                          f"allowed: {sorted(allowed)}")
    return values


def _boolean(name: str, values: list[Any], mapping: dict[str, float], nullable: bool, from_csv: bool
             ) -> np.ndarray:
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
                raise ClientError(f"record {i}, field '{name}': {v!r:.40} is not a boolean; use true/false "
                                  f"or one of {sorted(mapping)}")
            out[i] = hit
        elif t is int and v in (0, 1):
            out[i] = float(v)
        elif v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            out[i] = np.nan
        else:
            raise ClientError(f"record {i}, field '{name}': expected a boolean, got {t.__name__} {v!r:.40}")
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
                raise ClientError(f"record {i}: missing field '{missing[0]}'"
                                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
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
            columns[name] = _numeric(name, values, nullable, from_csv)
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
        raise ClientError(f"record {i}, field '{c['name']}': must not be null (null is accepted only "
                          f"when '{rule['when_column']}' is within [{rule['when_min']}, "
                          f"{rule['when_max']}])")
    col[nulls & ok] = rule["value"]
