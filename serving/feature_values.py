"""Raw field values -> numbers: missing-value detection, numeric and boolean coercion, statistics.

Numpy only: ships in model.tar.gz as `code/feature_values.py` next to `code/transform.py`, which
builds the model matrix from these helpers. Every error is a TransformError naming the column
and (when known) the row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class TransformError(ValueError):
    """Input cannot be transformed; the message names the column and (when known) the row."""


def is_na(v: Any) -> bool:
    """None, NaN, pandas NA/NaT (checked by type name: pandas is not a runtime dependency)."""
    if v is None:
        return True
    if isinstance(v, float | np.floating):
        return bool(math.isnan(v))
    return type(v).__name__ in ("NAType", "NaTType")


def show(v: Any) -> str:
    """Value for an error message: numpy scalars shown as plain Python values, long text cut."""
    if isinstance(v, np.generic):
        v = v.item()
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def is_missing_array(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "iubUS":
        return np.zeros(values.shape, dtype=bool)
    return np.fromiter((is_na(v) for v in values), dtype=bool, count=len(values))


def to_float(values: np.ndarray, column: str) -> np.ndarray:
    """Numeric column as float64 with NaN for missing; a clear error for non-numbers."""
    if values.dtype.kind in "fiu":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind == "b":
        raise TransformError(f"column '{column}': expected numbers, got booleans")
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if is_na(v):
            out[i] = np.nan
        elif isinstance(v, bool | np.bool_):
            raise TransformError(f"column '{column}', row {i}: expected a number, got boolean {show(v)}")
        elif isinstance(v, int | float | np.integer | np.floating):
            out[i] = float(v)
        elif isinstance(v, str) and v.strip() == "":
            out[i] = np.nan
        else:
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise TransformError(f"column '{column}', row {i}: expected a number, got {show(v)}") from None
    return out


def bool_values(values: np.ndarray, name: str, true_values: Sequence[str], false_values: Sequence[str]) -> np.ndarray:
    """Boolean column as 1.0/0.0 with NaN for missing: tokens (lower-case), bools and 0/1."""
    trues, falses = set(true_values), set(false_values)
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if is_na(v):
            out[i] = np.nan
        elif isinstance(v, bool | np.bool_):
            out[i] = 1.0 if v else 0.0
        elif isinstance(v, int | np.integer | float | np.floating) and v in (0, 1):
            out[i] = float(v)
        elif isinstance(v, str) and v.strip().lower() in trues:
            out[i] = 1.0
        elif isinstance(v, str) and v.strip().lower() in falses:
            out[i] = 0.0
        else:
            raise TransformError(
                f"column '{name}', row {i}: {show(v)} is not a boolean token "
                f"(true: {sorted(trues)}, false: {sorted(falses)})"
            )
    return out


def dense_stats(vals: np.ndarray) -> dict[str, float]:
    """Median (for imputation), mean and std (for standardisation) of a dense column's finite values."""
    finite = vals[np.isfinite(vals)]
    if finite.size == 0:
        return {"median": 0.0, "mean": 0.0, "std": 1.0}
    median = float(np.median(finite))
    filled = np.where(np.isfinite(vals), vals, median)
    std = float(filled.std())
    return {"median": median, "mean": float(filled.mean()), "std": std if std > 1e-12 else 1.0}
