"""The gold reconciliations: half hours add up to hours, products plus unmatched to days."""

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from billing_assets.steps.invariants import CheckOutcome, compare_totals, exact_sum, read_at
from billing_assets.tables import schemas
from billing_assets.tables.schemas import DEDUPLICATED_RAW, HALF_HOURLY_CONSUMPTION, TableSpec
from billing_assets.tables.selection import RunWindow
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.clock import recording_hour_key


def half_hours_sum_to_hours(
    spark: SparkSession, warehouse: Warehouse, window: RunWindow, readings_version: int | None = None
) -> CheckOutcome:
    """The half-hourly totals of each recording hour add up to that hour's total of the deduplicated readings.

    ``hourly_usage`` is checked against the same readings, so this ties the gold table to it
    without depending on whether ``hourly_usage`` has caught up yet.
    """
    expected = (
        read_at(spark, warehouse, DEDUPLICATED_RAW, window.hours, readings_version)
        .groupBy("recording_hour")
        .agg(exact_sum("consumption", "consumption_expected"))
    )
    actual = (
        read_at(spark, warehouse, HALF_HOURLY_CONSUMPTION, window.days)
        .groupBy(recording_hour_key(F.col("interval_start"), window.timezone).alias("recording_hour"))
        .agg(exact_sum("consumption", "consumption_actual"))
    )
    return compare_totals(expected, actual, ["recording_hour"], ["consumption"], "hours")


def _daily_totals(
    spark: SparkSession, warehouse: Warehouse, spec: TableSpec, window: RunWindow, alias: str, *by: str
) -> DataFrame:
    """Exact consumption of ``spec`` per local day (column ``day``) and ``by``, as ``alias``."""
    column = spec.partition_by  # every gold table is partitioned by its local day
    return (
        read_at(spark, warehouse, spec, window.days)
        .groupBy(F.col(column).alias("day"), *by)
        .agg(exact_sum("consumption", alias))
    )


def products_plus_unmatched_sum_to_day(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> CheckOutcome:
    """Per local day, the product totals plus the unmatched readings equal the half-hourly total."""
    days = window
    expected = _daily_totals(spark, warehouse, HALF_HOURLY_CONSUMPTION, days, "consumption_expected")
    products = _daily_totals(spark, warehouse, schemas.PRODUCT_DAILY_CONSUMPTION, days, "products")
    unmatched = _daily_totals(spark, warehouse, schemas.UNMATCHED_READINGS, days, "unmatched")
    actual = products.join(unmatched, "day", "full_outer").select(
        "day",
        "products",
        "unmatched",
        (F.coalesce("products", F.lit(0)) + F.coalesce("unmatched", F.lit(0))).alias("consumption_actual"),
    )
    return compare_totals(expected, actual, ["day"], ["consumption"], "days")


def product_half_hours_sum_to_days(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> CheckOutcome:
    """Per local day and product, the half-hourly product totals add up to the daily product total."""
    days, product = window, "product_display_name"
    expected = _daily_totals(spark, warehouse, schemas.PRODUCT_DAILY_CONSUMPTION, days, "consumption_expected", product)
    actual = _daily_totals(
        spark, warehouse, schemas.AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT, days, "consumption_actual", product
    )
    return compare_totals(expected, actual, ["day", product], ["consumption"], "product_days")
