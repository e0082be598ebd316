"""The usage steps: hourly totals and monthly running totals, each an idempotent range replace."""

from pyspark.sql import SparkSession

from billing_assets.steps.recompute import StepResult, recompute
from billing_assets.tables.schemas import CUMULATIVE_USAGE, DEDUPLICATED_RAW, HOURLY_USAGE
from billing_assets.tables.selection import RunWindow
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.usage import cumulative_usage, hourly_usage


def build_hourly_usage(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> StepResult:
    """Recompute ``hourly_usage`` for the window's UTC recording hours."""
    return recompute(spark, warehouse, DEDUPLICATED_RAW, window.hours, hourly_usage, HOURLY_USAGE, window.hours)


def build_cumulative_usage(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> StepResult:
    """Recompute ``cumulative_usage`` for the window's billing months (its hours span exactly those months)."""
    return recompute(
        spark,
        warehouse,
        HOURLY_USAGE,
        window.hours,
        lambda hourly: cumulative_usage(hourly, window.timezone),
        CUMULATIVE_USAGE,
        window.months,
    )
