"""The churn labels feed (ground truth) as a declared dataset: the labels contract checked on its schema.

The feed is declared like any dataset, with a schema file (dataset/schemas/churn_labels.yaml)
parsed by dataset/schema.py, so the labels job runs it through the same data-quality gate as
subscriber snapshots. Unlike a churn dataset, its columns are a contract with other jobs (the drift
job joins labels to captured predictions; Athena users query the table), so a labels schema must
declare exactly the labels contract's columns with these types and roles. `labels_contract` refuses anything else
with a one-line SchemaError naming the file and the column.

Standard library only: ships to AWS Glue with dataset/schema.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataset.schema_model import DatasetSchema, SchemaError

LABELS_TABLE = "churn_labels"
LABEL_PARTITION = "label_date"
SUBSCRIBER_ID = "subscriber_id"
CHURNED = "churned"
OBSERVED_AT = "observed_at"
INFERENCE_ID = "inference_id"

# (name, type, role, required): the labels contract's columns in table order.
CONTRACT_COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    (SUBSCRIBER_ID, "string", "id", True),
    (CHURNED, "boolean", "target", True),
    (OBSERVED_AT, "date", "event_time", True),
    (INFERENCE_ID, "string", "passthrough", False),
)


@dataclass(frozen=True)
class LabelsContract:
    """A labels schema known to match the labels contract."""

    schema: DatasetSchema

    @property
    def pseudonymised_in_raw(self) -> bool:
        """False (the default schema): raw batches carry the clear id and the job hashes it."""
        return not self.schema.column(SUBSCRIBER_ID).pii


def labels_contract(schema: DatasetSchema) -> LabelsContract:
    """`schema` if it declares exactly the labels contract's columns (name, type, role; optional inference_id)."""
    where = schema.path or schema.name
    declared = {c.name: c for c in schema.columns}
    expected = [name for name, *_ in CONTRACT_COLUMNS]
    extra = sorted(set(declared) - set(expected))
    missing = [name for name in expected if name not in declared]
    if extra or missing:
        raise SchemaError(
            f"{where}: a labels schema declares exactly {expected} (the labels contract); "
            f"missing {missing}, not allowed {extra}"
        )
    for name, ctype, role, required in CONTRACT_COLUMNS:
        spec = declared[name]
        if (spec.type, spec.role) != (ctype, role):
            raise SchemaError(
                f"{where}: labels column '{name}' must be type {ctype} with role {role} "
                f"(the labels contract), got type {spec.type} with role {spec.role}"
            )
        if spec.not_null != required:
            what = "must be checked not_null" if required else "is optional in the labels contract (no not_null)"
            raise SchemaError(f"{where}: labels column '{name}' {what}")
    if schema.column(CHURNED).pii or schema.column(OBSERVED_AT).pii:
        raise SchemaError(f"{where}: only '{SUBSCRIBER_ID}' may be pii in a labels schema")
    if schema.positive_label.strip().lower() not in schema.column(CHURNED).true_values:
        raise SchemaError(
            f"{where}: target.positive '{schema.positive_label}' must be a true token of "
            f"'{CHURNED}' ({'/'.join(schema.column(CHURNED).true_values)})"
        )
    return LabelsContract(schema)
