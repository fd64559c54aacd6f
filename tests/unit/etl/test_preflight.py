"""The header check that runs before Spark: file-level rejections, rename, repeated/missing columns."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataset.schema import DatasetSchema
from etl import EtlError, glue_conform, local_run
from etl.preflight import HEAD_BYTES, main, preflight_snapshot, read_header
from tests.unit.etl.conftest import IBM_SCHEMA_PATH, PREPAID_HEADER, PREPAID_SCHEMA_PATH, REPO, prepaid_rows, write_csv


def _file(tmp_path: Path, data: bytes, name: str = "snap.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


HEADER = ",".join(PREPAID_HEADER).encode()


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file (no header row)"),
    (gzip.compress(HEADER + b"\n", mtime=0), "the file is gzip-compressed data, not UTF-8 CSV text"),
    (b"PK\x03\x04rest-of-an-xlsx", "the file is a zip archive (or an .xlsx workbook), not UTF-8 CSV text"),
    (b"PAR1\x00\x00", "the file is a Parquet file, not UTF-8 CSV text"),
    ("\ufeff".encode("utf-16-le") + (",".join(PREPAID_HEADER) + "\n").encode("utf-16-le"),
     "the file is UTF-16 text (little-endian byte-order mark), not UTF-8 CSV text"),
    ((",".join(PREPAID_HEADER) + "\n").encode("utf-16-be"),
     "NUL byte at offset 0: binary data or UTF-16/32 text, not UTF-8 CSV"),
    (HEADER.replace(b"plan", b"pl\xe9n") + b"\n",
     f"header row is not valid UTF-8 (byte 0xE9 at offset {HEADER.index(b'plan') + 2})"),
    (b"\n" + HEADER + b"\n", "the first line is blank; the header row must be the file's first line"),
    (HEADER + b',"notes\n', "header row is not a valid CSV record"),
    (b"x" * (HEAD_BYTES + 10), f"no line break in the first {HEAD_BYTES} bytes"),
], ids=["empty", "gzip", "xlsx", "parquet", "utf16-bom", "utf16-no-bom", "latin1-header", "blank-first-line",
        "open-quote-header", "no-line-break"])
def test_files_that_are_not_utf8_csv_are_rejected_saying_what_they_are(tmp_path, prepaid_schema, data, message):
    uri = _file(tmp_path, data)
    with pytest.raises(EtlError) as exc:
        preflight_snapshot(prepaid_schema, uri)
    assert message in str(exc.value) and str(exc.value).startswith(f"{uri}: ")
    assert "\n" not in str(exc.value)


def test_duplicate_header_column_is_named(tmp_path, prepaid_schema) -> None:
    uri = _file(tmp_path, HEADER + b",plan\n")
    with pytest.raises(EtlError, match=r"header repeats column\(s\) \['plan'\] \(names compare case-insensitively"):
        preflight_snapshot(prepaid_schema, uri)
    uri = _file(tmp_path, HEADER + b", AGE \n")  # Spark resolves names case-insensitively
    with pytest.raises(EtlError, match=r"header repeats column\(s\) \['AGE', 'age'\]"):
        preflight_snapshot(prepaid_schema, uri)


def test_missing_and_undeclared_columns(tmp_path, prepaid_schema, caplog) -> None:
    uri = _file(tmp_path, HEADER.replace(b",plan", b"") + b"\n")
    with pytest.raises(EtlError, match=r"missing declared column\(s\) \['plan'\] \(schema .*prepaid_churn.yaml\)"):
        preflight_snapshot(prepaid_schema, uri)
    uri = _file(tmp_path, b'\xef\xbb\xbf' + HEADER + b',"crm ""notes""",\r\n1,2\r\n')
    header = preflight_snapshot(prepaid_schema, uri)
    assert header.columns == (*PREPAID_HEADER, 'crm "notes"', "_c11")
    assert header.dropped == ('crm "notes"', "_c11") and header.renamed == {}
    assert "will be dropped" in caplog.text and "crm" in caplog.text


