"""Local SparkSession used by tests, the local run and the benchmarks.

On AWS Glue the session comes from the Glue runtime instead; jobs only rely on settings
they also set themselves at run time (UTC session time zone, dynamic partition overwrite).
"""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

# Settings every job sets on whatever session it is given (runtime-modifiable SQL confs).
RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Parsing relies on non-ANSI casts returning null for invalid values (e.g. 2024-02-30);
    # Spark 3.5 / Glue 5.1 default, pinned so a cluster default cannot change behaviour.
    "spark.sql.ansi.enabled": "false",
}


def apply_runtime_conf(spark: SparkSession) -> SparkSession:
    for key, value in RUNTIME_CONF.items():
        spark.conf.set(key, value)
    return spark


# Up to this many shuffle partitions the data is laptop-sized (the twin, tests, local runs: thousands of
# rows). Then adaptive execution is off - with one or two partitions there is nothing to coalesce, and its
# re-planning adds Spark jobs - and the JVM compiles with C1 only: a run of a few seconds spends more
# time in the C2 compiler than C2's faster code saves (measured: conform of 7,043 rows 36 -> 18 s of JVM CPU).
SMALL_DATA_PARTITIONS = 2
SMALL_DATA_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def local_spark(
    app_name: str = "telecom-ml-etl",
    cores: int = 2,
    shuffle_partitions: int = 1,
    driver_memory: str = "4g",
) -> SparkSession:
    """A small local[cores] session: UI off, UTC, few shuffle partitions, loopback only.

    The default (one shuffle partition) suits laptop-sized data; pass more partitions for large
    inputs (benchmarks), which also brings back adaptive execution and the JVM's full JIT.
    If a session already exists in this process it is reused (driver memory and JVM options
    cannot change after the JVM started); the runtime settings are applied either way.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    small = shuffle_partitions <= SMALL_DATA_PARTITIONS
    java_options = "-Duser.timezone=UTC" + (f" {SMALL_DATA_JVM_OPTIONS}" if small else "")
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(cores))
        .config("spark.sql.adaptive.enabled", str(not small).lower())
        .config("spark.sql.warehouse.dir", os.path.join(os.getcwd(), "build", "spark-warehouse"))
    )
    for key, value in RUNTIME_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return apply_runtime_conf(spark)
