"""Data-lake runtime code: PySpark ETL that runs unchanged on AWS Glue 5.1 and locally.

Modules:
  spark_session  local SparkSession for tests, local runs and benchmarks
  pseudonymise   keyed hash (HMAC-SHA256) of PII columns, key loading
  preflight      header/encoding checks of a raw snapshot before Spark starts (no pyspark)
  conform        raw subscriber snapshot -> typed, pseudonymised curated rows
  quality        data-quality gate (schema rules, quarantine, rows-in invariant)
  cdr_generator  seeded synthetic CDR events (newline-delimited JSON, as Firehose delivers)
  cdr_usage      CDR validation + per-subscriber usage aggregates
  features       training table (curated subscribers + usage)
  glue_conform   Glue entry point: conform + quality gate
  glue_features  Glue entry point: usage aggregation + feature table
  local_run      the same jobs on a laptop (used by the local twin)
  lake_io        s3:// or local URIs: schema loading, file heads, run summaries, partitions

Column names always come from the dataset schema (dataset/schema.py); none is
hard-coded here.
"""


class EtlError(RuntimeError):
    """A job cannot continue: bad input, bad arguments or a broken invariant.

    The message names what is wrong and where; entry points turn it into a non-zero exit.
    """


class InvariantError(EtlError):
    """A row-accounting invariant failed (e.g. rows in != curated + quarantined)."""
