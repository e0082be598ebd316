"""The gold step: one Spark pass over a range of local days writes every readings-based gold table."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from pyspark.sql import SparkSession

from billing_assets.domain.keys import parse_recording_hour_key
from billing_assets.steps.invariants import count_each
from billing_assets.steps.recompute import StepResult, recompute, selected
from billing_assets.tables.delta_io import PinnedTable, read_table, retry_on_conflict, write_partitions
from billing_assets.tables.schemas import (
    ACTIVE_AGREEMENTS,
    AGREEMENT_DAYS,
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    DEDUPLICATED_RAW,
    HALF_HOURLY_CONSUMPTION,
    PRODUCT_DAILY_CONSUMPTION,
    UNMATCHED_READINGS,
    TableSpec,
)
from billing_assets.tables.selection import RunWindow, partition_range, partitions
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms import gold

#: The readings-based gold tables this step writes, each partitioned by a local day.
READINGS_GOLD = (
    HALF_HOURLY_CONSUMPTION,
    PRODUCT_DAILY_CONSUMPTION,
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    UNMATCHED_READINGS,
)


@dataclass(frozen=True)
class GoldReport:
    """Rows written per table, and the reconciliation figures of the range."""

    rows: dict[str, int]
    readings: int
    matched: int
    unmatched: int
    #: The deduplicated_raw version the readings were read at (checks compare against it).
    readings_version: int | None = None
    #: Days of the range that hold readings or gold rows; the others were not computed.
    days_with_data: int = 0


def build_consumption_gold(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> GoldReport:
    """Recompute the readings-based gold tables for the window's local days (from their recording hours)."""

    def step() -> GoldReport:
        targets = {spec: warehouse.open(spec) for spec in READINGS_GOLD}
        source = warehouse.open(DEDUPLICATED_RAW)
        busy = days_with_data(source, targets, window)
        if not busy:
            # Nothing to read and nothing to replace: no Spark job at all.
            return GoldReport({spec.name: 0 for spec in targets}, 0, 0, 0, source.delta.version())
        readings = read_table(spark, source, selected(DEDUPLICATED_RAW, window.hours))
        # Coverage only of the days with data: a start-up's range spans every day since the start.
        coverage_days = partitions(day.isoformat() for day in busy)
        coverage = read_table(spark, warehouse.open(AGREEMENT_DAYS), selected(AGREEMENT_DAYS, coverage_days))
        settled = gold.settle(readings, window.timezone).persist()
        matched, unmatched = gold.attribute(settled, coverage)
        matched, unmatched = matched.persist(), unmatched.persist()
        outputs = {
            HALF_HOURLY_CONSUMPTION: gold.half_hourly_consumption(settled),
            PRODUCT_DAILY_CONSUMPTION: gold.product_daily_consumption(matched),
            AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT: gold.avg_consumption_per_half_hour_by_product(matched),
            UNMATCHED_READINGS: gold.unmatched_readings(unmatched),
        }
        days_written = partition_range(busy[0].isoformat(), busy[-1].isoformat())
        try:
            rows = {}
            for spec, frame in outputs.items():
                rows[spec.name] = write_partitions(frame, targets[spec], days_written).rows
            counts = count_each(settled=settled, matched=matched, unmatched=unmatched)
            figures = counts["settled"], counts["matched"], counts["unmatched"]
            return GoldReport(rows, *figures, source.delta.version(), len(busy))
        finally:
            for frame in (settled, matched, unmatched):
                frame.unpersist()

    return retry_on_conflict(step)


def days_with_data(readings: PinnedTable, targets: Mapping[TableSpec, PinnedTable], window: RunWindow) -> list[date]:
    """The local days of the window with readings, or with gold rows to replace, from the Delta logs.

    A day with neither has nothing to compute and nothing to remove, whatever its coverage.
    """
    zone, days = ZoneInfo(window.timezone), set()
    for partition in readings.delta.partitions(file_pruning_predicate=selected(readings.spec, window.hours)):
        # A recording hour is a local clock hour: it lies inside the local day it starts in.
        days.add(parse_recording_hour_key(partition["recording_hour"]).astimezone(zone).date())
    for spec, table in targets.items():
        column = spec.partition_by
        days.update(
            date.fromisoformat(p[column])
            for p in table.delta.partitions(file_pruning_predicate=selected(spec, window.days))
        )
    return sorted(day for day in days if window.first_day <= day <= window.last_day)


def build_active_agreements(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> StepResult:
    """Recompute ``active_agreements`` for the window's local days."""
    return recompute(
        spark, warehouse, AGREEMENT_DAYS, window.days, gold.active_agreements, ACTIVE_AGREEMENTS, window.days
    )
