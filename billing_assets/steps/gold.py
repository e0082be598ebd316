"""The gold step: one Spark pass over a range of local days writes every readings-based gold table."""

from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps.recompute import StepResult, between, recompute
from billing_assets.tables.delta_io import read_table, retry_on_conflict, write_partitions
from billing_assets.tables.schemas import (
    ACTIVE_AGREEMENTS,
    AGREEMENT_DAYS,
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    DEDUPLICATED_RAW,
    HALF_HOURLY_CONSUMPTION,
    PRODUCT_DAILY_CONSUMPTION,
    UNMATCHED_READINGS,
)
from billing_assets.tables.selection import partition_range
from billing_assets.transforms import gold

#: The readings-based gold tables this step writes, with their (local day) partition column.
PARTITION_COLUMN = {
    HALF_HOURLY_CONSUMPTION: "settlement_date",
    PRODUCT_DAILY_CONSUMPTION: "date",
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT: "settlement_date",
    UNMATCHED_READINGS: "settlement_date",
}


@dataclass(frozen=True)
class GoldReport:
    """Rows written per table, and the reconciliation figures of the range."""

    rows: dict[str, int]
    readings: int
    matched: int
    unmatched: int
    #: The deduplicated_raw version the readings were read at (checks compare against it).
    readings_version: int | None = None


def build_consumption_gold(
    spark: SparkSession,
    warehouse: Warehouse,
    first_day: date,
    last_day: date,
    first_hour: str,
    last_hour: str,
    timezone: str,
) -> GoldReport:
    """Recompute the readings-based gold tables for local days ``[first_day, last_day]``.

    ``first_hour``/``last_hour`` are the UTC recording hours spanning exactly those days.
    """

    def step() -> GoldReport:
        targets = {spec: warehouse.open(spec) for spec in PARTITION_COLUMN}
        source = warehouse.open(DEDUPLICATED_RAW)
        readings = read_table(spark, source, between("recording_hour", first_hour, last_hour))
        days = between("date", first_day.isoformat(), last_day.isoformat())
        coverage = read_table(spark, warehouse.open(AGREEMENT_DAYS), days)
        settled = gold.settle(readings, timezone).persist()
        matched, unmatched = gold.attribute(settled, coverage)
        matched, unmatched = matched.persist(), unmatched.persist()
        outputs = {
            HALF_HOURLY_CONSUMPTION: gold.half_hourly_consumption(settled),
            PRODUCT_DAILY_CONSUMPTION: gold.product_daily_consumption(matched),
            AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT: gold.avg_consumption_per_half_hour_by_product(matched),
            UNMATCHED_READINGS: gold.unmatched_readings(unmatched),
        }
        days_written = partition_range(first_day.isoformat(), last_day.isoformat())
        try:
            rows = {}
            for spec, frame in outputs.items():
                rows[spec.name] = write_partitions(frame, targets[spec], days_written).rows
            return GoldReport(rows, settled.count(), matched.count(), unmatched.count(), source.delta.version())
        finally:
            for frame in (settled, matched, unmatched):
                frame.unpersist()

    return retry_on_conflict(step)


def build_active_agreements(spark: SparkSession, warehouse: Warehouse, first_day: date, last_day: date) -> StepResult:
    """Recompute ``active_agreements`` for local days ``[first_day, last_day]``."""
    return recompute(
        spark,
        warehouse,
        AGREEMENT_DAYS,
        between("date", first_day.isoformat(), last_day.isoformat()),
        gold.active_agreements,
        ACTIVE_AGREEMENTS,
        partition_range(first_day.isoformat(), last_day.isoformat()),
    )
