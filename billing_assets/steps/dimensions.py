"""Loading the source database: daily snapshots, type-2 history, and agreement coverage by day."""

from dataclasses import dataclass
from datetime import date

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from billing_assets.source.sqlite import read_source
from billing_assets.steps.recompute import StepResult, recompute, replace
from billing_assets.tables.delta_io import read_table, retry_on_conflict, write_partitions
from billing_assets.tables.schemas import AGREEMENT, AGREEMENT_DAYS, DIMENSIONS, PRODUCT, TableSpec
from billing_assets.tables.selection import RunWindow, partitions
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.dimensions import agreement_days, scd2_history, source_problems


@dataclass
class DimensionReport:
    """What one load did."""

    snapshot_taken: bool
    rows: dict[str, int]
    #: Local days whose agreement coverage changed (and were rewritten).
    changed_days: list[str]
    #: Agreement ids behind each kind of source problem.
    problems: dict[str, list[int]]


def _has_snapshot(warehouse: Warehouse, spec: TableSpec, day: date) -> bool:
    # Only look: opening a table creates it, and nothing may be written before the source was read.
    if not DeltaTable.is_deltatable(warehouse.uri(spec), storage_options=warehouse.storage.delta_options()):
        return False
    table = warehouse.open(spec)
    return bool(table.delta.file_uris(partition_filters=[("snapshot_date", "=", day.isoformat())]))


def _day_fingerprints(days: DataFrame) -> DataFrame:
    columns = [c for c in AGREEMENT_DAYS.schema.names if c != "date"]
    return days.groupBy("date").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.xxhash64(*columns).cast("decimal(38,0)")).alias("h")
    )


def load_dimensions(
    spark: SparkSession, warehouse: Warehouse, source_path: str, load_day: date, first_day: date, last_day: date
) -> DimensionReport:
    """Snapshot the source for ``load_day`` (once), rebuild history, refresh coverage of changed days.

    The source keeps no history, so a day's snapshot is taken the first time that day is
    loaded and kept afterwards: re-running a day never rewrites what was known that day.
    """
    taken = not any(_has_snapshot(warehouse, dim.snapshots, load_day) for dim in DIMENSIONS)
    if taken:
        tables = read_source(source_path)  # reads and validates everything before any write
        for dim in DIMENSIONS:
            snapshot = tables[dim.source_table].append_column(
                "snapshot_date", pa.array([load_day] * tables[dim.source_table].num_rows, pa.date32())
            )
            frame = spark.createDataFrame(snapshot)
            replace(warehouse, dim.snapshots, frame, partitions([load_day.isoformat()]))

    rows, histories = {}, {}
    for dim in DIMENSIONS:
        snapshots = read_table(spark, warehouse.open(dim.snapshots))
        history = histories[dim.source_table] = scd2_history(snapshots, dim).persist()
        rows[dim.history.name] = replace(warehouse, dim.history, history, None).rows
    current = {name: history.filter("is_current") for name, history in histories.items()}
    problems = source_problems(current["agreement"], current["product"], current["meterpoint"])

    coverage = agreement_days(current[AGREEMENT.source_table], current[PRODUCT.source_table], first_day, last_day)
    coverage = coverage.persist()
    changed_days, rows[AGREEMENT_DAYS.name] = retry_on_conflict(
        lambda: _replace_changed_days(spark, warehouse, coverage)
    )
    coverage.unpersist()
    for history in histories.values():
        history.unpersist()
    return DimensionReport(snapshot_taken=taken, rows=rows, changed_days=changed_days, problems=problems)


def _replace_changed_days(spark: SparkSession, warehouse: Warehouse, coverage: DataFrame) -> tuple[list[str], int]:
    """Rewrite the days whose coverage differs from the table's (by row count and content hash).

    Returns those days and the coverage's row count.
    """
    coverage_table = warehouse.open(AGREEMENT_DAYS)
    existing = read_table(spark, coverage_table)
    new_fp, old_fp = _day_fingerprints(coverage).alias("n"), _day_fingerprints(existing).alias("o")
    # One row per day, so the driver takes them all: the changed days and the row total in one job.
    days = (
        new_fp.join(old_fp, F.col("n.date") == F.col("o.date"), "full_outer")
        .select(
            F.coalesce("n.date", "o.date").alias("date"),
            F.coalesce("n.n", F.lit(0)).alias("rows"),
            F.expr("n.date IS NULL OR o.date IS NULL OR n.n != o.n OR n.h != o.h").alias("changed"),
        )
        .collect()
    )
    changed_days = sorted(row["date"].isoformat() for row in days if row["changed"])
    if changed_days:
        rewritten = coverage.filter(F.col("date").isin([date.fromisoformat(d) for d in changed_days]))
        write_partitions(rewritten, coverage_table, partitions(changed_days))
    return changed_days, sum(row["rows"] for row in days)


def rebuild_agreement_days(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> StepResult:
    """Recompute coverage for the window's local days from the current dimensions."""
    first_day, last_day = window.first_day, window.last_day
    products = read_table(spark, warehouse.open(PRODUCT.history))
    return recompute(
        spark,
        warehouse,
        AGREEMENT.history,
        None,
        lambda agreements: agreement_days(
            agreements.filter("is_current"), products.filter("is_current"), first_day, last_day
        ),
        AGREEMENT_DAYS,
        window.days,
    )
