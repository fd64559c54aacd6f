"""Train/validation/test split files: how preprocess writes them and every later job reads them.

Split files are CSV with a header: the id column, the schema's raw feature columns and the
target as 0/1. A split is one `data.csv`, or with `shards > 1` that many `part-NNNNN-of-MMMMM.csv` files
(S3-shardable: a training channel with ShardedByS3Key hands each instance its share of the files). Rows go
to shards class by class in turn, so shard sizes and positive counts differ by at most one. Readers take a
split directory whatever its file count. Booleans are written as the schema's first true/false token so that any schema
round-trips through CSV unchanged. Input tables may also be Parquet (the lake's feature table).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dataset.schema import DatasetSchema
from serving.feature_values import TransformError, bool_values
from training_jobs.errors import JobError

SPLIT_FILE = "data.csv"
MAX_SHARDS = 1000


def shard_file(index: int, shards: int) -> str:
    return f"part-{index:05d}-of-{shards:05d}.csv"


def shard_of_rows(y: np.ndarray, shards: int) -> np.ndarray:
    """Shard index of each row: negatives then positives dealt round-robin, in row order."""
    order = np.concatenate([np.nonzero(y == 0)[0], np.nonzero(y != 0)[0]])
    assignment = np.empty(len(y), dtype=np.int64)
    assignment[order] = np.arange(len(y)) % shards
    return assignment


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet dir/file or a CSV dir/file (all text columns kept as written)."""
    path = Path(path)
    if not path.exists():
        raise JobError(f"{path}: input data not found")
    if path.is_dir():
        parquet = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        csvs = sorted(p for p in path.rglob("*.csv") if p.is_file())
        if parquet:
            return pd.read_parquet(path if any(path.iterdir()) else parquet[0])
        if csvs:
            return pd.concat([_read_csv(p) for p in csvs], ignore_index=True)
        raise JobError(f"{path}: directory holds no .parquet or .csv files")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return _read_csv(path)
    raise JobError(f"{path}: unsupported input format '{path.suffix}' (expected .parquet or .csv)")


