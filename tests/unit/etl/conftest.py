"""Shared fixtures for the ETL tests: ONE local SparkSession for the whole session."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from dataset.schema import DatasetSchema, load_schema
from dataset.sources import export_snapshot

REPO = Path(__file__).resolve().parents[3]
IBM_SCHEMA_PATH = REPO / "dataset" / "schemas" / "ibm_telco_churn.yaml"
PREPAID_SCHEMA_PATH = Path(__file__).parent / "data" / "prepaid_churn.yaml"
TEST_KEY = b"unit-test-key-0123456789abcdef"

PREPAID_HEADER = ["account_ref", "phone_number", "last_seen_at", "signup_date", "plan", "age",
                  "months_active", "arpu", "roaming", "left_operator"]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from etl.spark_session import local_spark

    session = local_spark("etl-unit-tests", cores=2, shuffle_partitions=2, driver_memory="2g")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def ibm_schema() -> DatasetSchema:
    return load_schema(IBM_SCHEMA_PATH)


@pytest.fixture(scope="session")
def prepaid_schema() -> DatasetSchema:
    return load_schema(PREPAID_SCHEMA_PATH)


@pytest.fixture(scope="session")
def ibm_csv(tmp_path_factory: pytest.TempPathFactory, ibm_schema: DatasetSchema) -> Path:
    """The real IBM Telco snapshot (7,043 rows) as the raw CSV it lands as."""
    return export_snapshot(ibm_schema, tmp_path_factory.mktemp("ibm") / "telco.csv")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def prepaid_rows(n: int) -> list[list[str]]:
    """n valid prepaid rows; account refs A0001.., every third account brand new (no arpu)."""
    rows = []
    plans = ["prepaid", "postpaid", "hybrid"]
    for i in range(1, n + 1):
        new = i % 3 == 0
        rows.append([
            f"A{i:04d}", f"+1555{i:07d}", f"2025-12-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
            f"2024-0{1 + i % 9}-15", plans[i % 3], str(18 + i % 60), "0" if new else str(i % 40 + 1),
            "" if new else f"{10 + i % 25}.5", "on" if i % 4 == 0 else "off",
            "true" if i % 5 == 0 else "false",
        ])
    return rows
