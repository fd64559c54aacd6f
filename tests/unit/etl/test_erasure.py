"""Erasure of one pseudonymised subscriber from a local lake tree and from versioned S3 (moto)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from etl import EtlError, erasure
from etl.pseudonymise import DEV_PSEUDONYMISATION_KEY, hmac_hex


def pseudonym(clear: str) -> str:
    value = hmac_hex(clear, DEV_PSEUDONYMISATION_KEY)
    assert value is not None
    return value


GONE, ALICE, BOB = pseudonym("1001"), pseudonym("1002"), pseudonym("1003")


def parquet_bytes(ids: list[str | None], extra: list[float]) -> bytes:
    table = pa.table(
        {"subscriber_id": pa.array(ids, pa.string()), "score": pa.array(extra, pa.float64())},
        metadata={b"org.apache.spark.version": b"3.5.6"},
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def capture_line(
    inference_id: str | None,
    body: str,
    encoding: str = "JSON",
    content_type: str = "application/json",
    event: str = "e",
) -> bytes:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    meta = {"eventId": event, "inferenceTime": "2026-11-27T10:00:00Z"}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    record = {
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding},
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": '{"predictions": [{"probability": 0.7, "label": "Yes"}]}',
                "encoding": "JSON",
            },
        },
        "eventMetadata": meta,
        "eventVersion": "0",
    }
    return (json.dumps(record) + "\n").encode()


def build_lake(root: Path) -> dict[str, Path]:
    """curated (2 partitions), features, scores, labels and captures; GONE appears in some files of each."""
    files = {
        "curated_hit": root / "curated/ibm_telco_churn/snapshot_date=2026-01-01/part-00000.snappy.parquet",
        "curated_clean": root / "curated/ibm_telco_churn/snapshot_date=2026-02-01/part-00000.snappy.parquet",
        "features_hit": root / "features/ibm_telco_churn/snapshot_date=2026-02-01/part-00000.snappy.parquet",
        "scores_only": root / "features/scores/scoring_date=2026-11-01/part-00000.snappy.parquet",
        "labels_hit": root / "curated/churn_labels/label_date=2026-11-20/part-00000.snappy.parquet",
        "runs": root / "curated/ibm_telco_churn/_runs/snapshot_date=2026-01-01/conform_summary.json",
        "temporary": root / "curated/ibm_telco_churn/_temporary/0/part-00000.snappy.parquet",
        "capture_hit": root / "data-capture/churn/primary/2026/11/27/10/a.jsonl",
        "capture_all": root / "data-capture/churn/primary/2026/11/27/11/b.jsonl",
        "capture_clean": root / "data-capture/churn/primary/2026/11/27/12/c.jsonl",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    files["curated_hit"].write_bytes(parquet_bytes([ALICE, GONE, None, BOB], [0.1, 0.2, 0.3, 0.4]))
    files["curated_clean"].write_bytes(parquet_bytes([ALICE, BOB], [0.5, 0.6]))
    files["features_hit"].write_bytes(parquet_bytes([GONE, BOB], [0.7, 0.8]))
    files["scores_only"].write_bytes(parquet_bytes([GONE], [0.9]))
    files["labels_hit"].write_bytes(parquet_bytes([BOB, GONE, ALICE], [1.0, 0.0, 1.0]))
    files["runs"].write_text(json.dumps({"note": f"mentions {GONE} but is not data"}))
    files["temporary"].write_bytes(parquet_bytes([GONE], [0.0]))
    csv_body = f"subscriber_id,tenure\n{GONE},12\n"
    files["capture_hit"].write_bytes(
        capture_line(f"{GONE}:2026-11-27", '{"instances": [{"tenure": 3}]}', event="gone-by-id")
        + capture_line(f"{ALICE}:2026-11-27", '{"instances": [{"tenure": 5}]}', event="alice")
        + b"\n"
        + capture_line(None, json.dumps({"instances": [{"subscriber_id": GONE}]}), "BASE64", event="gone-b64")
        + b"{not json\n"
        + capture_line(None, csv_body, "CSV", "text/csv", event="gone-csv")
        + capture_line(None, '{"instances": [{"tenure": 9}]}', event="anonymous")
    )
    files["capture_all"].write_bytes(capture_line(f"{GONE}:2026-11-26", "{}", event="only-gone"))
    files["capture_clean"].write_bytes(capture_line(f"{BOB}:2026-11-27", "{}", event="bob"))
    return files


def locations(root: Path) -> tuple[list[str], list[str]]:
    parquet = [
        str(root / "curated/ibm_telco_churn"),
        str(root / "features/ibm_telco_churn"),
        str(root / "features/scores"),
        str(root / "curated/churn_labels"),
    ]
    return parquet, [str(root / "data-capture")]


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def ids_in(path: Path) -> list[str | None]:
    return pq.read_table(path).column("subscriber_id").to_pylist()


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    return tmp_path, build_lake(tmp_path)


def test_the_subscriber_disappears_everywhere_and_nothing_else_changes(lake):
    root, files = lake
    before = digests(root)
    parquet, captures = locations(root)
    report = erasure.erase(GONE, parquet, captures, dry_run=False)

    assert ids_in(files["curated_hit"]) == [ALICE, None, BOB]
    assert pq.read_table(files["curated_hit"]).column("score").to_pylist() == [0.1, 0.3, 0.4]
    assert pq.read_table(files["curated_hit"]).schema.metadata[b"org.apache.spark.version"] == b"3.5.6"
    assert ids_in(files["features_hit"]) == [BOB]
    assert ids_in(files["scores_only"]) == []  # kept empty, with its schema
    assert pq.read_schema(files["scores_only"]).names == ["subscriber_id", "score"]
    assert ids_in(files["labels_hit"]) == [BOB, ALICE]
    events = [
        json.loads(line)["eventMetadata"]["eventId"]
        for line in files["capture_hit"].read_bytes().splitlines()
        if line.strip().startswith(b'{"')
    ]
    assert events == ["alice", "anonymous"]
    assert b"{not json\n" in files["capture_hit"].read_bytes()  # unparseable, not the subscriber's: kept
    assert not files["capture_all"].exists()  # every record was the subscriber's

    after = digests(root)
    data_files = [p for p in root.rglob("*") if p.is_file() and "_runs" not in p.parts and "_temporary" not in p.parts]
    assert not any(GONE.encode() in p.read_bytes() for p in data_files)
    untouched = ["curated_clean", "capture_clean", "runs", "temporary"]
    for name in untouched:
        key = str(files[name].relative_to(root))
        assert after[key] == before[key], name
    changed = {k for k in before if before[k] != after.get(k)}
    expected = {
        str(files[n].relative_to(root))
        for n in ("curated_hit", "features_hit", "scores_only", "labels_hit", "capture_hit", "capture_all")
    }
    assert changed == expected
    assert not list(root.rglob("*.erasure-tmp"))

    by_uri = {loc.uri: loc for loc in report.locations}
    assert (by_uri[parquet[0]].files_scanned, by_uri[parquet[0]].files_rewritten, by_uri[parquet[0]].rows_removed) == (
        2,
        1,
        1,
    )
    assert by_uri[captures[0]].rows_removed == 4 and by_uri[captures[0]].files_deleted == 1
    assert by_uri[captures[0]].unparseable_records_kept == 1
    assert report.rows_removed == 1 + 1 + 1 + 1 + 4
    assert GONE not in json.dumps(report.as_dict())


def test_second_run_changes_nothing(lake):
    root, _ = lake
    parquet, captures = locations(root)
    erasure.erase(GONE, parquet, captures, dry_run=False)
    once = digests(root)
    again = erasure.erase(GONE, parquet, captures, dry_run=False)
    assert again.rows_removed == 0 and again.files_changed == 0
    assert digests(root) == once


def test_dry_run_reports_the_same_and_changes_nothing(lake):
    root, _ = lake
    before = digests(root)
    parquet, captures = locations(root)
    dry = erasure.erase(GONE, parquet, captures, dry_run=True)
    assert digests(root) == before
    real = erasure.erase(GONE, parquet, captures, dry_run=False)
    assert [(d.rows_removed, d.changed) for d in dry.locations] == [(r.rows_removed, r.changed) for r in real.locations]


@pytest.mark.parametrize("bad", ["", "1001", GONE.upper(), GONE[:-1], f"{GONE}:2026-11-27", "x" * 64])
def test_a_bad_subscriber_id_is_refused_before_anything_is_read(lake, bad, capsys):
    root, _ = lake
    before = digests(root)
    parquet, captures = locations(root)
    with pytest.raises(EtlError, match=r"--subscriber_id: .*expected the pseudonymised id"):
        erasure.erase(bad, parquet, captures, dry_run=False)
    args = ["--subscriber_id", bad, "--parquet_uris", ",".join(parquet), "--dry_run", "false"]
    assert erasure.main(args) == 2
    assert "erasure: ERROR: --subscriber_id" in capsys.readouterr().err
    assert digests(root) == before


def test_a_location_without_the_id_column_fails_naming_the_file(tmp_path):
    bad = tmp_path / "t" / "x.parquet"
    bad.parent.mkdir()
    pq.write_table(pa.table({"msisdn": ["1"]}), bad)
    with pytest.raises(EtlError, match=r"x\.parquet: cannot read column 'subscriber_id'"):
        erasure.erase(GONE, [str(tmp_path / "t")], [], dry_run=True)
    with pytest.raises(EtlError, match="no locations"):
        erasure.erase(GONE, [], [], dry_run=True)


def test_glue_entry_point_defaults_to_a_dry_run_and_writes_a_report(lake, capsys):
    root, _ = lake
    before = digests(root)
    parquet, captures = locations(root)
    report_path = root.parent / f"{root.name}-report.json"
    args = [
        "--JOB_NAME",
        "erasure",
        "--subscriber_id",
        GONE,
        "--parquet_uris",
        ",".join(parquet),
        "--capture_uris",
        ",".join(captures),
        "--report_uri",
        str(report_path),
    ]
    assert erasure.main(args) == 0
    assert digests(root) == before
    written = json.loads(report_path.read_text())
    assert written["dry_run"] is True and written["rows_removed"] == 8
    assert "would remove 8 rows in 6 files" in capsys.readouterr().out
    assert erasure.main([*args, "--dry_run", "false"]) == 0
    assert digests(root) != before


@mock_aws
def test_s3_rewrites_in_place_and_deletes_older_versions():
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket="lake", VersioningConfiguration={"Status": "Enabled"})
    hit, clean = "features/scores/d=1/part-0.parquet", "features/scores/d=2/part-0.parquet"
    s3.put_object(Bucket="lake", Key=hit, Body=parquet_bytes([GONE], [0.1]))  # an older version with the subscriber
    s3.put_object(Bucket="lake", Key=hit, Body=parquet_bytes([GONE, BOB], [0.1, 0.2]))
    s3.put_object(Bucket="lake", Key=clean, Body=parquet_bytes([ALICE], [0.3]))
    s3.put_object(Bucket="lake", Key=clean, Body=parquet_bytes([ALICE, BOB], [0.3, 0.4]))
    capture = "data-capture/churn/primary/2026/11/27/10/a.jsonl"
    s3.put_object(Bucket="lake", Key=capture, Body=capture_line(f"{GONE}:2026-11-27", "{}"))

    report = erasure.erase(
        GONE, ["s3://lake/features/scores"], ["s3://lake/data-capture/"], dry_run=False, store=erasure.S3Store(s3)
    )

    versions = s3.list_object_versions(Bucket="lake")
    hit_versions = [v for v in versions["Versions"] if v["Key"] == hit]
    assert len(hit_versions) == 1
    body = s3.get_object(Bucket="lake", Key=hit)["Body"].read()
    assert pq.read_table(pa.BufferReader(body)).column("subscriber_id").to_pylist() == [BOB]
    assert len([v for v in versions["Versions"] if v["Key"] == clean]) == 2  # untouched: history kept
    assert not [v for v in versions.get("Versions", []) if v["Key"] == capture]
    assert not [m for m in versions.get("DeleteMarkers", []) if m["Key"] == capture]
    assert report.rows_removed == 2
    assert [loc.old_versions_deleted for loc in report.locations] == [2, 2]


def test_a_location_may_name_its_own_id_column(tmp_path):
    table = tmp_path / "accounts" / "snapshot_date=2026-01-01" / "part-0.parquet"
    table.parent.mkdir(parents=True)
    pq.write_table(pa.table({"account_ref": [GONE, ALICE], "plan": ["a", "b"]}), table)
    report = erasure.erase(GONE, [f"{tmp_path / 'accounts'}#account_ref"], [], dry_run=False)
    assert report.rows_removed == 1
    assert pq.read_table(table).column("account_ref").to_pylist() == [ALICE]
    with pytest.raises(EtlError, match="is not a column name"):
        erasure.erase(GONE, [f"{tmp_path / 'accounts'}#bad column"], [], dry_run=True)


def test_model_monitor_ground_truth_lines_of_the_subscriber_are_erased(tmp_path):
    """Ground truth as the labels job writes it: the subscriber's InferenceIds sit in eventMetadata.eventId."""
    from dataset import inference_ids
    from etl.labels import ground_truth_line

    root = tmp_path / "monitoring/telecom-ml-dev-churn/ground-truth"
    mixed = root / "2026/11/20/00/churn-labels-2026-11-20.jsonl"
    only = root / "2026/11/21/00/churn-labels-2026-11-21.jsonl"
    clean = root / "2026/11/22/00/churn-labels-2026-11-22.jsonl"
    for path in (mixed, only, clean):
        path.parent.mkdir(parents=True, exist_ok=True)
    keep = ground_truth_line(inference_ids.make(ALICE, "2026-10-31"), True) + "\n"
    mixed.write_text(ground_truth_line(inference_ids.make(GONE, "2026-10-31"), True) + "\n" + keep)
    only.write_text(ground_truth_line(inference_ids.make(GONE, "2026-11-01"), False) + "\n")
    clean.write_text(ground_truth_line(inference_ids.make(BOB, "2026-11-01"), False) + "\n")
    before = hashlib.sha256(clean.read_bytes()).hexdigest()
    report = erasure.erase(GONE, parquet_uris=[], capture_uris=[str(root)], dry_run=False)
    assert report.rows_removed == 2
    assert mixed.read_text() == keep and not only.exists()
    assert hashlib.sha256(clean.read_bytes()).hexdigest() == before
