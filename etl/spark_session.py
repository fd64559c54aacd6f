"""Local SparkSession used by tests, the local run and the benchmarks.

On AWS Glue the session comes from the Glue runtime instead; jobs only rely on settings
they also set themselves at run time (UTC session time zone, dynamic partition overwrite).

A laptop-sized session's JVM also shares the classes Spark loads through a class-data-sharing
archive, build/spark-cds/spark-<key>.jsa (key: pyspark version and the java binary). `make setup`
writes it (`python -m etl.spark_session`); otherwise the first session that finds none asks its JVM
to write one when it exits, and waits for that at Python's exit (a few seconds, once). Every later
JVM maps it instead of loading and verifying thousands of classes (measured: a cold conform of
7,043 rows 14 -> 11 s of CPU, 16 -> 12 s of wall time). The JVM writes a temporary file that is
renamed only once complete, and ignores an archive that does not match it. Delete build/spark-cds
to rebuild it.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import sys
from pathlib import Path

import pyspark
from pyspark import SparkContext
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
    launching = SparkContext._gateway is None  # JVM options only count when this call starts the JVM
    archive = class_data_archive() if small and launching else None
    sharing, dump_to = class_data_options(archive) if archive else ("", None)
    java_options = " ".join(filter(None, ["-Duser.timezone=UTC", SMALL_DATA_JVM_OPTIONS if small else "", sharing]))
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
    if archive is not None and dump_to is not None:
        _publish_archive_at_exit(dump_to, archive)
    return apply_runtime_conf(spark)


def class_data_archive() -> Path | None:
    """Where this JVM's class-data-sharing archive lives (None when no java is found)."""
    java_home = os.environ.get("JAVA_HOME")
    java = shutil.which("java", path=os.path.join(java_home, "bin") if java_home else None)
    if java is None:
        return None
    real = os.path.realpath(java)
    key = f"{pyspark.__version__}|{real}|{os.stat(real).st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(os.getcwd()) / "build" / "spark-cds" / f"spark-{digest}.jsa"


def class_data_options(archive: Path) -> tuple[str, Path | None]:
    """JVM options that use `archive`, or write it at exit: (options, the temporary file or None)."""
    quiet = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # the dump lists every class it skips
    if archive.is_file():
        return f"-XX:SharedArchiveFile={archive} {quiet}", None
    archive.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphaned_dumps(archive)
    dump_to = archive.with_name(f"{archive.stem}.{os.getpid()}.tmp")
    return f"-XX:ArchiveClassesAtExit={dump_to} {quiet}", dump_to


def _remove_orphaned_dumps(archive: Path) -> None:
    """Temporary dumps whose Python process is gone (killed before it could publish, e.g. a pytest-xdist worker
    its controller stopped): each holds a hundred-odd MB and would never be renamed."""
    for dump in archive.parent.glob(f"{archive.stem}.*.tmp"):
        pid = dump.name.removeprefix(f"{archive.stem}.").removesuffix(".tmp")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            dump.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError: alive, another user's
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _publish_archive_at_exit(dump_to: Path, archive: Path) -> None:
    """At Python's exit: let the JVM exit by itself (it writes the archive then), rename it when complete."""
    proc = getattr(SparkContext._gateway, "proc", None)
    if proc is None or proc.stdin is None:
        return

    def finish() -> None:
        with contextlib.suppress(Exception):  # without an archive the next run is only slower
            proc.stdin.close()  # the gateway exits on end of input, and the JVM writes the archive
            proc.wait(timeout=120)
            if proc.returncode == 0 and dump_to.is_file() and dump_to.stat().st_size > 0:
                os.replace(dump_to, archive)
        with contextlib.suppress(OSError):
            dump_to.unlink()

    atexit.register(finish)


def main() -> int:
    """`python -m etl.spark_session` (make setup): write this JVM's class-data archive now, in a process of its own,
    so that no test worker has to (a pytest-xdist worker is stopped before its JVM finishes writing it)."""
    archive = class_data_archive()
    if archive is None or archive.is_file():
        return 0
    print(f"==> writing Spark's class-data archive {archive.relative_to(Path.cwd())} (once, about 15 s)")
    local_spark("class-data-archive").range(1).count()
    return 0  # the JVM writes the archive when this process exits; _publish_archive_at_exit renames it


if __name__ == "__main__":
    sys.exit(main())
