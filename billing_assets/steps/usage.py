"""The usage steps: hourly totals and monthly running totals, each an idempotent range replace."""

from dataclasses import dataclass

from pyspark.sql import SparkSession

from billing_assets.resources.warehouse import Warehouse
from billing_assets.tables.delta_io import range_predicate, read_table, replace_partitions, retry_on_conflict
from billing_assets.tables.schemas import CUMULATIVE_USAGE, DEDUPLICATED_RAW, HOURLY_USAGE
from billing_assets.transforms.usage import cumulative_usage, hourly_usage


@dataclass(frozen=True)
class StepResult:
    """Rows written and the Delta version committed."""

    rows: int
    version: int


def build_hourly_usage(spark: SparkSession, warehouse: Warehouse, first_hour: str, last_hour: str) -> StepResult:
    """Recompute ``hourly_usage`` for the UTC recording hours ``[first_hour, last_hour]``."""
    options = warehouse.storage_options()

    def step() -> StepResult:
        readings = read_table(
            spark,
            warehouse.table_uri(DEDUPLICATED_RAW),
            DEDUPLICATED_RAW,
            [("recording_hour", ">=", first_hour), ("recording_hour", "<=", last_hour)],
            options,
        )
        usage = hourly_usage(readings).persist()
        try:
            rows = usage.count()
            version = replace_partitions(
                usage, warehouse.table_uri(HOURLY_USAGE), HOURLY_USAGE,
                range_predicate("recording_hour", first_hour, last_hour), options,
            )
        finally:
            usage.unpersist()
        return StepResult(rows, version)

    return retry_on_conflict(step)


def build_cumulative_usage(
    spark: SparkSession,
    warehouse: Warehouse,
    first_hour: str,
    last_hour: str,
    first_month: str,
    last_month: str,
    timezone: str,
) -> StepResult:
    """Recompute ``cumulative_usage`` for billing months ``[first_month, last_month]``.

    ``first_hour``/``last_hour`` are the UTC hour keys spanning exactly those local months.
    """
    options = warehouse.storage_options()

    def step() -> StepResult:
        hourly = read_table(
            spark,
            warehouse.table_uri(HOURLY_USAGE),
            HOURLY_USAGE,
            [("recording_hour", ">=", first_hour), ("recording_hour", "<=", last_hour)],
            options,
        )
        totals = cumulative_usage(hourly, timezone).persist()
        try:
            rows = totals.count()
            version = replace_partitions(
                totals, warehouse.table_uri(CUMULATIVE_USAGE), CUMULATIVE_USAGE,
                range_predicate("billing_month", first_month, last_month), options,
            )
        finally:
            totals.unpersist()
        return StepResult(rows, version)

    return retry_on_conflict(step)
