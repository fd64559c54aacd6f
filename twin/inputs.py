"""Every argument of `twin run`, checked before anything is written.

A mistyped path or value is a one-line error (exit 2) while the previous results, and --out,
are exactly as they were: nothing is created, moved or removed until all of these hold.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date
from typing import Any

from dataset.schema import DatasetSchema, SchemaError, load_schema
from infra.config import EnvironmentConfig, load_environment
from training_jobs.errors import JobError
from twin.run_dir import check_out

BATCH_SIZES = (1, 4096)  # what training_jobs.compile_model accepts


@dataclass(frozen=True)
class RunInputs:
    schema: DatasetSchema
    environment: EnvironmentConfig
    source: Any | None  # the schema's source as a DataFrame when no --data is given


def check_inputs(args: argparse.Namespace) -> RunInputs:
    """Schema, environment config, data, numbers and --out; raises JobError/SchemaError/ConfigError."""
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    environment = load_environment(args.config)
    _check_paths(args)
    _check_values(args)
    check_out(args.out)
    source = None
    if args.data is None:
        from dataset.sources import load_source

        source = load_source(schema)  # SchemaError when the schema names no usable source
    return RunInputs(schema, environment, source)


def _check_paths(args: argparse.Namespace) -> None:
    if args.data is not None and not args.data.is_file():
        what = "is a directory, not a CSV file" if args.data.is_dir() else "file not found"
        raise JobError(f"--data {args.data}: {what}")
    if args.cdr is not None and not args.cdr.exists():
        raise JobError(f"--cdr {args.cdr}: not found (a directory of CDR JSON files)")


def _check_values(args: argparse.Namespace) -> None:
    try:
        date.fromisoformat(args.snapshot_date)
    except ValueError:
        raise JobError(f"--snapshot-date {args.snapshot_date!r}: not a date in YYYY-MM-DD form") from None
    lo, hi = BATCH_SIZES
    if not lo <= args.batch_size <= hi:
        raise JobError(f"--batch-size {args.batch_size}: must be {lo}..{hi}")
    if args.seed < 0:
        raise JobError(f"--seed {args.seed}: must be 0 or more")
    if args.keep < 1:
        raise JobError(f"--keep {args.keep}: must be 1 or more (the run just made is always kept)")
