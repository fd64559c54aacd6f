"""Feature transformer: raw subscriber fields -> float32 model matrix.

Fitted from a dataset schema on the training split, then serialised to JSON. Transforming
needs only numpy (no pandas, no scikit-learn, no schema parser) because this module ships
inside the Neuron inference container as `code/transform.py` next to `code/inference.py`; the
coercion of raw values (missing, numbers, boolean tokens) lives in `feature_values.py`.

Encoding, all driven by the schema:
  categorical  one 0/1 column per category. A closed vocabulary (`checks.allowed`): the allowed
               categories; an unknown or missing value encodes as all zeros and is counted in
               `TransformStats` (the inference handler rejects unknown categories before they
               get here; batch scoring counts them). A learned vocabulary (`vocabulary: {learn:
               true}`): the categories seen at least `min_frequency` times in the training split,
               then the `other_bucket` category, which every other non-missing value (rarer at
               fit, or never seen) encodes as (counted in `TransformStats.other_bucket`); a
               missing value encodes as all zeros. The learned list is stored in transformer.json,
               so serving uses exactly the vocabulary the model was trained with.
  boolean      schema true/false tokens (lower-case), Python/numpy bools and 0/1 -> 0/1;
               missing -> share of true in the training split.
  numeric      median imputation, then standardisation with training mean and std. A column declared
               in the schema's `columns` also carries its `domain` (type integer/double, min, max:
               the data-quality gate's TYPE and RANGE rules), which the inference handler enforces
               (record_validation.py); usage aggregates have none. Files written before `domain`
               existed load, without those checks.
  engineered   ratio (0 when the denominator is 0), log1p (of max(x, 0)), count_equal, product
               (numeric/boolean values times categorical "== value" indicators), sum, difference,
               threshold (1.0 when x >= at_least, or x <= at_most); computed from the imputed raw
               values (an engineered input: its imputed, unstandardised value; the spec lists
               features in evaluation order), then imputed and standardised like numerics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    from serving import feature_values as _values
except ImportError:  # inside model.tar.gz: code/feature_values.py sits next to this file
    import feature_values as _values  # type: ignore[no-redef]

TransformError = _values.TransformError
# 2: learned vocabularies (categorical "other_bucket"), ops sum/difference/threshold, engineered
# inputs. Version 1 files (none of these) still load.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
ENGINEERED_OPS = ("ratio", "log1p", "count_equal", "product", "sum", "difference", "threshold")


@dataclass
class TransformStats:
    """Counts of values the transformer had to encode without information."""

    rows: int = 0
    unknown_categories: dict[str, int] = field(default_factory=dict)
    missing_values: dict[str, int] = field(default_factory=dict)
    # learned vocabularies: values encoded as the column's other bucket (rare at fit, or unseen)
    other_bucket: dict[str, int] = field(default_factory=dict)

    def add(self, bucket: dict[str, int], column: str, n: int) -> None:
        if n:
            bucket[column] = bucket.get(column, 0) + int(n)


class FeatureTransformer:
    """Schema-driven encoder. Build with `fit`, persist with `to_json`/`save`, restore with `load`."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self._validate_spec()
        self.categorical: list[dict[str, Any]] = spec["categorical"]
        self.boolean: list[dict[str, Any]] = spec["boolean"]
        self.numeric: list[dict[str, Any]] = spec["numeric"]
        self.engineered: list[dict[str, Any]] = spec["engineered"]
        self.feature_names: list[str] = self._feature_names()
        self._cat_index = [{c: i for i, c in enumerate(col["categories"])} for col in self.categorical]
        # index of the other bucket for a learned vocabulary, -1 for a closed one
        self._cat_other = [
            self._cat_index[k][col["other_bucket"]] if col.get("other_bucket") is not None else -1
            for k, col in enumerate(self.categorical)
        ]
        self._bool_maps = [self._bool_map(col) for col in self.boolean]
        dense = self.numeric + self.engineered
        self._num_median = np.array([c["median"] for c in dense], dtype=np.float64)
        self._num_mean = np.array([c["mean"] for c in dense], dtype=np.float64)
        self._num_std = np.array([c["std"] for c in dense], dtype=np.float64)

    # ----------------------------------------------------------------- description
    @property
    def input_fields(self) -> list[str]:
        """Raw fields a caller must send, in schema order (categorical, numeric, boolean)."""
        return list(self.spec["input_fields"])

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def field_kind(self, name: str) -> str:
        return str(self.spec["field_kinds"][name])

    def open_vocabulary(self, name: str) -> bool:
        """True for a categorical with a learned vocabulary: any value is accepted (others -> the bucket)."""
        return any(c["name"] == name and c.get("other_bucket") is not None for c in self.categorical)

    def _feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.categorical:
            names += [f"{col['name']}={c}" for c in col["categories"]]
        names += [c["name"] for c in self.boolean]
        names += [c["name"] for c in self.numeric]
        names += [c["name"] for c in self.engineered]
        return names

    def _validate_spec(self) -> None:
        spec = self.spec
        if not isinstance(spec, dict) or spec.get("format_version") not in READABLE_VERSIONS:
            raise TransformError(
                f"transformer spec: format_version must be one of {list(READABLE_VERSIONS)}, "
                f"got {spec.get('format_version') if isinstance(spec, dict) else spec!r}"
            )
        for key in (
            "input_fields",
            "field_kinds",
            "categorical",
            "boolean",
            "numeric",
            "engineered",
            "schema",
            "labels",
        ):
            if key not in spec:
                raise TransformError(f"transformer spec: missing key '{key}'")
        for col in spec["categorical"]:
            cats, other = col.get("categories"), col.get("other_bucket")
            if not isinstance(cats, list) or not cats or len(set(cats)) != len(cats):
                raise TransformError(
                    f"transformer spec: categorical '{col.get('name')}' needs a non-empty list "
                    f"of distinct categories, got {cats!r}"
                )
            if other is not None and cats[-1] != other:
                raise TransformError(
                    f"transformer spec: categorical '{col['name']}': the other bucket "
                    f"{other!r} must be its last category"
                )
        known = set(spec["input_fields"])
        for entry in spec["engineered"]:
            if entry.get("op") not in ENGINEERED_OPS:
                raise TransformError(
                    f"transformer spec: engineered feature '{entry.get('name')}': op "
                    f"{entry.get('op')!r} is not one of {list(ENGINEERED_OPS)}"
                )
            unknown = [i for i in entry["inputs"] if i not in known]
            if unknown:
                raise TransformError(
                    f"transformer spec: engineered feature '{entry['name']}' uses {unknown}, "
                    "which are neither input fields nor engineered features listed before it"
                )
            known.add(entry["name"])

    @staticmethod
    def _bool_map(col: dict[str, Any]) -> dict[Any, float]:
        mapping: dict[Any, float] = {True: 1.0, False: 0.0}  # also matches 1, 0, 1.0, 0.0
        for t in col["true_values"]:
            mapping[t] = 1.0
        for t in col["false_values"]:
            mapping[t] = 0.0
        return mapping

    # ----------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, frame: Any, schema: Any) -> FeatureTransformer:
        """Fit on the training split. `frame`: pandas DataFrame (or mapping of columns)."""
        n = len(frame[schema.raw_feature_columns[0]]) if schema.raw_feature_columns else 0
        if n == 0:
            raise TransformError(f"schema '{schema.name}': cannot fit the transformer on 0 rows")
        missing = [c for c in schema.raw_feature_columns if c not in frame]
        if missing:
            raise TransformError(f"training data lacks feature columns {missing} declared in schema '{schema.name}'")
        categorical = _fit_categorical(frame, schema)
        boolean = _fit_boolean(frame, schema)
        numeric, raw_numeric = _fit_numeric(frame, schema)
        engineered = _engineered_entries(schema)
        spec_dict: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint},
            "labels": _labels(schema),
            "input_fields": list(schema.raw_feature_columns),
            "field_kinds": {
                **{c: "categorical" for c in schema.categorical_columns},
                **{c: "numeric" for c in schema.numeric_columns},
                **{c: "boolean" for c in schema.boolean_columns},
            },
            "categorical": categorical,
            "boolean": boolean,
            "numeric": numeric,
            "engineered": [],
        }
        # Engineered statistics need the partially-built transformer to compute raw values; in
        # evaluation order, so a feature built on another sees that one's imputed values.
        partial = cls(spec_dict)
        columns = {c: np.asarray(frame[c]) for c in schema.raw_feature_columns}
        for eng in engineered:
            vals = partial._engineer(eng, columns, raw_numeric)
            eng.update(_values.dense_stats(vals))
            raw_numeric[eng["name"]] = np.where(np.isfinite(vals), vals, eng["median"])
        spec_dict["engineered"] = engineered
        return cls(spec_dict)

    # ----------------------------------------------------------------- transforming
    def _kind(self, name: str) -> str:
        """An input field's kind, or 'engineered' for an engineered feature used as an input."""
        return str(self.spec["field_kinds"].get(name, "engineered"))

    def _engineer(
        self, entry: dict[str, Any], columns: Mapping[str, np.ndarray], numeric: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """Raw (unstandardised) values of one engineered feature. `numeric`: imputed raw values of
        the numeric fields and of the engineered features before this one."""
        op, inputs = entry["op"], entry["inputs"]
        n = len(next(iter(columns.values()))) if columns else 0

        def dense(name: str) -> np.ndarray:
            if name in numeric:
                return numeric[name]
            kind = self._kind(name)
            if kind == "boolean":
                col = next(c for c in self.boolean if c["name"] == name)
                vals = _values.bool_values(
                    np.asarray(columns[name], dtype=object), name, col["true_values"], col["false_values"]
                )
                return np.where(np.isnan(vals), col["impute"], vals)
            raise TransformError(
                f"engineered feature '{entry['name']}': op '{op}' needs numeric input, '{name}' is {kind}"
            )

        def equals(name: str, target: Any) -> np.ndarray:
            """0/1: input `name` equals `target` (a category, a boolean token or a number)."""
            kind = self._kind(name)
            if kind == "categorical":
                col = np.asarray(columns[name], dtype=object)
                return (col == str(target)).astype(np.float64)
            if kind == "boolean":
                tv = (
                    target
                    if isinstance(target, bool)
                    else str(target).strip().lower()
                    in (next(c for c in self.boolean if c["name"] == name)["true_values"])
                )
                return (dense(name) == (1.0 if tv else 0.0)).astype(np.float64)
            return (dense(name) == float(target)).astype(np.float64)

        if op == "ratio":
            num, den = dense(inputs[0]), dense(inputs[1])
            safe = np.where(den == 0, 1.0, den)
            return np.where(den == 0, 0.0, num / safe)
        if op == "log1p":
            return np.log1p(np.maximum(dense(inputs[0]), 0.0))
        if op == "count_equal":
            total = np.zeros(n, dtype=np.float64)
            for name in inputs:
                total += equals(name, entry["value"])
            return total
        if op == "product":
            prod = np.ones(n, dtype=np.float64)
            for name in inputs:
                prod *= equals(name, entry["value"]) if self._kind(name) == "categorical" else dense(name)
            return prod
        if op == "sum":
            total = np.zeros(n, dtype=np.float64)
            for name in inputs:
                total += dense(name)
            return total
        if op == "difference":
            return dense(inputs[0]) - dense(inputs[1])
        if op == "threshold":
            x = dense(inputs[0])
            if entry.get("at_least") is not None:
                return (x >= float(entry["at_least"])).astype(np.float64)
            return (x <= float(entry["at_most"])).astype(np.float64)
        raise TransformError(f"engineered feature '{entry['name']}': unknown op '{op}'")

    def transform(self, frame: Any, stats: TransformStats | None = None) -> np.ndarray:
        """Encode rows. `frame`: pandas DataFrame or mapping column -> sequence (all same length)."""
        absent = [f for f in self.input_fields if f not in frame]
        if absent:
            raise TransformError(f"input lacks fields {absent}")
        columns = {f: np.asarray(frame[f]) for f in self.input_fields}
        n = len(columns[self.input_fields[0]]) if self.input_fields else 0
        stats = stats if stats is not None else TransformStats()
        stats.rows += n
        out = np.zeros((n, self.n_features), dtype=np.float32)
        j = 0
        for col, index, other in zip(self.categorical, self._cat_index, self._cat_other, strict=True):
            vals = columns[col["name"]]
            codes = np.fromiter((index.get(v, -1) if isinstance(v, str) else -1 for v in vals), dtype=np.int64, count=n)
            if other >= 0:
                # Learned vocabulary: a value equal to the bucket's name is no category of its own.
                codes[codes == other] = -1
            bad = codes < 0
            if bad.any():
                miss = _values.is_missing_array(np.asarray(vals, dtype=object))
                stats.add(stats.missing_values, col["name"], int((bad & miss).sum()))
                if other >= 0:
                    codes[bad & ~miss] = other
                    stats.add(stats.other_bucket, col["name"], int((bad & ~miss).sum()))
                    bad = codes < 0
                else:
                    stats.add(stats.unknown_categories, col["name"], int((bad & ~miss).sum()))
            rows = np.nonzero(~bad)[0]
            out[rows, j + codes[rows]] = 1.0
            j += len(col["categories"])
        for col, mapping in zip(self.boolean, self._bool_maps, strict=True):
            vals = columns[col["name"]]
            bool_kind = vals.dtype.kind == "b"
            out[:, j] = vals.astype(np.float32) if bool_kind else self._encode_bool(vals, col, mapping, stats)
            j += 1
        raw_numeric: dict[str, np.ndarray] = {}
        dense_block = np.empty((n, len(self.numeric) + len(self.engineered)), dtype=np.float64)
        for k, col in enumerate(self.numeric):
            vals = _values.to_float(columns[col["name"]], col["name"])
            miss = ~np.isfinite(vals)
            if miss.any():
                stats.add(stats.missing_values, col["name"], int(miss.sum()))
                vals = np.where(miss, col["median"], vals)
            raw_numeric[col["name"]] = vals
            dense_block[:, k] = vals
        for k, entry in enumerate(self.engineered, start=len(self.numeric)):
            vals = self._engineer(entry, columns, raw_numeric)
            vals = np.where(np.isfinite(vals), vals, entry["median"])
            raw_numeric[entry["name"]] = vals  # an input of the engineered features after it
            dense_block[:, k] = vals
        if dense_block.shape[1]:
            out[:, j:] = (dense_block - self._num_mean) / self._num_std
        return out

    def _encode_bool(
        self, vals: np.ndarray, col: dict[str, Any], mapping: dict[Any, float], stats: TransformStats
    ) -> np.ndarray:
        out = np.empty(len(vals), dtype=np.float32)
        missing = 0
        for i, v in enumerate(vals):
            key = v.strip().lower() if isinstance(v, str) else v
            try:
                hit = None if _values.is_na(key) else mapping.get(key)
            except TypeError:
                hit = None
            if hit is None:
                if _values.is_na(v):
                    out[i] = col["impute"]
                    missing += 1
                    continue
                raise TransformError(
                    f"column '{col['name']}', row {i}: {_values.show(v)} is not a boolean "
                    f"(true: {col['true_values']}, false: {col['false_values']})"
                )
            out[i] = hit
        stats.add(stats.missing_values, col["name"], missing)
        return out

    # ----------------------------------------------------------------- persistence
    def to_json(self) -> str:
        return json.dumps(self.spec, indent=2, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureTransformer:
        path = Path(path)
        try:
            spec = json.loads(path.read_text())
        except FileNotFoundError:
            raise TransformError(f"{path}: transformer file not found") from None
        except json.JSONDecodeError as exc:
            raise TransformError(f"{path}: not valid JSON ({exc})") from None
        try:
            return cls(spec)
        except TransformError as exc:
            raise TransformError(f"{path}: {exc}") from None


# --------------------------------------------------------------------- fitting, one kind of field at a time
def _labels(schema: Any) -> dict[str, str]:
    positive = schema.positive_label
    others = [a for a in (schema.column(schema.target_column).allowed or ()) if a != positive]
    return {"positive": positive, "negative": others[0] if len(others) == 1 else f"not {positive}"}


def _fit_categorical(frame: Any, schema: Any) -> list[dict[str, Any]]:
    out = []
    for name in schema.categorical_columns:
        spec = schema.column(name)
        entry: dict[str, Any] = {"name": name, "nullable": not spec.not_null}
        if spec.vocabulary is None:
            entry["categories"] = list(spec.allowed or ())
            if not entry["categories"]:
                raise TransformError(
                    f"{schema.path}: categorical column '{name}' has no categories "
                    "(declare checks.allowed or vocabulary: {learn: true})"
                )
        else:
            entry.update(_learn_vocabulary(np.asarray(frame[name], dtype=object), name, spec.vocabulary))
        out.append(entry)
    return out


def _learn_vocabulary(values: np.ndarray, name: str, vocabulary: Any) -> dict[str, Any]:
    """Categories seen at least `min_frequency` times (most frequent first, ties by name), then the
    other bucket. A training value equal to the bucket's name would merge a real category with the
    rare ones: refused."""
    other = vocabulary.other_bucket
    counts: dict[str, int] = {}
    for v in values:
        if isinstance(v, str):
            counts[v] = counts.get(v, 0) + 1
    if other in counts:
        raise TransformError(
            f"column '{name}': the training data holds the value {other!r} "
            f"{counts[other]} time(s), which is the vocabulary's other_bucket; choose an "
            "other_bucket name that is no real category"
        )
    kept = sorted((c for c, k in counts.items() if k >= vocabulary.min_frequency), key=lambda c: (-counts[c], c))
    return {
        "categories": [*kept, other],
        "other_bucket": other,
        "vocabulary": {
            "min_frequency": vocabulary.min_frequency,
            "distinct_seen": len(counts),
            "values_in_other_bucket": int(sum(k for c, k in counts.items() if k < vocabulary.min_frequency)),
        },
    }


def _fit_boolean(frame: Any, schema: Any) -> list[dict[str, Any]]:
    out = []
    for name in schema.boolean_columns:
        spec = schema.column(name)
        vals = _values.bool_values(np.asarray(frame[name], dtype=object), name, spec.true_values, spec.false_values)
        share = float(np.nanmean(vals)) if np.isfinite(vals).any() else 0.0
        out.append(
            {
                "name": name,
                "true_values": list(spec.true_values),
                "false_values": list(spec.false_values),
                "impute": share,
                "nullable": not spec.not_null,
            }
        )
    return out


def _fit_numeric(frame: Any, schema: Any) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Numeric entries and the imputed raw values engineered features are computed from."""
    usage = set(schema.usage.features) if schema.usage else set()
    numeric: list[dict[str, Any]] = []
    raw_numeric: dict[str, np.ndarray] = {}
    for name in schema.numeric_columns:
        vals = _values.to_float(np.asarray(frame[name]), name)
        if np.isinf(vals).any():
            raise TransformError(f"training data column '{name}' contains infinite values")
        nullable = True if name in usage else not schema.column(name).not_null
        entry: dict[str, Any] = {"name": name, "nullable": nullable, **_values.dense_stats(vals)}
        if name not in usage:
            entry["domain"] = _domain(schema.column(name))
        fill = None if name in usage else schema.column(name).null_fill
        if fill is not None and fill.when_column in schema.numeric_columns:
            # The schema's explicit rule for an expected null (e.g. no bill yet in month 0).
            entry["null_fill"] = {
                "value": float(fill.value),
                "when_column": fill.when_column,
                "when_min": fill.when_min,
                "when_max": fill.when_max,
            }
        numeric.append(entry)
        raw_numeric[name] = np.where(np.isnan(vals), entry["median"], vals)
    return numeric, raw_numeric


def _domain(spec: Any) -> dict[str, Any]:
    """The column's declared type and range (`checks.min` / `checks.max`): the rules the ETL
    data-quality gate enforces (TYPE, RANGE), carried so the inference handler enforces the same."""
    return {"type": spec.type, "min": spec.min, "max": spec.max}


def _engineered_entries(schema: Any) -> list[dict[str, Any]]:
    """Engineered features from the schema in evaluation order, before their statistics are fitted."""
    known = set(schema.raw_feature_columns)
    out = []
    for feat in schema.engineered:
        bad = [i for i in feat.inputs if i not in known]
        if bad:
            raise TransformError(
                f"{schema.path}: engineered feature '{feat.name}' uses {bad}, which "
                "are not feature columns or engineered features before it (only "
                "categorical/numeric/boolean inputs can be computed at inference)"
            )
        if feat.op not in ENGINEERED_OPS:
            raise TransformError(
                f"{schema.path}: engineered feature '{feat.name}': op '{feat.op}' is not "
                f"one the transformer computes ({list(ENGINEERED_OPS)})"
            )
        out.append(
            {
                "name": feat.name,
                "op": feat.op,
                "inputs": list(feat.inputs),
                "value": feat.value,
                "at_least": feat.at_least,
                "at_most": feat.at_most,
            }
        )
        known.add(feat.name)
    return out
