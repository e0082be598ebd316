"""Loading the source database: daily snapshots, type-2 history, and agreement coverage by day."""

from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from billing_assets.source.sqlite import read_source
from billing_assets.steps.recompute import StepResult, recompute, replace
from billing_assets.tables.delta_io import PinnedTable, read_table, retry_on_conflict, write_partitions
from billing_assets.tables.schemas import AGREEMENT, AGREEMENT_DAYS, DIMENSIONS, PRODUCT, TableSpec
from billing_assets.tables.selection import RunWindow, partition_range, partitions
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

    rows, histories, before = {}, {}, {}
    for dim in DIMENSIONS:
        snapshots = read_table(spark, warehouse.open(dim.snapshots))
        history = histories[dim.source_table] = scd2_history(snapshots, dim).persist()
        # What the coverage was computed from until now: the days it changes are the ones to redo.
        before[dim.source_table] = read_table(spark, warehouse.open(dim.history)).filter("is_current")
    current = {name: history.filter("is_current") for name, history in histories.items()}
    coverage_table = warehouse.open(AGREEMENT_DAYS)
    days = _days_to_recompute(
        coverage_table,
        (before[AGREEMENT.source_table], current[AGREEMENT.source_table]),
        (before[PRODUCT.source_table], current[PRODUCT.source_table]),
        first_day,
        last_day,
    )
    changed_days: list[str] = []
    if days is not None:
        coverage = agreement_days(current[AGREEMENT.source_table], current[PRODUCT.source_table], *days).persist()
        changed_days = retry_on_conflict(lambda: _replace_changed_days(spark, warehouse, coverage, days))
        coverage.unpersist()
    # The histories are written after the coverage: a load stopped between the two leaves the old
    # histories, so the next load finds the same changes again and redoes their days.
    for dim in DIMENSIONS:
        rows[dim.history.name] = replace(warehouse, dim.history, histories[dim.source_table], None).rows
    problems = source_problems(current["agreement"], current["product"], current["meterpoint"])
    for history in histories.values():
        history.unpersist()
    return DimensionReport(snapshot_taken=taken, rows=rows, changed_days=changed_days, problems=problems)


def _stored_days(table: PinnedTable) -> tuple[date, date] | None:
    """The first and last day the coverage table holds, from its Delta log (no Spark job)."""
    days = [date.fromisoformat(str(part["date"])) for part in table.delta.partitions()]
    return (min(days), max(days)) if days else None


def _days_to_recompute(
    coverage_table: PinnedTable,
    agreements: tuple[DataFrame, DataFrame],
    products: tuple[DataFrame, DataFrame],
    first_day: date,
    last_day: date,
) -> tuple[date, date] | None:
    """The days whose coverage may differ from the table's: new days, and the spans of what the source changed.

    Coverage of a day is a function of the current agreements and products alone, so a day can
    only change when it is new, or lies in the span (before or after the change) of an agreement
    whose current version changed, or whose product's did. ``None``: no day can have changed.
    """
    stored = _stored_days(coverage_table)
    if stored is None or stored[0] != first_day or stored[1] > last_day:
        return first_day, last_day  # a first load, or another start date: every day
    (old_agreements, new_agreements), (old_products, new_products) = agreements, products
    # Versions compared whole (every column, by name): a changed field or validity is a change.
    old_agreements = old_agreements.select(*new_agreements.columns)
    changed = old_agreements.exceptAll(new_agreements).unionByName(new_agreements.exceptAll(old_agreements))
    product_versions = ["product_id", "row_hash"]
    old_products, new_products = old_products.select(*product_versions), new_products.select(*product_versions)
    changed_products = old_products.exceptAll(new_products).unionByName(new_products.exceptAll(old_products))
    of_changed_products = old_agreements.unionByName(new_agreements).join(
        changed_products.select("product_id").distinct(), "product_id", "left_semi"
    )
    spans = changed.unionByName(of_changed_products).select(
        F.greatest("agreement_valid_from", F.lit(first_day)).alias("start"),
        F.coalesce(F.date_sub("agreement_valid_to", 1), F.lit(last_day)).alias("end"),
    )
    found = spans.agg(F.min("start").alias("start"), F.max("end").alias("end")).first()
    start, end = found["start"], found["end"]
    if stored[1] < last_day:  # the days since the last load
        start, end = min(start or last_day, stored[1] + timedelta(days=1)), last_day
    if start is None or start > min(end, last_day):
        return None
    return start, min(end, last_day)


def _replace_changed_days(
    spark: SparkSession, warehouse: Warehouse, coverage: DataFrame, days: tuple[date, date]
) -> list[str]:
    """Rewrite the days of ``days`` whose coverage differs from the table's (by row count and content hash)."""
    coverage_table = warehouse.open(AGREEMENT_DAYS)
    window = partition_range(days[0].isoformat(), days[1].isoformat())
    existing = read_table(spark, coverage_table, window.filters("date"))
    new_fp, old_fp = _day_fingerprints(coverage).alias("n"), _day_fingerprints(existing).alias("o")
    # One row per day, so the driver takes them all.
    found = (
        new_fp.join(old_fp, F.col("n.date") == F.col("o.date"), "full_outer")
        .select(
            F.coalesce("n.date", "o.date").alias("date"),
            F.expr("n.date IS NULL OR o.date IS NULL OR n.n != o.n OR n.h != o.h").alias("changed"),
        )
        .filter("changed")
        .collect()
    )
    changed_days = sorted(row["date"].isoformat() for row in found)
    if changed_days:
        rewritten = coverage.filter(F.col("date").isin([date.fromisoformat(d) for d in changed_days]))
        write_partitions(rewritten, coverage_table, partitions(changed_days))
    return changed_days


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
