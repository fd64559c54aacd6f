"""Run the data lake on a laptop: the same Glue job code, local paths, the dev key.

    python -m etl.local_run --schema dataset/schemas/ibm_telco_churn.yaml \\
        [--data raw.csv] --out build/lake [--cdr DIR] [--snapshot-date 2026-01-01]

Without --data the schema's `source` is exported first (dataset.sources). A --data file may
carry the source's own column names: `source.rename` applies to it as well. The file's header
is checked against the schema (etl/preflight.py) before the Spark session is created.

Layout under OUT:
  raw/subscribers/ingest_date=D/<file>.csv   the snapshot, as it lands in the raw zone
  curated/snapshot_date=D/                   curated Parquet   (+ _runs/.../conform_summary.json)
  quarantine/snapshot_date=D/                quarantined rows with dq_reason
  features/snapshot_date=D/                  training table     (+ _runs/.../features_summary.json)
  cdr_quarantine/snapshot_date=D/            bad CDR records (only with CDRs)

The public development pseudonymisation key is used (never for real subscriber data).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset.schema import SchemaError, load_schema
from etl import EtlError, glue_conform, glue_features
from etl.lake_io import parse_date
from etl.preflight import preflight_snapshot
from etl.spark_session import local_spark


@dataclass
class LakeRunResult:
    curated_path: Path
    quarantine_path: Path
    features_path: Path
    rows_in: int
    rows_curated: int
    rows_quarantined: int
    usage_subscribers: int
    snapshot_date: str = ""
    cdr_quarantine_path: Path | None = None
    cdr_records_quarantined: int = 0
    conform_summary: dict[str, Any] = field(default_factory=dict)
    features_summary: dict[str, Any] = field(default_factory=dict)


def run_lake_locally(raw_csv: Path, schema_path: Path, out_dir: Path, cdr_path: Path | None = None,
                     snapshot_date: str = "2026-01-01") -> LakeRunResult:
    """Land `raw_csv` in a local raw zone and run the conform and features jobs on it.

    Returned paths are Parquet dataset directories (partitioned by snapshot_date) readable
    with pandas.read_parquet. Raises EtlError/SchemaError on bad input or broken invariants.
    """
    snapshot_date = parse_date(snapshot_date, "snapshot_date").isoformat()
    raw_csv, schema_path, out_dir = Path(raw_csv), Path(schema_path), Path(out_dir)
    if not raw_csv.is_file():
        raise EtlError(f"raw snapshot {raw_csv} not found")
    if cdr_path is not None and not Path(cdr_path).exists():
        raise EtlError(f"CDR input {cdr_path} not found")
    landing = out_dir / "raw" / "subscribers" / f"ingest_date={snapshot_date}"
    landing.mkdir(parents=True, exist_ok=True)
    landed = landing / raw_csv.name
    if raw_csv.resolve() != landed.resolve():
        shutil.copyfile(raw_csv, landed)
    preflight_snapshot(load_schema(schema_path), str(landed))  # bad files fail before Spark starts

    curated, quarantine, features = out_dir / "curated", out_dir / "quarantine", out_dir / "features"
    cdr_quarantine = out_dir / "cdr_quarantine"
    spark = local_spark("telecom-ml-local-lake")
    conform = glue_conform.run([
        "--schema_uri", str(schema_path), "--input_uri", str(landed),
        "--curated_uri", str(curated), "--quarantine_uri", str(quarantine), "--allow_dev_key", "true",
    ], spark)
    feature_args = [
        "--schema_uri", str(schema_path), "--curated_uri", str(curated), "--features_uri", str(features),
        "--snapshot_date", snapshot_date, "--allow_dev_key", "true",
    ]
    if cdr_path is not None:
        feature_args += ["--cdr_uri", str(cdr_path), "--cdr_quarantine_uri", str(cdr_quarantine)]
    feats = glue_features.run(feature_args, spark)
    cdr = feats.get("cdr") or {}
    return LakeRunResult(
        curated_path=curated, quarantine_path=quarantine, features_path=features,
        rows_in=int(conform["rows_in"]), rows_curated=int(conform["rows_curated"]),
        rows_quarantined=int(conform["rows_quarantined"]),
        usage_subscribers=int(feats["usage_subscribers"]), snapshot_date=snapshot_date,
        cdr_quarantine_path=cdr_quarantine if cdr_path is not None else None,
        cdr_records_quarantined=int(cdr.get("records_quarantined", 0)),
        conform_summary=conform, features_summary=feats,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m etl.local_run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schema", required=True, type=Path)
    p.add_argument("--data", type=Path, help="raw snapshot CSV (default: export the schema's source)")
    p.add_argument("--out", type=Path, default=Path("build/lake"))
    p.add_argument("--cdr", type=Path, help="raw CDR directory (e.g. from cdr_generator)")
    p.add_argument("--snapshot-date", default="2026-01-01")
    args = p.parse_args(argv)
    try:
        data = args.data
        if data is None:
            from dataset.sources import export_snapshot

            data = export_snapshot(load_schema(args.schema), args.out / "source" / "snapshot.csv")
        res = run_lake_locally(data, args.schema, args.out, args.cdr, args.snapshot_date)
    except (EtlError, SchemaError) as exc:
        print(f"local_run: ERROR: {exc}", file=sys.stderr)
        return 2
    print(f"snapshot {res.snapshot_date}: {res.rows_in} rows in = {res.rows_curated} curated + "
          f"{res.rows_quarantined} quarantined; usage for {res.usage_subscribers} subscribers")
    print(f"curated:    {res.curated_path}\nquarantine: {res.quarantine_path}")
    print(f"features:   {res.features_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
