"""Driver peak memory of one table write: the old ``toArrow()`` path against executors writing Parquet.

    .venv/bin/python scripts/measure_write_memory.py executors 2000000
    .venv/bin/python scripts/measure_write_memory.py collect 2000000

Run each in its own process (its own JVM). Prints wall time and the peak resident memory
(VmHWM) of the Python driver and of the driver JVM; the Python workers are not the driver.
"""

import sys
import tempfile
import time
from pathlib import Path

from deltalake import write_deltalake
from pyspark.sql import functions as F

from billing_assets.resources.spark import spark_config, spark_session
from billing_assets.tables.delta_io import open_table, replace_partitions
from billing_assets.tables.schemas import HOURLY_USAGE
from billing_assets.tables.selection import partition_range

HOURS = 48


def peak_rss_mib(pid: int | str) -> float:
    """VmHWM of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main(mode: str, rows: int) -> None:
    spark = spark_session(spark_config("local[2]"))
    hour = F.col("id") % HOURS
    frame = spark.range(rows).select(
        F.concat(F.lit("m"), (F.col("id") / HOURS).cast("long").cast("string")).alias("meterpoint_id"),
        F.timestamp_seconds(F.lit(1767225600) + hour * 3600).alias("usage_hour"),
        (F.col("id") % 1000 / 100).alias("consumption"),
        F.lit(4).cast("long").alias("reading_count"),
        F.date_format(F.timestamp_seconds(F.lit(1767225600) + hour * 3600), "yyyy-MM-dd-HH").alias("recording_hour"),
    )
    with tempfile.TemporaryDirectory() as root:
        table = open_table(f"{root}/hourly_usage", HOURLY_USAGE)
        started = time.monotonic()
        if mode == "collect":  # the previous write path
            data = frame.select(*HOURLY_USAGE.schema.names).toArrow().cast(HOURLY_USAGE.schema)
            predicate = "recording_hour >= '2026-01-01-00' AND recording_hour <= '2026-01-02-23'"
            write_deltalake(table.delta, data, mode="overwrite", predicate=predicate, partition_by=["recording_hour"])
        else:
            replace_partitions(frame, table, partition_range("2026-01-01-00", "2026-01-02-23"))
        elapsed = time.monotonic() - started
        jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        print(
            f"mode={mode} rows={rows} wall={elapsed:.1f}s python_peak={peak_rss_mib('self'):.0f}MiB "
            f"jvm_peak={peak_rss_mib(jvm_pid):.0f}MiB"
        )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
