"""Model Monitor's data-quality checks and distances, and population stability, on numpy/pandas.

Per baseline feature (constraints.json / statistics.json as training_jobs/baseline.py writes them):
  data_type_check           share of present values of the baseline's inferred type (Integral: whole
                            numbers; Fractional: numbers; String: text) below datatype_check_threshold
  completeness_check        share of non-missing values below the feature's `completeness`
  non_negative_check        a negative value where `num_constraints.is_non_negative` is true (the
                            baseline's is_non_negative constraint; Model Monitor's documented violation
                            list names no type for it, so this name is the project's)
  categorical_values_check  share of values inside the baseline's `domains` below domain_content_threshold
  missing_column_check      a baseline feature absent from every captured record
  extra_column_check        a captured field that the baseline does not describe
  baseline_drift_check      distance above comparison_threshold (categorical_comparison_threshold for
                            String features when set)
Distance (Model Monitor's, which is Deequ's): the L-infinity distance between the baseline and window
distributions. Numeric: max |F_baseline(x) - F_window(x)| over the values of both, F_baseline from
the baseline's KLL sketch (level i weighted 2**i) and F_window the window's exact empirical CDF.
String: max |share_baseline(v) - share_window(v)| over the values of both. With comparison_method
"Robust" the distance is max(0, d - 1.8 * sqrt((n + m) / (n m))) (n, m the two counts; 1.8 is the
two-sample Kolmogorov-Smirnov c(alpha) for alpha about 0.003); "Simple" reports d itself.
PSI: sum (w - b) ln(w / b) over 10 buckets. Numeric buckets are the baseline's histogram buckets with
the outer edges opened to -inf/+inf; string buckets are the baseline's values plus one bucket for
values it never saw. Shares are floored at PSI_FLOOR so an empty bucket gives a finite value.
Read from constraints.json: monitoring_config (evaluate_constraints, emit_metrics, the thresholds,
comparison_method; categorical_drift_method LInfinity only). Per-feature monitoringConfigOverrides are
not read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training_jobs.errors import JobError

C_ALPHA = 1.8
PSI_FLOOR = 1e-4
PSI_BUCKETS = 10
NUMERIC_TYPES = ("Integral", "Fractional")
_BOOL_TOKENS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}


@dataclass(frozen=True)
class Violation:
    feature_name: str
    constraint_check_type: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return {
            "feature_name": self.feature_name,
            "constraint_check_type": self.constraint_check_type,
            "description": self.description,
        }


@dataclass
class FeatureDrift:
    """One feature's comparison: distance (as compared), simple distance, PSI, counts, violations."""

    name: str
    inferred_type: str
    distance: float | None = None
    simple_distance: float | None = None
    threshold: float | None = None
    psi: float | None = None
    present: int = 0
    missing: int = 0
    wrong_type: int = 0
    out_of_domain: int = 0
    violations: list[Violation] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "inferred_type": self.inferred_type,
            "distance": self.distance,
            "simple_distance": self.simple_distance,
            "threshold": self.threshold,
            "psi": self.psi,
            "present": self.present,
            "missing": self.missing,
            "wrong_type": self.wrong_type,
            "out_of_domain": self.out_of_domain,
            "drifted": any(v.constraint_check_type == "baseline_drift_check" for v in self.violations),
            "violations": [v.constraint_check_type for v in self.violations],
        }


