"""Parsing and validating `engineered_features` (the op table is in docs/dataset-schema.md).

Everything is checked at parse time, before any job starts, with one-line messages naming
the file, the feature and the problem: the op and its parameters, the number of inputs,
what each input is (a feature column, a usage aggregate or another engineered feature —
never an id, target, passthrough, event-time or PII column), the `value` against the
inputs it is compared with, and cycles between engineered features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataset.schema_fields import mapping, only_keys, text
from dataset.schema_model import NAME_PATTERN, ColumnSpec, EngineeredFeature, SchemaError, UsageSpec

NUMERIC_KINDS = ("numeric", "boolean", "usage", "engineered")


@dataclass(frozen=True)
class OpSpec:
    """What an op accepts: input count, input kinds and parameters."""

    min_inputs: int
    max_inputs: int | None
    numeric_inputs: bool  # True: every input must be numeric/boolean (no categorical)
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # exactly one of these parameters

    @property
    def params(self) -> tuple[str, ...]:
        return self.required + self.optional + self.one_of


OPS: dict[str, OpSpec] = {
    "ratio": OpSpec(2, 2, numeric_inputs=True),
    "log1p": OpSpec(1, 1, numeric_inputs=True),
    "count_equal": OpSpec(1, None, numeric_inputs=False, required=("value",)),
    "product": OpSpec(2, None, numeric_inputs=False, optional=("value",)),
    "sum": OpSpec(2, None, numeric_inputs=True),
    "difference": OpSpec(2, 2, numeric_inputs=True),
    "threshold": OpSpec(1, 1, numeric_inputs=True, one_of=("at_least", "at_most")),
}
ENGINEERED_OPS = tuple(OPS)


def parse_engineered(raw: Any, where: str, columns: tuple[ColumnSpec, ...],
                     usage: UsageSpec | None) -> tuple[EngineeredFeature, ...]:
    """The engineered features in evaluation order (each after the engineered inputs it uses)."""
    raw_list = raw or []
    if not isinstance(raw_list, list):
        raise SchemaError(f"{where}: engineered_features must be a list")
    taken = {c.name for c in columns} | set(usage.features if usage else ())
    features: list[EngineeredFeature] = []
    for i, entry in enumerate(raw_list):
        feat = _parse_shape(entry, where, f"engineered_features[{i}]")
        if feat.name in taken:
            raise SchemaError(f"{where}: engineered_features[{i}].name '{feat.name}' must be a new "
                              "lower_snake_case name (it is already a column, usage or engineered feature)")
        taken.add(feat.name)
        features.append(feat)
    kinds = _input_kinds(columns, usage, features)
    specs = {c.name: c for c in columns}
    for i, feat in enumerate(features):
        ctx = f"engineered_features[{i}] ({feat.name})"
        for name in feat.inputs:
            _check_input(name, feat, kinds, where, ctx)
        _check_value(feat, kinds, specs, where, ctx)
    return _evaluation_order(features, where)


def _parse_shape(raw: Any, where: str, ctx: str) -> EngineeredFeature:
    """One entry on its own: keys, name, op, parameters and the number of inputs."""
    m = mapping(raw, where, ctx)
    name = text(m, "name", where, ctx)
    if not NAME_PATTERN.match(name):
        raise SchemaError(f"{where}: {ctx}.name '{name}' must be a new lower_snake_case name")
    ctx = f"{ctx} ({name})"
    only_keys(m, where, ctx, {"name", "op", "inputs", "value", "at_least", "at_most"})
    op = text(m, "op", where, ctx)
    if op not in OPS:
        raise SchemaError(f"{where}: {ctx}.op '{op}' is not one of {list(ENGINEERED_OPS)}")
    spec = OPS[op]
    inputs = m.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) and x for x in inputs):
        raise SchemaError(f"{where}: {ctx}.inputs must be a non-empty list of names, got {inputs!r}")
    n = len(inputs)
    if spec.max_inputs == spec.min_inputs and n != spec.min_inputs:
        raise SchemaError(f"{where}: {ctx}: op '{op}' takes {spec.min_inputs} input(s), got {n}")
    if n < spec.min_inputs:
        raise SchemaError(f"{where}: {ctx}: op '{op}' takes at least {spec.min_inputs} inputs, got {n}")
    repeated = sorted({x for x in inputs if inputs.count(x) > 1})
    if repeated:
        raise SchemaError(f"{where}: {ctx}.inputs repeat {repeated}")
    _check_params(m, op, spec, where, ctx)
    return EngineeredFeature(name, op, tuple(inputs), m.get("value"),
                             _number(m, "at_least", where, ctx), _number(m, "at_most", where, ctx))


def _check_params(m: dict[str, Any], op: str, spec: OpSpec, where: str, ctx: str) -> None:
    given = [k for k in ("value", "at_least", "at_most") if k in m]
    extra = [k for k in given if k not in spec.params]
    if extra:
        allowed = list(spec.params) or "no parameters"
        raise SchemaError(f"{where}: {ctx}: op '{op}' does not take {extra} (it takes {allowed})")
    missing = [k for k in spec.required if m.get(k) is None]
    if missing:
        raise SchemaError(f"{where}: {ctx}: op '{op}' needs a '{missing[0]}'")
    if spec.one_of and len([k for k in spec.one_of if m.get(k) is not None]) != 1:
        raise SchemaError(f"{where}: {ctx}: op '{op}' needs exactly one of {list(spec.one_of)}")


def _number(m: dict[str, Any], key: str, where: str, ctx: str) -> float | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise SchemaError(f"{where}: {ctx}.{key} must be a number, got {value!r}")
    return float(value)


def _input_kinds(columns: tuple[ColumnSpec, ...], usage: UsageSpec | None,
                 features: list[EngineeredFeature]) -> dict[str, str]:
    """name -> kind: a column's role ('pii' for PII columns), 'usage' or 'engineered'."""
    kinds = {c.name: ("pii" if c.pii else c.role) for c in columns}
    kinds.update({u: "usage" for u in (usage.features if usage else ())})
    kinds.update({f.name: "engineered" for f in features})
    return kinds