def iter_table(path: str | Path, chunk_rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The table `read_table` reads, as chunks of at most `chunk_rows` rows (only `columns` when given),
    indexed by row number across the whole table, so that messages can name the row."""
    path = Path(path)
    if not path.exists():
        raise JobError(f"{path}: input data not found")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    parquet = [p for p in files if p.suffix == ".parquet"]
    csvs = [p for p in files if p.suffix == ".csv"]
    if path.is_dir() and not parquet and not csvs:
        raise JobError(f"{path}: directory holds no .parquet or .csv files")
    if not path.is_dir() and path.suffix not in (".parquet", ".csv"):
        raise JobError(f"{path}: unsupported input format '{path.suffix}' (expected .parquet or .csv)")
    first = 0
    for chunk in _parquet_chunks(path, chunk_rows, columns) if parquet else _csv_chunks(csvs, chunk_rows, columns):
        chunk.index = pd.RangeIndex(first, first + len(chunk))
        first += len(chunk)
        yield chunk


def _parquet_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    missing = [c for c in columns or () if c not in dataset.schema.names]
    if missing:
        raise JobError(f"{path}: missing columns {missing}")
    for batch in dataset.to_batches(columns=columns, batch_size=chunk_rows):
        if batch.num_rows:
            yield batch.to_pandas()


def _csv_chunks(files: list[Path], chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    for path in files:
        try:
            header = pd.read_csv(path, dtype=str, nrows=0).columns
            missing = [c for c in columns or () if c not in header]
            if missing:
                raise JobError(f"{path}: missing columns {missing}")
            yield from pd.read_csv(path, dtype=str, keep_default_na=False, usecols=columns, chunksize=chunk_rows)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise JobError(f"{path}: cannot parse CSV ({exc})") from None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise JobError(f"{path}: cannot parse CSV ({exc})") from None


def target_vector(frame: pd.DataFrame, schema: DatasetSchema, where: str) -> np.ndarray:
    """Target as int 0/1: accepts 0/1 (feature table) or the schema's label text (raw snapshot)."""
    col = schema.target_column
    if col not in frame:
        raise JobError(f"{where}: target column '{col}' missing")
    values = frame[col]
    as_text = values.astype(str).str.strip()
    if as_text.isin(["0", "1", "0.0", "1.0", "True", "False"]).all():
        return as_text.isin(["1", "1.0", "True"]).to_numpy(dtype=np.int64)
    spec = schema.column(col)
    allowed = set(spec.allowed) if spec.allowed else None
    bad = as_text[~as_text.isin(allowed)] if allowed else as_text[as_text.isin(["", "nan", "None"])]
    if len(bad):
        i = int(bad.index[0])
        raise JobError(
            f"{where}: row {i}: target '{col}' value {bad.iloc[0]!r} is not one of "
            f"{sorted(allowed) if allowed else 'a non-empty label'}"
        )
    return (as_text == schema.positive_label).to_numpy(dtype=np.int64)


def normalise_features(frame: pd.DataFrame, schema: DatasetSchema, where: str, first_row: int = 0) -> pd.DataFrame:
    """Typed copy of the id + feature columns: categorical str/None, numeric float, bool tokens.
    `first_row`: the row number of the frame's first row in the table (for messages)."""
    missing = [c for c in [schema.id_column, *schema.raw_feature_columns] if c not in frame]
    if missing:
        raise JobError(f"{where}: missing columns {missing} required by schema '{schema.name}' ({schema.path})")
    out = pd.DataFrame(index=frame.index)
    out[schema.id_column] = frame[schema.id_column].astype(str)
    for c in schema.categorical_columns:
        col = frame[c].astype(object)
        out[c] = col.where(~col.isna() & (col.astype(str) != ""), None).astype(object)
    for c in schema.numeric_columns:
        raw = frame[c]
        if not pd.api.types.is_numeric_dtype(raw):
            raw = raw.astype(object).where(raw.astype(str).str.strip() != "", None)
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise JobError(f"{where}: row {first_row + i}: column '{c}' value {raw.iloc[i]!r} is not a number")
        out[c] = num.astype(np.float64)
    for c in schema.boolean_columns:
        spec = schema.column(c)
        try:
            col = frame[c].astype(object)
            col = col.where(col.astype(str) != "", None)
            vals = _bool_column(col, c, spec.true_values, spec.false_values)
        except TransformError as exc:
            counted = f" (rows counted from row {first_row} of the table)" if first_row else ""
            raise JobError(f"{where}: {exc}{counted}") from None
        tokens = np.where(vals == 1.0, spec.true_values[0], spec.false_values[0]).astype(object)
        tokens[np.isnan(vals)] = None
        out[c] = tokens
    return out


def _bool_column(col: pd.Series, name: str, true_values: Sequence[str], false_values: Sequence[str]) -> np.ndarray:
    """serving's bool_values, evaluated once per distinct value (it loops in Python: millions of rows)."""
    codes, distinct = pd.factorize(col, use_na_sentinel=True)
    try:
        per_value = bool_values(np.asarray(distinct, dtype=object), name, true_values, false_values)
    except TransformError:
        bool_values(np.asarray(col, dtype=object), name, true_values, false_values)  # raises, naming the row
        raise
    return np.where(codes < 0, np.nan, per_value[np.maximum(codes, 0)]) if len(per_value) else np.full(len(col), np.nan)


def write_split(frame: pd.DataFrame, out_dir: Path, y: np.ndarray | None = None, shards: int = 1) -> list[Path]:
    """Write one split as `shards` files (see the module docstring); `y` (0/1 per row) balances the shards."""
    if not 1 <= shards <= MAX_SHARDS:
        raise JobError(f"shards must be in 1..{MAX_SHARDS}, got {shards}")
    if shards > len(frame):
        raise JobError(f"{out_dir.name}: {len(frame)} rows cannot fill {shards} shards (lower --shards)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob(SPLIT_FILE), *out_dir.glob("part-*-of-*.csv")]:
        stale.unlink()  # an earlier run's layout must not be read together with this one
    if shards == 1:
        frame.to_csv(out_dir / SPLIT_FILE, index=False)
        return [out_dir / SPLIT_FILE]
    assignment = shard_of_rows(np.zeros(len(frame)) if y is None else np.asarray(y), shards)
    paths = []
    for index in range(shards):
        path = out_dir / shard_file(index, shards)
        frame[assignment == index].to_csv(path, index=False)
        paths.append(path)
    return paths


def read_split(path: str | Path, schema: DatasetSchema) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a split written by preprocess (dir or file) -> (features frame, target 0/1)."""
    path = Path(path)
    frame = read_table(path)
    where = str(path)
    y = target_vector(frame, schema, where)
    return normalise_features(frame, schema, where), y