@dataclass(frozen=True)
class MonitoringConfig:
    evaluate: bool
    emit_metrics: bool
    datatype_threshold: float
    domain_threshold: float
    compare: bool
    threshold: float
    categorical_threshold: float
    robust: bool

    @classmethod
    def from_constraints(cls, constraints: dict[str, Any], where: str) -> MonitoringConfig:
        config = constraints.get("monitoring_config") or {}
        dist = config.get("distribution_constraints") or {}
        method = dist.get("comparison_method", "Robust")
        if method not in ("Robust", "Simple"):
            raise JobError(
                f"{where}: monitoring_config.distribution_constraints.comparison_method "
                f"{method!r} is not Robust or Simple"
            )
        drift_method = dist.get("categorical_drift_method", "LInfinity")
        if drift_method != "LInfinity":
            raise JobError(
                f"{where}: categorical_drift_method {drift_method!r} is not supported "
                "(this detector computes LInfinity)"
            )
        try:
            threshold = float(dist.get("comparison_threshold", 0.1))
            return cls(
                evaluate=config.get("evaluate_constraints", "Enabled") == "Enabled",
                emit_metrics=config.get("emit_metrics", "Enabled") == "Enabled",
                datatype_threshold=float(config.get("datatype_check_threshold", 1.0)),
                domain_threshold=float(config.get("domain_content_threshold", 1.0)),
                compare=dist.get("perform_comparison", "Enabled") == "Enabled",
                threshold=threshold,
                categorical_threshold=float(dist.get("categorical_comparison_threshold", threshold)),
                robust=method == "Robust",
            )
        except (TypeError, ValueError) as exc:
            raise JobError(f"{where}: monitoring_config thresholds must be numbers ({exc})") from None


def linf_robust(simple: float, n: float, m: float, robust: bool) -> float:
    if not robust or n <= 0 or m <= 0:
        return simple
    return max(0.0, simple - C_ALPHA * float(np.sqrt((n + m) / (n * m))))


def sketch_values(stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted values, weights) of a numeric feature's KLL sketch; level i weighs 2**i."""
    kll = stats.get("distribution", {}).get("kll", {})
    levels = kll.get("sketch", {}).get("data") or []
    values = [np.asarray(level, dtype=np.float64) for level in levels]
    weights = [np.full(len(v), 2.0**i) for i, v in enumerate(values)]
    if not values or sum(len(v) for v in values) == 0:
        return np.empty(0), np.empty(0)
    vals, wts = np.concatenate(values), np.concatenate(weights)
    order = np.argsort(vals, kind="mergesort")
    return vals[order], wts[order]


def numeric_distance(base_values: np.ndarray, base_weights: np.ndarray, window: np.ndarray) -> float:
    """L-infinity distance between the sketch's CDF and the window's empirical CDF."""
    win = np.sort(window)
    points = np.concatenate([base_values, win])
    cum = np.cumsum(base_weights)
    idx = np.searchsorted(base_values, points, side="right")
    f_base = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0) / cum[-1]
    f_win = np.searchsorted(win, points, side="right") / win.size
    return float(np.max(np.abs(f_base - f_win)))


def categorical_distance(base_counts: pd.Series, window_counts: pd.Series) -> float:
    keys = base_counts.index.union(window_counts.index)
    b = base_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)
    w = window_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)
    return float(np.max(np.abs(b / b.sum() - w / w.sum())))


def psi(base_shares: np.ndarray, window_shares: np.ndarray) -> float:
    b = np.maximum(base_shares, PSI_FLOOR)
    w = np.maximum(window_shares, PSI_FLOOR)
    return float(np.sum((w - b) * np.log(w / b)))


def numeric_psi(stats: dict[str, Any], window: np.ndarray) -> float | None:
    buckets = stats.get("distribution", {}).get("kll", {}).get("buckets") or []
    if not buckets or window.size == 0:
        return None
    counts = np.asarray([b["count"] for b in buckets], dtype=np.float64)
    inner = np.asarray([b["upper_bound"] for b in buckets[:-1]], dtype=np.float64)
    # Baseline buckets are right-closed (lo, hi]: side="left" puts v == edge into the lower bucket.
    window_counts = np.bincount(np.searchsorted(inner, window, side="left"), minlength=len(buckets))
    return psi(counts / counts.sum(), window_counts / window.size)


