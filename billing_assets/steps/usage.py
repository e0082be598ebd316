"""The usage steps: hourly totals and monthly running totals, each an idempotent range replace."""

from pyspark.sql import SparkSession

from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps.recompute import StepResult, between, recompute
from billing_assets.tables.schemas import CUMULATIVE_USAGE, DEDUPLICATED_RAW, HOURLY_USAGE
from billing_assets.tables.selection import partition_range
from billing_assets.transforms.usage import cumulative_usage, hourly_usage


def build_hourly_usage(spark: SparkSession, warehouse: Warehouse, first_hour: str, last_hour: str) -> StepResult:
    """Recompute ``hourly_usage`` for the UTC recording hours ``[first_hour, last_hour]``."""
    return recompute(
        spark,
        warehouse,
        DEDUPLICATED_RAW,
        between("recording_hour", first_hour, last_hour),
        hourly_usage,
        HOURLY_USAGE,
        partition_range(first_hour, last_hour),
    )


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
    return recompute(
        spark,
        warehouse,
        HOURLY_USAGE,
        between("recording_hour", first_hour, last_hour),
        lambda hourly: cumulative_usage(hourly, timezone),
        CUMULATIVE_USAGE,
        partition_range(first_month, last_month),
    )