def _check_input(name: str, feat: EngineeredFeature, kinds: dict[str, str], where: str, ctx: str) -> None:
    kind = kinds.get(name)
    if kind is None:
        raise SchemaError(f"{where}: {ctx}: input '{name}' is not a declared column, usage feature or "
                          "engineered feature")
    if kind == "pii":
        raise SchemaError(f"{where}: {ctx}: input '{name}' is PII (pii: true) and never used as a feature")
    if kind not in ("categorical", *NUMERIC_KINDS):
        raise SchemaError(f"{where}: {ctx}: input '{name}' has role '{kind}'; inputs must be categorical, "
                          "numeric or boolean columns, usage features or engineered features")
    if kind == "categorical" and OPS[feat.op].numeric_inputs:
        raise SchemaError(f"{where}: {ctx}: op '{feat.op}' needs numeric or boolean inputs; "
                          f"'{name}' is categorical")


def _check_value(feat: EngineeredFeature, kinds: dict[str, str], specs: dict[str, ColumnSpec],
                 where: str, ctx: str) -> None:
    """`value` of count_equal/product must be something each input it is compared with can equal."""
    if feat.op not in ("count_equal", "product"):
        return
    categorical = [x for x in feat.inputs if kinds[x] == "categorical"]
    if feat.op == "product" and not categorical:
        if feat.value is not None:
            raise SchemaError(f"{where}: {ctx}: op 'product' takes a 'value' only with a categorical input")
        return
    if feat.op == "product" and feat.value is None:
        raise SchemaError(f"{where}: {ctx}: op 'product' with a categorical input needs a 'value' "
                          "(the category whose indicator enters the product)")
    compared = categorical if feat.op == "product" else list(feat.inputs)
    for name in compared:
        problem = _value_problem(feat.value, kinds[name], specs.get(name))
        if problem:
            raise SchemaError(f"{where}: {ctx}: value {feat.value!r} can never equal input '{name}' ({problem})")


def _value_problem(value: Any, kind: str, spec: ColumnSpec | None) -> str | None:
    if kind == "categorical":
        assert spec is not None
        if spec.allowed is not None and str(value) not in spec.allowed:
            return f"categories {list(spec.allowed)}"
        return None
    if kind == "boolean":
        assert spec is not None
        tokens = spec.true_values + spec.false_values
        if not isinstance(value, bool) and str(value).strip().lower() not in tokens:
            return f"true/false or a boolean token {list(tokens)}"
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"{kind} input: the value must be a number"
    return None


def _evaluation_order(features: list[EngineeredFeature], where: str) -> tuple[EngineeredFeature, ...]:
    """Declared order, except that a feature moves after the engineered features it uses."""
    names = {f.name for f in features}
    placed: list[EngineeredFeature] = []
    done: set[str] = set()
    pending = list(features)
    while pending:
        ready = next((f for f in pending if all(x in done or x not in names for x in f.inputs)), None)
        if ready is None:
            raise _cycle_error(pending, features, where)
        placed.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return tuple(placed)


def _cycle_error(pending: list[EngineeredFeature], features: list[EngineeredFeature], where: str) -> SchemaError:
    """Follow engineered inputs from the first blocked feature until a name repeats."""
    by_name = {f.name: f for f in pending}
    path = [pending[0].name]
    while True:
        nxt = next(x for x in by_name[path[-1]].inputs if x in by_name)
        if nxt in path:
            cycle = [*path[path.index(nxt):], nxt]
            break
        path.append(nxt)
    index = next(i for i, f in enumerate(features) if f.name == cycle[0])
    return SchemaError(f"{where}: engineered_features[{index}] ({cycle[0]}): inputs form a cycle "
                       f"{' -> '.join(cycle)}")
