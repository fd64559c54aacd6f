"""Check a raw snapshot's header against the schema before Spark starts (well under a second).

Reads only the first HEAD_BYTES bytes of the file (one ranged GET on S3) and:
  * rejects what is not UTF-8 CSV text, saying what it looks like instead: an empty file,
    compressed or binary data (gzip, zip/xlsx, Parquet, ...), UTF-16/32 (byte-order mark or
    NUL bytes), a header row that is not valid UTF-8, a first line that is blank, a header
    with an unterminated quote or no line break within HEAD_BYTES;
  * takes the header's field names (CSV quoting as Spark reads it: RFC 4180, `""` inside a
    quoted field), strips a UTF-8 byte-order mark and surrounding spaces, names blank fields
    `_c<index>` as Spark would, and applies the schema's `source.rename`;
  * fails on a repeated name (Spark would otherwise silently rename both copies) and on a
    declared column missing from the header, each in one line naming the columns and file;
  * reports undeclared columns (the conform job drops them, with a warning).

Importable without pyspark: the local run calls it before creating a Spark session, the
Glue conform job before reading. `python -m etl.preflight --schema S --data F` runs it alone.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from dataset.schema import DatasetSchema, SchemaError, rename_columns
from etl import EtlError
from etl.lake_io import load_schema_uri, read_head

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a zip archive (or an .xlsx workbook)"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"PAR1", "a Parquet file"),
    (b"\xd0\xcf\x11\xe0", "an OLE2 document (e.g. an .xls workbook)"),
    (b"\xff\xfe\x00\x00", "UTF-32 text (little-endian byte-order mark)"),
    (b"\x00\x00\xfe\xff", "UTF-32 text (big-endian byte-order mark)"),
    (b"\xff\xfe", "UTF-16 text (little-endian byte-order mark)"),
    (b"\xfe\xff", "UTF-16 text (big-endian byte-order mark)"),
)
_EXPECTED = "the raw zone expects a UTF-8 CSV file with a header row"


@dataclass(frozen=True)
class SnapshotHeader:
    """The header as the conform job reads it."""

    uri: str
    columns: tuple[str, ...]  # field names in file order: cleaned, blanks named, source.rename applied
    dropped: tuple[str, ...] = ()  # undeclared columns (dropped by the conform job)
    renamed: dict[str, str] = field(default_factory=dict)  # raw name -> declared name, as applied


def check_bytes(head: bytes, uri: str) -> None:
    """EtlError unless `head` (the start of the file) can be the start of a UTF-8 CSV file."""
    if not head:
        raise EtlError(f"{uri}: empty file (no header row); {_EXPECTED}")
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            raise EtlError(f"{uri}: the file is {what}, not UTF-8 CSV text; {_EXPECTED}")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise EtlError(f"{uri}: NUL byte at offset {nul}: binary data or UTF-16/32 text, not UTF-8 CSV; "
                       f"{_EXPECTED}")


def header_line(head: bytes, uri: str) -> str:
    """The first line of `head`, decoded (strict UTF-8, byte-order mark removed)."""
    check_bytes(head, uri)
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    if not ends and len(head) >= HEAD_BYTES:
        raise EtlError(f"{uri}: no line break in the first {HEAD_BYTES} bytes: not a CSV text file, or a "
                       "header row longer than that")
    raw = head[: min(ends)] if ends else head
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EtlError(f"{uri}: header row is not valid UTF-8 (byte 0x{raw[exc.start]:02X} at offset "
                       f"{exc.start}); {_EXPECTED}") from None
    line = line.removeprefix("\ufeff")
    if not line.strip():
        raise EtlError(f"{uri}: the first line is blank; the header row must be the file's first line")
    return line


def split_header(line: str, uri: str) -> list[str]:
    """Field names of one header line, quoted as Spark reads them; blanks named `_c<index>`."""
    try:
        fields = next(csv.reader([line], delimiter=",", quotechar='"', doublequote=True, strict=True))
    except csv.Error as exc:
        raise EtlError(f"{uri}: header row is not a valid CSV record ({exc}); a header field may not "
                       "contain a line break") from None
    return [name.strip() or f"_c{i}" for i, name in enumerate(fields)]


def read_header(uri: str) -> list[str]:
    """The raw header's field names (cleaned, no rename), after the file-level checks."""
    return split_header(header_line(read_head(uri, HEAD_BYTES), uri), uri)


def check_repeats(columns: Sequence[str], uri: str, renamed: dict[str, str] | None = None) -> None:
    """EtlError naming the header names that occur more than once (compared case-insensitively)."""
    folded = [c.lower() for c in columns]
    dupes = sorted({c for c in columns if folded.count(c.lower()) > 1})
    if dupes:
        after = f" after source.rename {renamed}" if renamed else ""
        raise EtlError(f"{uri}: header repeats column(s) {dupes}{after} (names compare case-insensitively, "
                       "as Spark resolves them)")


def check_header(schema: DatasetSchema, names: Sequence[str], uri: str) -> SnapshotHeader:
    """Apply source.rename and compare with the schema; EtlError on repeated or missing columns."""
    columns = rename_columns(schema, list(names))
    renamed = {a: b for a, b in zip(names, columns, strict=True) if a != b}
    check_repeats(columns, uri, renamed)
    missing = [c for c in schema.source_columns if c not in columns]
    if missing:
        raise EtlError(f"{uri}: missing declared column(s) {missing} (schema {schema.path}); "
                       f"header has {list(columns)}")
    dropped = tuple(c for c in columns if c not in schema.source_columns)
    return SnapshotHeader(uri, tuple(columns), dropped, renamed)


def preflight_snapshot(schema: DatasetSchema, uri: str) -> SnapshotHeader:
    """File-level and header checks of a raw snapshot; logs one line naming undeclared columns."""
    header = check_header(schema, read_header(uri), uri)
    if header.dropped:
        log.warning("%s: column(s) not declared in schema %s will be dropped: %s", uri, schema.path,
                    list(header.dropped))
    return header


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m etl.preflight", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schema", required=True, help="schema file, YAML or JSON")
    p.add_argument("--data", required=True, help="raw snapshot CSV (local path or s3:// URI)")
    args = p.parse_args(argv)
    try:
        header = preflight_snapshot(load_schema_uri(args.schema), args.data)
    except (EtlError, SchemaError) as exc:
        print(f"preflight: ERROR: {exc}", file=sys.stderr)
        return 2
    extra = f"; undeclared, dropped: {list(header.dropped)}" if header.dropped else ""
    renamed = f"; renamed {header.renamed}" if header.renamed else ""
    print(f"preflight: {args.data}: {len(header.columns)} columns match schema {args.schema}{renamed}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
