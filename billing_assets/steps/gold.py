"""The gold step: one Spark pass over a range of local days writes every readings-based gold table."""

from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps.recompute import StepResult, between, recompute
from billing_assets.tables.delta_io import range_predicate, read_table, replace_partitions, retry_on_conflict
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
from billing_assets.transforms import gold


@dataclass(frozen=True)
class GoldReport:
    """Rows written per table, and the reconciliation figures of the range."""

    rows: dict[str, int]
    readings: int
    matched: int
    unmatched: int


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
    options = warehouse.storage_options()

    def step() -> GoldReport:
        readings = read_table(
            spark,
            warehouse.table_uri(DEDUPLICATED_RAW),
            DEDUPLICATED_RAW,
            between("recording_hour", first_hour, last_hour),
            options,
        )
        coverage = read_table(
            spark,
            warehouse.table_uri(AGREEMENT_DAYS),
            AGREEMENT_DAYS,
            between("date", first_day.isoformat(), last_day.isoformat()),
            options,
        )
        settled = gold.settle(readings, timezone).persist()
        matched, unmatched = gold.attribute(settled, coverage)
        matched, unmatched = matched.persist(), unmatched.persist()
        outputs: list[tuple[TableSpec, object, str]] = [
            (HALF_HOURLY_CONSUMPTION, gold.half_hourly_consumption(settled), "settlement_date"),
            (PRODUCT_DAILY_CONSUMPTION, gold.product_daily_consumption(matched), "date"),
            (
                AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
                gold.avg_consumption_per_half_hour_by_product(matched),
                "settlement_date",
            ),
            (UNMATCHED_READINGS, gold.unmatched_readings(unmatched), "settlement_date"),
        ]
        try:
            rows = {}
            for spec, frame, column in outputs:
                frame = frame.persist()
                rows[spec.name] = frame.count()
                replace_partitions(
                    frame,
                    warehouse.table_uri(spec),
                    spec,
                    range_predicate(column, first_day.isoformat(), last_day.isoformat()),
                    options,
                )
                frame.unpersist()
            return GoldReport(rows, settled.count(), matched.count(), unmatched.count())
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
        range_predicate("as_of_date", first_day.isoformat(), last_day.isoformat()),
    )
