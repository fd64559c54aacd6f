"""Seeded synthetic CDR (call detail record) events, as Firehose delivers them to raw.

Output: newline-delimited JSON, one record per line, partitioned by event date:

    OUT/event_date=YYYY-MM-DD/cdr-YYYY-MM-DD.json

Record fields (see docs/dataset-schema.md, "CDR record format"):
    event_id          string   unique per event ("YYYYMMDD-<9-digit sequence>")
    subscriber_id     string   the BSS subscriber id, in clear (pseudonymised by the ETL)
    event_time        string   ISO-8601 UTC, second precision, e.g. 2025-12-31T23:59:59Z
    event_type        string   voice | sms | data
    direction         string   outgoing | incoming (data: outgoing)
    duration_seconds  integer  voice: call length; data: session length; sms: 0
    called_country    string   ISO 3166 alpha-2 of the other party; null for data
    is_international  boolean  called_country differs from the home country (US)
    call_result       string   completed | dropped | failed
    cell_id           string   serving cell, "cell-NNNNN"

Determinism: the whole stream is a function of (subscriber ids, rows, days, end date,
seed, malformed): each day draws from its own generator seeded with (seed, day index), so
the same arguments give byte-identical files. Generation is numpy-vectorised per day.

`--malformed N` appends N deliberately bad lines (cycling: unparseable JSON, missing
subscriber_id, negative duration, bad timestamp) to exercise the CDR quarantine.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

EVENT_TYPES = ("voice", "sms", "data")
CALL_RESULTS = ("completed", "dropped", "failed")
DIRECTIONS = ("outgoing", "incoming")
HOME_COUNTRY = "US"
FOREIGN_COUNTRIES = ("MX", "CA", "GB", "IN", "PH", "DE", "FR", "CN", "BR", "NG")
N_CELLS = 5000
MALFORMED_KINDS = ("unparseable_json", "missing_subscriber_id", "negative_duration", "bad_timestamp")
FIELDS = ("event_id", "subscriber_id", "event_time", "event_type", "direction", "duration_seconds",
          "called_country", "is_international", "call_result", "cell_id")

# Share of the day's events starting in each UTC hour (quiet nights, busy evenings).
_HOURLY = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 4, 4.2, 4.3,
                    4.5, 4.4, 4.3, 4.4, 4.8, 5.5, 6.2, 6.5, 6, 5, 3.5, 2], dtype=float)
_HOURLY /= _HOURLY.sum()


@dataclass(frozen=True)
class GenerationStats:
    rows: int
    malformed: int
    files: int
    out_dir: Path


def _subscriber_profile(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0xC0FFEE])
    weights = rng.lognormal(mean=0.0, sigma=1.0, size=n)
    home_cell = rng.integers(0, N_CELLS, size=n)
    return weights / weights.sum(), home_cell


def _day_frame(ids: np.ndarray, probs: np.ndarray, home_cell: np.ndarray, day: date,
               n: int, seed: int, day_index: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, day_index + 1])
    sub = rng.choice(len(ids), size=n, p=probs)
    hour = rng.choice(24, size=n, p=_HOURLY)
    second = np.sort(hour * 3600 + rng.integers(0, 3600, size=n))
    kind = rng.choice(3, size=n, p=[0.5, 0.2, 0.3])
    direction = np.where(kind == 2, 0, rng.choice(2, size=n, p=[0.55, 0.45]))
    voice_len = np.rint(rng.lognormal(mean=4.6, sigma=1.0, size=n)).astype(np.int64)
    data_len = np.rint(rng.lognormal(mean=6.0, sigma=1.2, size=n)).astype(np.int64)
    duration = np.select([kind == 0, kind == 2], [voice_len, data_len], 0)
    intl = (kind != 2) & (rng.random(n) < 0.03)
    foreign = np.asarray(FOREIGN_COUNTRIES, dtype=object)[rng.integers(0, len(FOREIGN_COUNTRIES), size=n)]
    country = np.where(intl, foreign, HOME_COUNTRY).astype(object)
    country[kind == 2] = None
    u = rng.random(n)
    result = np.where(
        kind == 0, np.select([u < 0.04, u < 0.07], [1, 2], 0),
        np.where(kind == 1, np.where(u < 0.02, 2, 0), np.where(u < 0.03, 1, 0)))
    cell = (home_cell[sub] + rng.integers(-3, 4, size=n)) % N_CELLS

    stamp = f"{day:%Y%m%d}-"
    seq = pa.array(np.arange(n, dtype=np.int64)).cast(pa.string())
    event_id = pc.binary_join_element_wise(stamp, pc.utf8_lpad(seq, 9, "0"), "")
    base = np.datetime64(day.isoformat(), "s")
    times = pa.array(base + second.astype("timedelta64[s]"))
    event_time = pc.strftime(times, format="%Y-%m-%dT%H:%M:%SZ")
    cell_text = pc.utf8_lpad(pa.array(cell).cast(pa.string()), 5, "0")
    cell_ids = pc.binary_join_element_wise("cell-", cell_text, "")
    return pd.DataFrame({
        "event_id": event_id.to_numpy(zero_copy_only=False),
        "subscriber_id": ids[sub],
        "event_time": event_time.to_numpy(zero_copy_only=False),
        "event_type": np.asarray(EVENT_TYPES, dtype=object)[kind],
        "direction": np.asarray(DIRECTIONS, dtype=object)[direction],
        "duration_seconds": duration,
        "called_country": country,
        "is_international": intl,
        "call_result": np.asarray(CALL_RESULTS, dtype=object)[result],
        "cell_id": cell_ids.to_numpy(zero_copy_only=False),
    })


def malformed_line(i: int, subscriber_id: str, day: date) -> str:
    """The i-th deliberately bad record (kind cycles through MALFORMED_KINDS)."""
    kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
    rec: dict[str, object] = {
        "event_id": f"{day:%Y%m%d}-bad{i:06d}", "subscriber_id": subscriber_id,
        "event_time": f"{day.isoformat()}T12:00:00Z", "event_type": "voice", "direction": "outgoing",
        "duration_seconds": 60, "called_country": HOME_COUNTRY, "is_international": False,
        "call_result": "completed", "cell_id": "cell-00001",
    }
    if kind == "unparseable_json":
        return json.dumps(rec)[:-25]
    if kind == "missing_subscriber_id":
        del rec["subscriber_id"]
    elif kind == "negative_duration":
        rec["duration_seconds"] = -60
    else:
        rec["event_time"] = f"{day.isoformat()} noon"
    return json.dumps(rec)


def generate(subscriber_ids: Sequence[str], rows: int, days: int, end_date: date, seed: int,
             out_dir: str | Path, malformed: int = 0) -> GenerationStats:
    """Write `rows` valid events (+ `malformed` bad lines) over `days` days ending `end_date`."""
    if not subscriber_ids:
        raise ValueError("no subscriber ids to generate CDRs for")
    if rows < 0 or days < 1 or malformed < 0:
        raise ValueError(f"rows ({rows}) and malformed ({malformed}) must be >= 0 and days ({days}) >= 1")
    out = Path(out_dir)
    ids = np.asarray([str(s) for s in subscriber_ids], dtype=object)
    probs, home_cell = _subscriber_profile(len(ids), seed)
    per_day = np.random.default_rng([seed, 0xDA7E]).multinomial(rows, [1.0 / days] * days)
    files = 0
    for d in range(days):
        day = end_date - timedelta(days=days - 1 - d)
        bad = [malformed_line(i, str(ids[i % len(ids)]), day) for i in range(d, malformed, days)]
        n = int(per_day[d])
        if n == 0 and not bad:
            continue
        part = out / f"event_date={day.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        path = part / f"cdr-{day.isoformat()}.json"
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            if n:
                frame = _day_frame(ids, probs, home_cell, day, n, seed, d)
                fh.write(frame.to_json(orient="records", lines=True))
                del frame
            for line in bad:
                fh.write(line + "\n")
        files += 1
    return GenerationStats(rows=rows, malformed=malformed, files=files, out_dir=out)


def read_ids(csv_path: str | Path, id_column: str | None) -> list[str]:
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise ValueError(f"{csv_path}: no header row")
        col = id_column or reader.fieldnames[0]
        if col not in reader.fieldnames:
            raise ValueError(f"{csv_path}: no column '{col}' (header: {reader.fieldnames})")
        ids = [row[col].strip() for row in reader if row[col] and row[col].strip()]
    return list(dict.fromkeys(ids))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m etl.cdr_generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--subscriber-ids-from", metavar="CSV", help="raw snapshot CSV to take ids from")
    src.add_argument("--subscribers", type=int, metavar="N", help="use ids '1'..'N'")
    p.add_argument("--id-column", help="id column in --subscriber-ids-from (default: first column)")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--end-date", type=date.fromisoformat, default=date(2025, 12, 31))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--malformed", type=int, default=0, help="deliberately bad lines to add")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        ids = (read_ids(args.subscriber_ids_from, args.id_column) if args.subscriber_ids_from
               else [str(i) for i in range(1, args.subscribers + 1)])
        stats = generate(ids, args.rows, args.days, args.end_date, args.seed, args.out, args.malformed)
    except (OSError, ValueError) as exc:
        print(f"cdr_generator: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {stats.rows} events + {stats.malformed} malformed lines in {stats.files} files "
          f"under {stats.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
