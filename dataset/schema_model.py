"""The dataset schema model: what a parsed schema file holds (see dataset/schema.py to load one).

Standard library only: ships to AWS Glue and into model packages with dataset/schema.py.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

COLUMN_TYPES = ("string", "integer", "double", "boolean", "date", "timestamp")
ROLES = ("id", "target", "categorical", "numeric", "boolean", "event_time", "passthrough")
FEATURE_ROLES = ("categorical", "numeric", "boolean")
DEFAULT_TRUE_VALUES = ("yes", "y", "true", "t", "1")
DEFAULT_FALSE_VALUES = ("no", "n", "false", "f", "0")

# Per-subscriber usage aggregates produced by the CDR aggregation job. A schema opts in
# to joining them with a `usage` section; the names are the contract between the
# aggregation job, the feature job and the feature transformer.
USAGE_FEATURES = (
    "usage_calls",
    "usage_minutes",
    "usage_minutes_night",
    "usage_minutes_morning",
    "usage_minutes_afternoon",
    "usage_minutes_evening",
    "usage_international_calls",
    "usage_dropped_calls",
    "usage_dropped_call_rate",
    "usage_distinct_cells",
    "usage_active_days",
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Longest id (in characters, after trimming) an id column of type string accepts unless its
# checks.max_length says otherwise: longer values are quarantined, never truncated.
DEFAULT_ID_MAX_LENGTH = 128
DEFAULT_OTHER_BUCKET = "__other__"


class SchemaError(ValueError):
    """A schema file is invalid; the message names the file, the field and what is allowed."""


@dataclass(frozen=True)
class NullFill:
    """Explicit rule for an expected null: fill `value` when `when_column` is within bounds."""

    value: Any
    when_column: str
    when_min: float | None
    when_max: float | None
    reason: str


@dataclass(frozen=True)
class Vocabulary:
    """A categorical column whose categories are learned when the transformer is fitted.

    `ColumnSpec.vocabulary` is set exactly when the schema says `vocabulary: {learn: true}`;
    such a column has `allowed` None.

    Declared as `vocabulary: {learn: true, min_frequency: N, other_bucket: NAME}` instead of
    `checks.allowed`. At fit time the categories seen at least `min_frequency` times in the
    training split become the vocabulary; at transform time any other value (rarer at fit,
    or never seen) is encoded as the single category `other_bucket`. The ETL gate applies no
    allowed-values check to such a column.
    """

    min_frequency: int = 1
    other_bucket: str = DEFAULT_OTHER_BUCKET


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    role: str
    pii: bool = False
    not_null: bool = False
    unique: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    null_fill: NullFill | None = None
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES
    description: str = ""
    max_length: int | None = None
    vocabulary: Vocabulary | None = None


@dataclass(frozen=True)
class EngineeredFeature:
    """A derived numeric feature computed by the feature transformer.

    ops (docs/dataset-schema.md has the table; dataset/schema_features.py validates them):
      ratio        [numerator, denominator]; 0 when the denominator is 0
      log1p        [x]; log(1 + max(x, 0))
      count_equal  one or more inputs; how many of them equal `value`
      product      two or more inputs multiplied; a numeric/boolean input contributes its value,
                   a categorical input the indicator "equals `value`" (an interaction feature)
      sum          two or more numeric/boolean inputs added
      difference   [a, b]: a - b
      threshold    [x]: 1.0 when x >= `at_least` (or x <= `at_most`; exactly one is set), else 0.0
    An input may be another engineered feature; DatasetSchema.engineered lists features in
    evaluation order (each after the engineered features it uses).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    value: Any = None
    at_least: float | None = None
    at_most: float | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The op's parameters that are set (`value`, `at_least`, `at_most`), for serialising."""
        both = {"value": self.value, "at_least": self.at_least, "at_most": self.at_most}
        return {k: v for k, v in both.items() if v is not None}


@dataclass(frozen=True)
class UsageSpec:
    window_days: int
    features: tuple[str, ...]


@dataclass(frozen=True)
class DatasetSchema:
    name: str
    version: str
    description: str
    columns: tuple[ColumnSpec, ...]
    positive_label: str
    engineered: tuple[EngineeredFeature, ...] = ()
    usage: UsageSpec | None = None
    source: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.path}: no column '{name}'")

    def _by_role(self, role: str) -> list[str]:
        return [c.name for c in self.columns if c.role == role]

    @property
    def id_column(self) -> str:
        return self._by_role("id")[0]

    @property
    def target_column(self) -> str:
        return self._by_role("target")[0]

    @property
    def event_time_column(self) -> str | None:
        names = self._by_role("event_time")
        return names[0] if names else None

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pii]

    @property
    def categorical_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "categorical" and not c.pii]

    @property
    def numeric_columns(self) -> list[str]:
        """Numeric inputs: schema numeric columns plus the joined usage aggregates."""
        base = [c.name for c in self.columns if c.role == "numeric" and not c.pii]
        return base + list(self.usage.features if self.usage else ())

    @property
    def boolean_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "boolean" and not c.pii]

    @property
    def raw_feature_columns(self) -> list[str]:
        """Fields a caller sends for scoring (inference payload), in schema order."""
        return self.categorical_columns + self.numeric_columns + self.boolean_columns

    @property
    def learned_vocabulary_columns(self) -> list[str]:
        """Categorical columns whose categories are learned at fit time (`vocabulary.learn`)."""
        return [c.name for c in self.columns if c.vocabulary is not None and c.name in self.categorical_columns]

    @property
    def source_rename(self) -> dict[str, str]:
        """`source.rename`: raw header name -> declared column name (validated at parse time)."""
        return dict(self.source.get("rename") or {})

    @property
    def source_columns(self) -> list[str]:
        """Columns expected in a raw snapshot file (everything declared in `columns`)."""
        return [c.name for c in self.columns]

    @property
    def fingerprint(self) -> str:
        """Stable short hash of the schema's meaning, stored with every model artefact."""
        canonical = repr((self.name, self.version, self.columns, self.positive_label,
                          self.engineered, self.usage))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]
