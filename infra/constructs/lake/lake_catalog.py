"""Glue Data Catalog database and explicit tables for the curated and feature zones, and batch scoring's
scores table (in the features bucket, partitions projected by Athena).

Columns come from the dataset schema (dataset/schemas/*.yaml), the same file the ETL,
training and inference read, so the catalog can never drift from what the jobs write.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from dataset.schema import DatasetSchema
from dataset.schema_labels import CONTRACT_COLUMNS, LABEL_PARTITION, LABELS_TABLE
from dataset.scores_table import SCORE_COLUMNS, SCORES_PARTITION

PARTITION_COLUMN = "snapshot_date"
_GLUE_TYPES = {
    "string": "string",
    "integer": "int",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
_PARQUET = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}


# Batch scoring's table: declared once for the catalog and the scoring job that writes it.
SCORES_PARTITION_COLUMN = SCORES_PARTITION
# Athena projects scoring_date partitions (no partition registration after each run); the first date it
# considers, and NOW as the last.
SCORES_PROJECTION_START = "2026-01-01"


def curated_columns(schema: DatasetSchema) -> list[tuple[str, str]]:
    """(name, Glue type) of the conformed subscriber table: every schema column, target as 0/1."""
    columns = []
    for col in schema.columns:
        glue_type = "string" if col.pii else _GLUE_TYPES[col.type]
        if col.role == "target":
            glue_type = "int"
        columns.append((col.name, glue_type))
    return columns


def feature_columns(schema: DatasetSchema) -> list[tuple[str, str]]:
    """(name, Glue type) of the training table: id, model inputs (with usage aggregates), target."""
    by_name = dict(curated_columns(schema))
    names = [
        schema.id_column,
        *schema.categorical_columns,
        *schema.numeric_columns,
        *schema.boolean_columns,
        schema.target_column,
    ]
    return [(name, by_name.get(name, "double")) for name in names]


class LakeCatalog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database_name: str,
        schema: DatasetSchema,
        curated_bucket: s3.IBucket,
        features_bucket: s3.IBucket,
        scores_prefix: str | None = None,
    ) -> None:
        """`scores_prefix` (e.g. "<dataset>_scores/") adds the batch-scoring table in the features bucket."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        account = stack.account
        self._arn_prefix = f"arn:{stack.partition}:glue:{stack.region}:{account}"
        self._table_names: dict[glue.CfnTable, str] = {}
        self.database_name = database_name
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name,
                description=f"Telecom ML data lake: curated and feature tables for {schema.name}",
            ),
        )
        self.curated_table_name = f"{schema.name}_curated"
        self.features_table_name = f"{schema.name}_features"
        self.curated_table = self._table(
            "CuratedTable",
            self.curated_table_name,
            curated_columns(schema),
            f"s3://{curated_bucket.bucket_name}/{schema.name}/",
            f"Conformed, quality-checked, pseudonymised subscribers (schema {schema.version})",
        )
        self.features_table = self._table(
            "FeaturesTable",
            self.features_table_name,
            feature_columns(schema),
            f"s3://{features_bucket.bucket_name}/{schema.name}/",
            f"Training table: subscriber features joined with CDR usage (schema {schema.version})",
        )
        self.scores_table_name = f"{schema.name}_scores"
        self.scores_table: glue.CfnTable | None = None
        if scores_prefix is not None:
            location = f"s3://{features_bucket.bucket_name}/{scores_prefix}"
            self.scores_table = self._table(
                "ScoresTable",
                self.scores_table_name,
                list(SCORE_COLUMNS),
                location,
                "Churn scores of the whole subscriber base per scoring date, with the model package that "
                "scored them (batch scoring pipeline)",
                partition=SCORES_PARTITION_COLUMN,
                projection={
                    "projection.enabled": "true",
                    f"projection.{SCORES_PARTITION_COLUMN}.type": "date",
                    f"projection.{SCORES_PARTITION_COLUMN}.format": "yyyy-MM-dd",
                    f"projection.{SCORES_PARTITION_COLUMN}.range": f"{SCORES_PROJECTION_START},NOW",
                    f"projection.{SCORES_PARTITION_COLUMN}.interval": "1",
                    f"projection.{SCORES_PARTITION_COLUMN}.interval.unit": "DAYS",
                    "storage.location.template": f"{location}{SCORES_PARTITION_COLUMN}=${{{SCORES_PARTITION_COLUMN}}}/",
                },
            )

    def add_labels_table(self, bucket: s3.IBucket, prefix: str) -> glue.CfnTable:
        """The ground-truth table churn_labels (the labels contract), partitioned by label_date."""
        self.labels_table_name = LABELS_TABLE
        self.labels_table = self._table(
            "LabelsTable",
            LABELS_TABLE,
            [(name, _GLUE_TYPES[ctype]) for name, ctype, _role, _required in CONTRACT_COLUMNS],
            f"s3://{bucket.bucket_name}/{prefix}",
            "Churn outcomes (ground truth) joined with captured predictions by InferenceId; pseudonymised",
            partition=LABEL_PARTITION,
        )
        return self.labels_table

    def _table(
        self,
        construct_id: str,
        name: str,
        columns: list[tuple[str, str]],
        location: str,
        description: str,
        partition: str = PARTITION_COLUMN,
        projection: dict[str, str] | None = None,
    ) -> glue.CfnTable:
        table = glue.CfnTable(
            self,
            construct_id,
            catalog_id=cdk.Stack.of(self).account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "parquet", "parquet.compression": "SNAPPY", **(projection or {})},
                partition_keys=[glue.CfnTable.ColumnProperty(name=partition, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format=_PARQUET["input_format"],
                    output_format=_PARQUET["output_format"],
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=_PARQUET["serde"]),
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in columns],
                ),
            ),
        )
        table.add_resource_dependency(self.database)
        self._table_names[table] = name
        return table

    def table_arn(self, table: glue.CfnTable) -> str:
        """ARN of a table of this catalog (names kept in Python: reading them back is a jsii call each)."""
        if table not in self._table_names:
            raise ValueError(f"{table.node.path}: not a table of the catalog {self.node.path}")
        return f"{self._arn_prefix}:table/{self.database_name}/{self._table_names[table]}"

    @property
    def database_arn(self) -> str:
        return f"{self._arn_prefix}:database/{self.database_name}"

    @property
    def catalog_arn(self) -> str:
        return f"{self._arn_prefix}:catalog"
