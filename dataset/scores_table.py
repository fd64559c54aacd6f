"""The batch-scoring table as the lake declares it and the scoring job writes it: one definition for both.

Glue types per column, in table order; `scoring_date` is the partition (a folder), not a column of the files.
"""

from __future__ import annotations

SCORES_PARTITION = "scoring_date"
SCORE_COLUMNS = (
    ("subscriber_id", "string"),
    ("probability", "double"),
    ("label", "string"),
    ("rank", "bigint"),
    ("decile", "bigint"),
    ("snapshot_date", "string"),
    ("model_package_arn", "string"),
    ("model_package_group", "string"),
    ("model_version", "bigint"),
    ("scored_at", "timestamp"),
)
