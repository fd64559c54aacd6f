"""Erase one pseudonymised subscriber from the lake's Parquet tables and the endpoint's data capture.

Arguments (Glue passes them as --name value; unknown ones such as --JOB_NAME are ignored):
  --subscriber_id  the PSEUDONYMISED id (64 lowercase hex characters, the keyed hash the lake stores);
                   a clear BSS id is refused, so it never reaches job arguments or logs
  --request_uri    instead of --subscriber_id: a JSON object {"subscriber_id": "<clear BSS id>"} (in the
                   raw zone's erasure-requests/, beside the other clear-id data); the job derives the
                   pseudonym under its own role (the HMAC key from --pseudonymisation_secret_id, the
                   conform job's function, trimmed as conform trims), so neither the clear id nor the key
                   passes through an operator, job arguments or logs; a run that is not a dry run deletes
                   the request object once the erasure is done
  --pseudonymisation_secret_id, --allow_dev_key   the key, as for the conform job (with --request_uri)
  --parquet_uris   comma-separated Parquet locations (s3:// prefixes or local folders), read
                   recursively: curated subscribers, features, scores, labels; `uri#column` names
                   a location's id column when it is not --id_column (a dataset whose id column
                   has another name)
  --capture_uris   comma-separated data-capture roots (JSON lines, the data capture layout), and
                   Model Monitor ground-truth roots (etl/labels.py --ground_truth_uri)
  --id_column      the id column of the Parquet tables (default subscriber_id)
  --dry_run        true (default): report what would change and change nothing; false: erase
  --report_uri     optional: also write the report there as JSON
  --suppression_uri optional: the erased-subscriber suppression list (etl/suppression.py); a run that is
                   not a dry run adds the pseudonym, so the conform and labels jobs keep the subscriber
                   out when an old raw snapshot or labels batch is conformed again

What is removed:
  * Parquet: every row whose id column equals the id. A file without the column fails the run
    (a location that cannot be checked is an error, never a silent skip).
  * Captures: every record whose eventMetadata.inferenceId names the id (dataset/inference_ids.py:
    its first 53 characters, then `:<scoring date>`), and every record whose request or response
    body holds the id (JSON, CSV or BASE64-encoded bodies, and lines that do not parse). The id is
    not a model input, so in practice the InferenceId is what finds a subscriber's captures; a
    request scored without an InferenceId carries nothing that ties it to the subscriber.
    Ground-truth lines (Model Monitor's merge format) hold the InferenceId as eventMetadata.eventId:
    every one naming the id is removed the same way.

How: only files holding the subscriber are rewritten; every other file is left byte-for-byte as it
was. A rewrite writes the new content then replaces the old object in one step (local: a temporary
file renamed over the old one; S3: one PutObject, which readers see whole or not at all), keeping the
other rows and records as they were (Parquet schema and metadata kept, capture lines kept as bytes).
On a versioned bucket the replaced object's older versions, which still hold the subscriber, are
deleted too. Running again finds nothing to do (idempotent). A capture file left with no record is
deleted; a Parquet file left with no row is kept empty, with its schema, so its partition stays readable.

Runs as a Glue 5.1 job (Python 3.11): pyarrow and boto3 on the driver, no Spark - the work is a few
files' worth of per-object rewrites, and Spark would rewrite whole partitions under new names.
Exit status: 0 ok, 2 bad input or arguments (including an unreadable file).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset import inference_ids
from etl import EtlError, suppression
from etl.lake_io import delete_object, is_s3, parse_bool, read_text, write_json
from etl.pseudonymise import hmac_hex, resolve_key

PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_ID_COLUMN = "subscriber_id"


class Store(Protocol):
    """Where a location's objects live: local folders for tests and the twin, S3 on AWS."""

    def list(self, uri: str, suffix: str) -> list[str]: ...
    def read(self, uri: str) -> bytes: ...
    def replace(self, uri: str, data: bytes) -> int: ...  # returns older versions deleted
    def delete(self, uri: str) -> int: ...  # returns versions deleted


def _hidden(parts: Sequence[str]) -> bool:
    """Spark/Hive conventions: `_runs`, `_temporary`, `.crc` files and the like are not data."""
    return any(p.startswith(("_", ".")) for p in parts)