def test_source_rename_applies_to_data_files(tmp_path, ibm_schema: DatasetSchema) -> None:
    names = ["rownames", *[c for c in ibm_schema.source_columns if c != "subscriber_id"]]
    uri = _file(tmp_path, (",".join(names) + "\n").encode())
    header = preflight_snapshot(ibm_schema, uri)
    assert header.renamed == {"rownames": "subscriber_id"}
    assert header.columns[0] == "subscriber_id" and read_header(uri)[0] == "rownames"
    both = _file(tmp_path, (",".join(["subscriber_id", *names]) + "\n").encode(), "both.csv")
    with pytest.raises(EtlError, match=r"repeats column\(s\) \['subscriber_id'\] after source.rename "
                                       r"\{'rownames': 'subscriber_id'\}"):
        preflight_snapshot(ibm_schema, both)


def test_header_check_reads_only_the_head_and_takes_under_a_second(tmp_path, ibm_schema, ibm_csv) -> None:
    big = tmp_path / "big.csv"
    body = ibm_csv.read_bytes()
    with open(big, "wb") as fh:
        fh.write(body)
        rows = body.split(b"\n", 1)[1]
        for _ in range(40):  # ~40 MB: the check must not depend on the file's size
            fh.write(rows)
    for path in (ibm_csv, big):
        started = time.perf_counter()
        header = preflight_snapshot(ibm_schema, str(path))
        assert time.perf_counter() - started < 1.0
        assert list(header.columns) == ibm_schema.source_columns


def test_cli_one_line_each_way(tmp_path, capsys) -> None:
    good = write_csv(tmp_path / "good.csv", PREPAID_HEADER, prepaid_rows(2))
    assert main(["--schema", str(PREPAID_SCHEMA_PATH), "--data", str(good)]) == 0
    assert "10 columns match schema" in capsys.readouterr().out
    bad = _file(tmp_path, HEADER + b",plan\n", "bad.csv")
    assert main(["--schema", str(PREPAID_SCHEMA_PATH), "--data", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "repeats column(s) ['plan']" in err


def test_importable_without_pyspark() -> None:
    code = "import sys, etl.preflight; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _no_spark(*_args, **_kwargs):
    raise AssertionError("Spark was started before the header check")


def test_local_run_checks_the_header_before_spark_starts(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(local_run, "local_spark", _no_spark)
    bad = _file(tmp_path, HEADER + b",age\n" + b"x\n", "dupe.csv")
    started = time.perf_counter()
    with pytest.raises(EtlError, match=r"header repeats column\(s\) \['age'\]"):
        local_run.run_lake_locally(Path(bad), PREPAID_SCHEMA_PATH, tmp_path / "lake")
    assert time.perf_counter() - started < 1.0
    missing = write_csv(tmp_path / "m.csv", [c for c in PREPAID_HEADER if c != "age"], [])
    assert local_run.main(["--schema", str(PREPAID_SCHEMA_PATH), "--data", str(missing),
                           "--out", str(tmp_path / "o")]) == 2


def test_glue_conform_checks_the_header_before_reading(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(glue_conform, "apply_runtime_conf", _no_spark)
    monkeypatch.setattr(glue_conform, "read_raw_snapshot", _no_spark)
    landed = tmp_path / "raw" / "ingest_date=2026-01-01"
    landed.mkdir(parents=True)
    bad = _file(landed, HEADER + b",Plan\n1\n")
    rc = glue_conform.main(["--schema_uri", str(PREPAID_SCHEMA_PATH), "--input_uri", bad,
                            "--curated_uri", str(tmp_path / "c"), "--quarantine_uri", str(tmp_path / "q"),
                            "--allow_dev_key", "true"])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"conform: ERROR: {bad}: header repeats column(s) ['Plan', 'plan']" in err
    assert not (tmp_path / "c").exists()


def test_schema_shipped_as_json_works_too(tmp_path, ibm_schema) -> None:
    import yaml

    as_json = tmp_path / "schema.json"
    as_json.write_text(json.dumps(yaml.safe_load(IBM_SCHEMA_PATH.read_text())))
    uri = _file(tmp_path, (",".join(["rownames", *ibm_schema.source_columns[1:]]) + "\n").encode())
    assert main(["--schema", str(as_json), "--data", uri]) == 0