def decile_psi(baseline: np.ndarray, window: np.ndarray) -> float:
    """PSI over PSI_BUCKETS equal-frequency buckets of the baseline (used for predictions)."""
    inner = np.unique(np.quantile(baseline, np.linspace(0, 1, PSI_BUCKETS + 1)[1:-1]))
    b = np.bincount(np.searchsorted(inner, baseline, side="left"), minlength=inner.size + 1)
    w = np.bincount(np.searchsorted(inner, window, side="left"), minlength=inner.size + 1)
    return psi(b / baseline.size, w / window.size)


def boolean_token_mapper(
    true_token: str, false_token: str, true_values: tuple[str, ...], false_values: tuple[str, ...]
) -> Callable[[Any], Any]:
    """Booleans (true/false, 0/1 or the schema's tokens) -> the token the baseline writes; others kept."""
    mapping = {
        **{k: (true_token if v else false_token) for k, v in _BOOL_TOKENS.items()},
        **dict.fromkeys(true_values, true_token),
        **dict.fromkeys(false_values, false_token),
    }

    def token(value: Any) -> Any:
        return mapping.get(str(value).strip().lower(), value)

    return token


def check_numeric(
    name: str, stats: dict[str, Any], constraint: dict[str, Any], raw: pd.Series, config: MonitoringConfig
) -> tuple[FeatureDrift, pd.Series]:
    """Checks of one numeric feature; also returns its values as float (NaN: missing or not a number)."""
    kind = constraint.get("inferred_type", stats.get("inferred_type", "Fractional"))
    result = FeatureDrift(name, kind)
    if raw.dtype.kind in "iuf":
        numbers = raw.astype(np.float64)
        present_mask = numbers.notna()
    elif raw.dtype.kind == "b":  # JSON true/false where a number belongs: present, never of type
        numbers = pd.Series(np.nan, index=raw.index)
        present_mask = pd.Series(True, index=raw.index)
    else:
        present_mask = raw.notna() & (raw.astype(str).str.strip() != "")
        numbers = pd.to_numeric(raw.where(present_mask), errors="coerce").astype(np.float64)
    is_number = present_mask & numbers.notna() & np.isfinite(numbers)
    of_type = is_number & ((numbers % 1 == 0) if kind == "Integral" else True)
    result.present, result.missing = int(present_mask.sum()), int((~present_mask).sum())
    result.wrong_type = int(result.present - of_type.sum())
    _common_checks(result, constraint, config, int(of_type.sum()), len(raw))
    values = numbers.where(is_number)
    finite = values.dropna().to_numpy()
    if constraint.get("num_constraints", {}).get("is_non_negative") and finite.size and finite.min() < 0:
        negatives = int((finite < 0).sum())
        result.violations.append(
            Violation(
                name,
                "non_negative_check",
                f"Data type {kind}: {negatives} negative value(s), the baseline "
                f"requires non-negative values (minimum {finite.min():g})",
            )
        )
    base_values, base_weights = sketch_values(stats.get("numerical_statistics", {}))
    if finite.size and base_values.size:
        n = float(stats["numerical_statistics"]["common"]["num_present"])
        result.simple_distance = numeric_distance(base_values, base_weights, finite)
        result.distance = linf_robust(result.simple_distance, n, float(finite.size), config.robust)
        result.threshold = config.threshold
        result.psi = numeric_psi(stats["numerical_statistics"], finite)
        _drift_check(result, config)
    return result, values