class LocalStore:
    def list(self, uri: str, suffix: str) -> list[str]:
        root = Path(uri.removeprefix("file://"))
        if not root.is_dir():
            return []
        found = (p for p in root.rglob(f"*{suffix}") if p.is_file())
        return sorted(str(p) for p in found if not _hidden(p.relative_to(root).parts))

    def read(self, uri: str) -> bytes:
        return Path(uri).read_bytes()

    def replace(self, uri: str, data: bytes) -> int:
        target = Path(uri)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".erasure-tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)  # atomic on one file system: readers see the old or the new file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return 0

    def delete(self, uri: str) -> int:
        Path(uri).unlink()
        return 0


class S3Store:
    def __init__(self, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.s3 = client

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        bucket, _, key = uri.split("://", 1)[1].partition("/")
        if not bucket:
            raise EtlError(f"bad S3 URI '{uri}'")
        return bucket, key

    def list(self, uri: str, suffix: str) -> list[str]:
        bucket, prefix = self.split(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith(suffix) and not _hidden(key[len(prefix) :].split("/")):
                    keys.append(f"s3://{bucket}/{key}")
        return sorted(keys)

    def read(self, uri: str) -> bytes:
        bucket, key = self.split(uri)
        return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def replace(self, uri: str, data: bytes) -> int:
        bucket, key = self.split(uri)
        put = self.s3.put_object(Bucket=bucket, Key=key, Body=data)
        return self._delete_versions(bucket, key, keep=put.get("VersionId"))

    def delete(self, uri: str) -> int:
        bucket, key = self.split(uri)
        self.s3.delete_object(Bucket=bucket, Key=key)
        return self._delete_versions(bucket, key, keep=None)

    def _delete_versions(self, bucket: str, key: str, keep: str | None) -> int:
        """Delete every version of `key` but `keep` (versioned buckets: old versions hold the subscriber)."""
        deleted = 0
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                version = entry.get("VersionId")
                if entry["Key"] != key or version in (keep, None, "null"):
                    continue
                self.s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
                deleted += 1
        return deleted


@dataclass
class LocationReport:
    uri: str
    kind: str
    files_scanned: int = 0
    files_rewritten: int = 0
    files_deleted: int = 0
    rows_removed: int = 0
    old_versions_deleted: int = 0
    unparseable_records_kept: int = 0
    changed: list[str] = field(default_factory=list)


@dataclass
class ErasureReport:
    dry_run: bool
    subscriber: str  # a prefix of the pseudonym only: the report is not another copy of the id
    locations: list[LocationReport]
    suppression_list: str | None = None  # the list the pseudonym was (or, dry run, would be) added to
    request_deleted: str | None = None  # the erasure request object, deleted after a run that erased

    @property
    def rows_removed(self) -> int:
        return sum(loc.rows_removed for loc in self.locations)

    @property
    def files_changed(self) -> int:
        return sum(loc.files_rewritten + loc.files_deleted for loc in self.locations)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_removed": self.rows_removed, "files_changed": self.files_changed}


def check_subscriber_id(value: str) -> str:
    if not PSEUDONYM.match(value or ""):
        shown = "an empty value" if not value else f"a value of {len(value)} characters"
        raise EtlError(
            f"--subscriber_id: got {shown}, expected the pseudonymised id (64 lowercase hex characters, "
            "the keyed hash stored in the lake). Erase by pseudonym, never by the clear BSS id."
        )
    return value


def parquet_without(data: bytes, subscriber_id: str, id_column: str, where: str) -> tuple[bytes | None, int]:
    """(new file content, rows removed); content None when the file does not hold the subscriber."""
    try:
        ids = pq.read_table(pa.BufferReader(data), columns=[id_column]).column(id_column)
    except (pa.ArrowInvalid, KeyError) as exc:
        raise EtlError(f"{where}: cannot read column '{id_column}' as Parquet ({exc})") from exc
    hit = pc.fill_null(pc.equal(ids.cast(pa.string()), subscriber_id), False)
    removed = int(pc.sum(hit).as_py() or 0)
    if removed == 0:
        return None, 0
    source = pq.ParquetFile(pa.BufferReader(data))
    table = source.read()
    kept = table.filter(
        pc.invert(pc.fill_null(pc.equal(table.column(id_column).cast(pa.string()), subscriber_id), False))
    )
    codec = source.metadata.row_group(0).column(0).compression.lower() if source.metadata.num_row_groups else "snappy"
    sink = pa.BufferOutputStream()
    pq.write_table(kept, sink, compression=codec if codec != "uncompressed" else "none")
    return sink.getvalue().to_pybytes(), removed


def _body_text(part: Any) -> str:
    """A capture's request or response body as text, decoded when the encoding is BASE64."""
    if not isinstance(part, dict):
        return ""
    data = part.get("data")
    if not isinstance(data, str):
        return ""
    if str(part.get("encoding", "")).upper() == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return data
    return data


def capture_matches(line: bytes, subscriber_id: str) -> tuple[bool, bool]:
    """(the record belongs to the subscriber, the line parsed as a JSON object)."""
    if subscriber_id.encode() in line:  # a JSON/CSV body holding the id
        return True, True
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return False, False
    if not isinstance(record, dict):
        return False, False
    metadata = record.get("eventMetadata") or {}
    # A capture names the subscriber by inferenceId; a Model Monitor ground-truth line (etl/labels.py) by
    # eventId, which holds the InferenceId there. A captured eventId is a UUID and never matches.
    for name in ("inferenceId", "eventId"):
        value = metadata.get(name) if isinstance(metadata, dict) else None
        if isinstance(value, str) and inference_ids.belongs_to(value, subscriber_id):
            return True, True
    capture = record.get("captureData") or {}
    bodies = (_body_text(capture.get("endpointInput")), _body_text(capture.get("endpointOutput")))
    return any(subscriber_id in body for body in bodies), True


def captures_without(data: bytes, subscriber_id: str) -> tuple[bytes | None, int, int]:
    """(new content or None when untouched, records removed, unparseable lines kept)."""
    kept, removed, unparseable = [], 0, 0
    for line in data.splitlines(keepends=True):
        if not line.strip():
            kept.append(line)
            continue
        matched, parsed = capture_matches(line, subscriber_id)
        if matched:
            removed += 1
            continue
        unparseable += 0 if parsed else 1
        kept.append(line)
    return (b"".join(kept) if removed else None), removed, unparseable


def erase_location(
    store: Store, uri: str, kind: str, subscriber_id: str, id_column: str, dry_run: bool
) -> LocationReport:
    report = LocationReport(uri=uri, kind=kind)
    for obj in store.list(uri, ".parquet" if kind == "parquet" else ".jsonl"):
        report.files_scanned += 1
        try:
            data = store.read(obj)
        except Exception as exc:
            raise EtlError(f"{obj}: cannot read ({exc})") from exc
        if kind == "parquet":
            new, removed = parquet_without(data, subscriber_id, id_column, obj)
        else:
            new, removed, unparseable = captures_without(data, subscriber_id)
            report.unparseable_records_kept += unparseable
        if new is None:
            continue
        report.rows_removed += removed
        report.changed.append(obj)
        emptied = kind == "capture" and not new.strip()
        if emptied:
            report.files_deleted += 1
        else:
            report.files_rewritten += 1
        if not dry_run:
            report.old_versions_deleted += store.delete(obj) if emptied else store.replace(obj, new)
    return report


_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _with_column(location: str, default: str) -> tuple[str, str]:
    """`uri#column` -> (uri, column); a plain uri uses `default`."""
    uri, sep, column = location.partition("#")
    if sep and not _COLUMN.match(column):
        raise EtlError(f"--parquet_uris: '{location}': '{column}' is not a column name")
    return uri, column if sep else default


def _uris(value: str | None) -> list[str]:
    return [u.strip() for u in (value or "").split(",") if u.strip()]


def erase(
    subscriber_id: str,
    parquet_uris: Sequence[str],
    capture_uris: Sequence[str],
    *,
    id_column: str = DEFAULT_ID_COLUMN,
    dry_run: bool = True,
    store: Store | None = None,
) -> ErasureReport:
    """Erase (or, dry run, find) the subscriber in every location; see the module docstring."""
    check_subscriber_id(subscriber_id)
    if not parquet_uris and not capture_uris:
        raise EtlError("no locations: give --parquet_uris and/or --capture_uris")
    locations = [(*_with_column(u, id_column), "parquet") for u in parquet_uris]
    locations += [(u, id_column, "capture") for u in capture_uris]
    schemes = {is_s3(u) for u, _, _ in locations}
    if len(schemes) > 1:
        raise EtlError("locations mix s3:// URIs and local paths; run once per kind of store")
    if store is None:
        store = S3Store() if schemes == {True} else LocalStore()
    reports = [erase_location(store, uri, kind, subscriber_id, column, dry_run) for uri, column, kind in locations]
    return ErasureReport(dry_run=dry_run, subscriber=f"{subscriber_id[:8]}…", locations=reports)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="erasure", description="Erase one pseudonymised subscriber")
    p.add_argument("--subscriber_id", default=None)
    p.add_argument("--request_uri", default=None)
    p.add_argument("--pseudonymisation_secret_id", default=None)
    p.add_argument("--allow_dev_key", default="false")
    p.add_argument("--parquet_uris", default="")
    p.add_argument("--capture_uris", default="")
    p.add_argument("--id_column", default=DEFAULT_ID_COLUMN)
    p.add_argument("--dry_run", default="true")
    p.add_argument("--report_uri", default="")
    p.add_argument("--suppression_uri", default="")
    args, _unknown = p.parse_known_args(argv)
    return args


def subscriber_from_request(request_uri: str, secret_id: str | None, allow_dev_key: bool) -> str:
    """The pseudonym of the clear id in an erasure request object (never printed, never returned)."""
    try:
        request = json.loads(read_text(request_uri))
    except ValueError as exc:
        raise EtlError(f"--request_uri {request_uri}: not a JSON object ({exc})") from None
    clear = request.get("subscriber_id") if isinstance(request, dict) else None
    if not isinstance(clear, str) or not clear.strip():
        raise EtlError(f'--request_uri {request_uri}: expected {{"subscriber_id": "<the clear BSS id>"}}')
    key, _ = resolve_key(secret_id, allow_dev_key)
    pseudonym = hmac_hex(clear, key)
    assert pseudonym is not None
    return pseudonym


def _subscriber(args: argparse.Namespace) -> str:
    if (args.subscriber_id is None) == (args.request_uri is None):
        raise EtlError("give exactly one of --subscriber_id (a pseudonym) and --request_uri (a request object)")
    if args.subscriber_id is not None:
        return str(args.subscriber_id)
    allow = parse_bool(args.allow_dev_key, "--allow_dev_key")
    return subscriber_from_request(args.request_uri, args.pseudonymisation_secret_id, allow)


def run(argv: Sequence[str] | None = None, store: Store | None = None) -> ErasureReport:
    args = parse_args(argv)
    subscriber_id = _subscriber(args)
    report = erase(
        subscriber_id,
        _uris(args.parquet_uris),
        _uris(args.capture_uris),
        id_column=args.id_column,
        dry_run=parse_bool(args.dry_run, "--dry_run"),
        store=store,
    )
    if args.suppression_uri:
        if not report.dry_run:
            suppression.add(args.suppression_uri, subscriber_id)
        report.suppression_list = args.suppression_uri
    if args.request_uri and not report.dry_run:
        delete_object(args.request_uri)  # done: the clear id need not wait for the raw zone's expiry
        report.request_deleted = args.request_uri
    if args.report_uri:
        write_json(args.report_uri, report.as_dict())
    return report


def _describe(report: ErasureReport) -> Iterator[str]:
    verb = "would remove" if report.dry_run else "removed"
    for loc in report.locations:
        yield (
            f"{loc.kind} {loc.uri}: {loc.files_scanned} files scanned, {verb} {loc.rows_removed} rows from "
            f"{loc.files_rewritten + loc.files_deleted} files ({loc.files_deleted} deleted), "
            f"{loc.old_versions_deleted} old versions deleted, {loc.unparseable_records_kept} unparseable kept"
        )
    yield f"subscriber {report.subscriber}: {verb} {report.rows_removed} rows in {report.files_changed} files"
    if report.suppression_list:
        added = "would be added" if report.dry_run else "added"
        yield f"subscriber {report.subscriber}: {added} to the suppression list {report.suppression_list}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        report = run(argv)
    except EtlError as exc:
        print(f"erasure: ERROR: {exc}", file=sys.stderr)
        return 2
    for line in _describe(report):
        print(f"erasure: {line}")
    print(json.dumps(report.as_dict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
