"""CDR validation and per-subscriber usage aggregates (dataset.schema.USAGE_FEATURES).

Input: the raw CDR prefix (newline-delimited JSON as written by Firehose or
cdr_generator; any directory layout - files are found recursively; .gz works).

Validation - a record failing any rule goes to the CDR quarantine with `dq_reason`, the
record as text (`raw_record`: the original line when it did not parse, else the parsed
fields re-encoded as JSON) and `source_file`:
  record            unparseable JSON, or a field of the wrong JSON type
  event_id          missing
  subscriber_id     missing/blank
  event_time        missing, or not ISO-8601 with an explicit zone (Z or +hh:mm)
  event_type        missing or not voice/sms/data
  duration_seconds  missing or negative
  call_result       not completed/dropped/failed (required for voice)
  is_international  missing on a voice record
Duplicate deliveries (same subscriber_id and event_id, e.g. a Firehose retry) inside the
window: one copy is used (the smallest by event_time, then the other fields - deterministic
whatever the file order), the others are quarantined as `event_id: duplicate delivery`.

Window: events with as_of - window_days <= event_time < as_of (as_of at 00:00 UTC), i.e.
the window_days full UTC days before the as-of date. Valid events outside it are counted
(records_out_of_window) but neither used nor quarantined.

Invariant: records_in == records_used + records_out_of_window + records_quarantined.

Aggregates per subscriber (voice = event_type 'voice', both directions):
  usage_calls                voice events
  usage_minutes              voice duration_seconds / 60
  usage_minutes_{night,morning,afternoon,evening}
                             voice minutes by UTC hour of the call START: night 00-06,
                             morning 06-12, afternoon 12-18, evening 18-24 (a call is not
                             split across parts)
  usage_international_calls  voice events with is_international
  usage_dropped_calls        voice events with call_result 'dropped'
  usage_dropped_call_rate    dropped / calls (0.0 when no calls)
  usage_distinct_cells       distinct cell_id over all event types
  usage_active_days          distinct UTC dates with any event
Time arithmetic uses epoch seconds, so the Spark session time zone does not matter.
The subscriber id is trimmed and pseudonymised with the same keyed hash as the conform job
(hashed after aggregation: one hash per subscriber, not per event).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dataset.schema import USAGE_FEATURES
from etl import EtlError, InvariantError
from etl.pseudonymise import hmac_hex_col

CORRUPT = "__corrupt_record"
EVENT_TYPES = ("voice", "sms", "data")
CALL_RESULTS = ("completed", "dropped", "failed")
DAY_PARTS = ("night", "morning", "afternoon", "evening")  # 6-hour UTC blocks from 00:00
_TS_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"

CDR_FIELDS = T.StructType([
    T.StructField("event_id", T.StringType()),
    T.StructField("subscriber_id", T.StringType()),
    T.StructField("event_time", T.StringType()),
    T.StructField("event_type", T.StringType()),
    T.StructField("direction", T.StringType()),
    T.StructField("duration_seconds", T.LongType()),
    T.StructField("called_country", T.StringType()),
    T.StructField("is_international", T.BooleanType()),
    T.StructField("call_result", T.StringType()),
    T.StructField("cell_id", T.StringType()),
])
INT_FEATURES = ("usage_calls", "usage_international_calls", "usage_dropped_calls",
                "usage_distinct_cells", "usage_active_days")


@dataclass
class UsageResult:
    usage: DataFrame  # id column + USAGE_FEATURES, one row per subscriber with in-window events
    quarantined: DataFrame  # dq_reason, raw_record, source_file
    counts: dict[str, int] = field(default_factory=dict)
    _persisted: list[DataFrame] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for df in self._persisted:
            df.unpersist()


def read_cdrs(spark: SparkSession, path: str) -> DataFrame:
    """Raw CDR records with the declared fields, the corrupt line (if any) and the source file."""
    schema = T.StructType([*CDR_FIELDS.fields, T.StructField(CORRUPT, T.StringType())])
    try:
        df = (spark.read.schema(schema)
              .option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", CORRUPT)
              .option("recursiveFileLookup", "true")
              .json(path))
    except Exception as exc:
        raise EtlError(f"cannot read CDRs from {path}: {exc}") from exc
    return df.withColumn("source_file", F.input_file_name())


def _blank(c: Column) -> Column:
    return c.isNull() | (F.trim(c) == "")


def cdr_rules() -> list[Column]:
    et = F.col("event_time")
    etype = F.col("event_type")
    dur = F.col("duration_seconds")
    result = F.col("call_result")
    voice = etype == "voice"
    return [
        F.when(_blank(F.col("event_id")), F.lit("event_id: missing")),
        F.when(_blank(F.col("subscriber_id")), F.lit("subscriber_id: missing")),
        F.when(et.isNull(), F.lit("event_time: missing"))
        .when(F.col("__epoch").isNull(), F.concat(
            F.lit("event_time: cannot parse '"), et, F.lit("' as ISO-8601 timestamp with zone"))),
        F.when(etype.isNull(), F.lit("event_type: missing"))
        .when(~etype.isin(*EVENT_TYPES), F.concat(
            F.lit("event_type: '"), etype, F.lit(f"' not one of {'/'.join(EVENT_TYPES)}"))),
        F.when(dur.isNull(), F.lit("duration_seconds: missing"))
        .when(dur < 0, F.concat(F.lit("duration_seconds: negative value "), dur.cast("string"))),
        F.when(result.isNotNull() & ~result.isin(*CALL_RESULTS), F.concat(
            F.lit("call_result: '"), result, F.lit(f"' not one of {'/'.join(CALL_RESULTS)}")))
        .when(voice & result.isNull(), F.lit("call_result: missing on a voice record")),
        F.when(voice & F.col("is_international").isNull(),
               F.lit("is_international: missing on a voice record")),
    ]


def _epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def validate(raw: DataFrame, as_of: date, window_days: int) -> DataFrame:
    """Add __epoch, dq_reason and __status (valid_in_window / out_of_window / quarantined)."""
    end = _epoch(as_of)
    start = _epoch(as_of - timedelta(days=window_days))
    et = F.col("event_time")
    parsed = raw.withColumn(
        "__epoch", F.when(et.rlike(_TS_RE), F.unix_seconds(et.cast("timestamp"))))
    reason = F.concat_ws("; ", *cdr_rules())
    reason = (F.when(F.col(CORRUPT).isNotNull(),
                     F.lit("record: unparseable JSON or a field of the wrong type"))
              .when(reason != "", reason))
    in_window = (F.col("__epoch") >= start) & (F.col("__epoch") < end)
    return parsed.withColumn("dq_reason", reason).withColumn(
        "__status",
        F.when(F.col("dq_reason").isNotNull(), F.lit("quarantined"))
        .when(in_window, F.lit("valid_in_window")).otherwise(F.lit("out_of_window")))


def _raw_record() -> Column:
    return F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(f.name) for f in CDR_FIELDS.fields])))


_REC_FIELDS = ("__epoch", "event_type", "duration_seconds", "is_international", "call_result", "cell_id",
               "event_time", "direction", "called_country")


def deduplicate(events: DataFrame) -> DataFrame:
    """One row per (trimmed subscriber_id, event_id): columns __sub, event_id, rec, __copies.

    `rec` is the smallest copy as a struct (deterministic whatever the file order). The
    input is hash-partitioned by subscriber once, so the dedupe and the per-subscriber
    aggregation that follows share a single shuffle.
    """
    rec = F.struct(*[F.col(c) for c in _REC_FIELDS]).alias("rec")
    return (events.select(F.trim(F.col("subscriber_id")).alias("__sub"), F.col("event_id"), rec)
            .repartition("__sub")
            .groupBy("__sub", "event_id")
            .agg(F.min("rec").alias("rec"), F.count(F.lit(1)).alias("__copies")))


def aggregate(deduped: DataFrame, key: bytes, id_column: str = "subscriber_id") -> DataFrame:
    """Usage features per subscriber from `deduplicate` output; also __duplicates per subscriber."""
    voice = F.col("rec.event_type") == "voice"
    dur = F.col("rec.duration_seconds")
    epoch = F.col("rec.__epoch")
    part = F.floor((epoch % 86400) / 21600)

    def count_if(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0))

    aggs = [
        count_if(voice).alias("usage_calls"),
        (F.sum(F.when(voice, dur).otherwise(0)) / 60.0).alias("usage_minutes"),
        *[(F.sum(F.when(voice & (part == i), dur).otherwise(0)) / 60.0).alias(f"usage_minutes_{name}")
          for i, name in enumerate(DAY_PARTS)],
        count_if(voice & F.col("rec.is_international")).alias("usage_international_calls"),
        count_if(voice & (F.col("rec.call_result") == "dropped")).alias("usage_dropped_calls"),
        F.size(F.collect_set("rec.cell_id")).alias("usage_distinct_cells"),
        F.size(F.collect_set(F.floor(epoch / 86400))).alias("usage_active_days"),
        F.sum(F.col("__copies") - 1).alias("__duplicates"),
    ]
    grouped = deduped.groupBy("__sub").agg(*aggs)
    rate = F.when(F.col("usage_calls") > 0, F.col("usage_dropped_calls") / F.col("usage_calls")) \
        .otherwise(F.lit(0.0))
    out = grouped.withColumn("usage_dropped_call_rate", rate)
    cols = [hmac_hex_col("__sub", key).alias(id_column)]
    for name in USAGE_FEATURES:
        dtype = "int" if name in INT_FEATURES else "double"
        cols.append(F.col(name).cast(dtype).alias(name))
    return out.select(*cols, F.col("__duplicates").cast("long"))


def _duplicate_copies(events: DataFrame) -> DataFrame:
    """The copies not used by `deduplicate` (all but the smallest of each group)."""
    rec = F.struct(*[F.col(c) for c in _REC_FIELDS])
    full = F.struct(*[F.col(f.name) for f in CDR_FIELDS.fields])
    grouped = (events.select(F.trim(F.col("subscriber_id")).alias("__sub"), F.col("event_id"),
                             F.struct(rec.alias("rec"), full.alias("full")).alias("copy"))
               .groupBy("__sub", "event_id")
               .agg(F.array_sort(F.collect_list("copy")).alias("copies"))
               .filter(F.size("copies") > 1))
    extra = grouped.select(F.explode(F.slice("copies", 2, 1 << 30)).alias("copy"))
    return extra.select(F.lit("event_id: duplicate delivery").alias("dq_reason"),
                        F.to_json(F.col("copy.full")).alias("raw_record"),
                        F.lit(None).cast("string").alias("source_file"))


def compute_usage(spark: SparkSession, cdr_path: str, as_of: date, window_days: int, key: bytes,
                  id_column: str = "subscriber_id") -> UsageResult:
    """Read, validate, deduplicate and aggregate CDRs; enforce the record invariant."""
    return usage_from_raw(read_cdrs(spark, cdr_path), as_of, window_days, key, id_column, cdr_path)


def usage_from_raw(raw: DataFrame, as_of: date, window_days: int, key: bytes,
                   id_column: str = "subscriber_id", where: str = "CDRs") -> UsageResult:
    """Passes over the input: one for usage (a single shuffle; the status counts are
    collected in the same pass with a Spark Observation), and - lazily, when the quarantine
    is written - one for the invalid records (plus a duplicate pass only if any)."""
    if window_days < 1:
        raise EtlError(f"window_days must be >= 1, got {window_days}")
    checked = validate(raw, as_of, window_days)
    # Status counts are observed during the aggregation pass itself (no separate scan).
    # A unique name also keeps Spark's cache from matching this plan with an earlier run's
    # (which would skip the pass, leave the observation empty and serve stale usage).
    observation = Observation(f"cdr_status_{uuid.uuid4().hex}")
    status = F.col("__status")
    observed = checked.observe(
        observation,
        *[F.sum(F.when(status == name, 1).otherwise(0)).alias(name)
          for name in ("valid_in_window", "out_of_window", "quarantined")],
        F.count(F.lit(1)).alias("records_in"),
    )
    in_window = observed.filter(status == "valid_in_window").drop(CORRUPT, "source_file")
    usage_all = aggregate(deduplicate(in_window), key, id_column).persist(StorageLevel.MEMORY_AND_DISK)
    dup_row = usage_all.agg(F.count(F.lit(1)).alias("n"), F.sum("__duplicates").alias("d")).first()
    assert dup_row is not None
    usage_subscribers, duplicates = int(dup_row["n"] or 0), int(dup_row["d"] or 0)
    usage = usage_all.drop("__duplicates")
    metrics = observation.get
    by_status = {name: int(metrics.get(name) or 0)
                 for name in ("valid_in_window", "out_of_window", "quarantined")}
    records_in = int(metrics.get("records_in") or 0)
    if records_in != sum(by_status.values()):
        raise InvariantError(f"{where}: status counts {by_status} do not add up to records in ({records_in})")

    quarantined = checked.filter(F.col("__status") == "quarantined").select(
        F.col("dq_reason"), _raw_record().alias("raw_record"), F.col("source_file"))
    if duplicates:
        quarantined = quarantined.unionByName(_duplicate_copies(in_window))

    counts = {
        "records_in": records_in,
        "records_invalid": by_status.get("quarantined", 0),
        "records_duplicate": duplicates,
        "records_quarantined": by_status.get("quarantined", 0) + duplicates,
        "records_out_of_window": by_status.get("out_of_window", 0),
        "records_used": by_status.get("valid_in_window", 0) - duplicates,
        "usage_subscribers": usage_subscribers,
    }
    if records_in != (counts["records_used"] + counts["records_out_of_window"]
                      + counts["records_quarantined"]) or counts["records_used"] < 0:
        raise InvariantError(f"{where}: records in ({records_in}) != used ({counts['records_used']}) + "
                             f"out of window ({counts['records_out_of_window']}) + quarantined "
                             f"({counts['records_quarantined']})")
    return UsageResult(usage, quarantined, counts, [usage_all])


def summary(result: UsageResult, as_of: date, window_days: int) -> dict[str, Any]:
    start = as_of - timedelta(days=window_days)
    return {"as_of": as_of.isoformat(), "window_days": window_days,
            "window": f"[{start.isoformat()}T00:00:00Z, {as_of.isoformat()}T00:00:00Z)", **result.counts}