def check_string(
    name: str,
    stats: dict[str, Any],
    constraint: dict[str, Any],
    raw: pd.Series,
    config: MonitoringConfig,
    normalise: Callable[[Any], Any] | None = None,
) -> tuple[FeatureDrift, pd.Series]:
    """Checks of one String feature; also returns its text values as a categorical (NaN: missing or not
    text). Works on the distinct values (pandas.factorize) and their counts, so the cost per record is one
    hashing pass; `normalise` maps each distinct value (e.g. a boolean to the baseline's token)."""
    result = FeatureDrift(name, "String")
    codes, uniques = _distinct(raw, normalise)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    is_text = np.fromiter((isinstance(u, str) for u in uniques), dtype=bool, count=len(uniques))
    result.present = int(counts.sum())
    result.missing = len(raw) - result.present
    text_total = int(counts[is_text].sum())
    result.wrong_type = result.present - text_total
    _common_checks(result, constraint, config, text_total, len(raw))
    text_index = np.full(len(uniques) + 1, -1, dtype=np.int64)  # last slot: missing (code -1)
    text_index[np.flatnonzero(is_text)] = np.arange(int(is_text.sum()))
    categories = pd.Index(uniques[is_text], dtype=object)
    values = pd.Series(pd.Categorical.from_codes(text_index[codes], categories=categories), index=raw.index)
    text = pd.Series(counts[is_text], index=categories)  # window value counts
    text = text[text > 0]
    domains = (constraint.get("string_constraints") or {}).get("domains")
    if domains is not None and text_total:
        outside = text[~text.index.isin(domains)]
        result.out_of_domain = int(outside.sum())
        share = 1.0 - result.out_of_domain / text_total
        if share < config.domain_threshold:
            unknown = sorted(outside.index.tolist())[:10]
            result.violations.append(
                Violation(
                    name,
                    "categorical_values_check",
                    f"Baseline domain share {share:.4f} is below domain_content_threshold "
                    f"{config.domain_threshold:g}: {result.out_of_domain} value(s) outside the baseline "
                    f"domain, e.g. {unknown}",
                )
            )
    buckets = stats.get("string_statistics", {}).get("distribution", {}).get("categorical", {}).get("buckets")
    if buckets and text_total:
        base = pd.Series({b["value"]: float(b["count"]) for b in buckets})
        result.simple_distance = categorical_distance(base, text)
        result.distance = linf_robust(result.simple_distance, float(base.sum()), float(text_total), config.robust)
        result.threshold = config.categorical_threshold
        unseen = float(text[~text.index.isin(base.index)].sum())
        result.psi = psi(
            np.append(base.to_numpy() / base.sum(), 0.0),
            np.append(text.reindex(base.index, fill_value=0).to_numpy() / text_total, unseen / text_total),
        )
        _drift_check(result, config)
    return result, values


def _distinct(raw: pd.Series, normalise: Callable[[Any], Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values) of `raw`: code -1 for missing; after `normalise`, equal values share a code."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    if normalise is None or not len(uniques):
        return codes, uniques
    remap, merged = pd.factorize(pd.Series([normalise(u) for u in uniques], dtype=object), use_na_sentinel=True)
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return codes, np.asarray(merged, dtype=object)


def _common_checks(
    result: FeatureDrift, constraint: dict[str, Any], config: MonitoringConfig, of_type: int, total: int
) -> None:
    if result.present:
        share = of_type / result.present
        if share < config.datatype_threshold:
            result.violations.append(
                Violation(
                    result.name,
                    "data_type_check",
                    f"Data type match requirement is not met. Expected data type: {result.inferred_type}, "
                    f"expected match: {config.datatype_threshold:g}, observed: {share:.4f} "
                    f"({result.wrong_type} value(s) of another type)",
                )
            )
    completeness = constraint.get("completeness")
    if completeness is not None and total:
        observed = result.present / total
        if observed < float(completeness) - 1e-12:
            result.violations.append(
                Violation(
                    result.name,
                    "completeness_check",
                    f"Data completeness requirement is not met. Expected completeness: {float(completeness):.6f}, "
                    f"observed: {observed:.6f} ({result.missing} missing)",
                )
            )


def _drift_check(result: FeatureDrift, config: MonitoringConfig) -> None:
    if (
        config.compare
        and result.distance is not None
        and result.threshold is not None
        and result.distance > result.threshold
    ):
        result.violations.append(
            Violation(
                result.name,
                "baseline_drift_check",
                f"Baseline drift distance: {result.distance:.6f} exceeds threshold: {result.threshold:g}",
            )
        )
