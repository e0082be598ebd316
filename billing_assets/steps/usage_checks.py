"""The usage invariants: hourly totals equal their readings, running totals are month-to-date sums."""

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from billing_assets.steps.invariants import (
    TOLERANCE,
    CheckOutcome,
    compare_totals,
    differs,
    exact_sum,
    examples,
    read_at,
    tally,
)
from billing_assets.tables.schemas import CUMULATIVE_USAGE, DEDUPLICATED_RAW, HOURLY_USAGE
from billing_assets.tables.selection import RunWindow
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.usage import EXACT, billing_month


def hourly_matches_readings(
    spark: SparkSession, warehouse: Warehouse, window: RunWindow, readings_version: int | None = None
) -> CheckOutcome:
    """Per recording hour, ``hourly_usage`` holds the sum and count of the deduplicated readings."""
    hours = window.hours
    expected = (
        read_at(spark, warehouse, DEDUPLICATED_RAW, hours, readings_version)
        .groupBy("recording_hour")
        .agg(exact_sum("consumption", "consumption_expected"), F.count(F.lit(1)).alias("readings_expected"))
    )
    actual = (
        read_at(spark, warehouse, HOURLY_USAGE, hours)
        .groupBy("recording_hour")
        .agg(exact_sum("consumption", "consumption_actual"), F.sum("reading_count").alias("readings_actual"))
    )
    return compare_totals(expected, actual, ["recording_hour"], ["consumption", "readings"], "hours")


def cumulative_never_decreases(
    spark: SparkSession, warehouse: Warehouse, window: RunWindow, hourly_version: int | None = None
) -> CheckOutcome:
    """Within a billing month, a meterpoint's running total never goes down from one hour to the next.

    It reads only ``cumulative_usage``; ``hourly_version`` is accepted so every window check has one signature.
    """
    rows = read_at(spark, warehouse, CUMULATIVE_USAGE, window.months)
    order = Window.partitionBy("meterpoint_id", "billing_month").orderBy("usage_hour")
    with_previous = rows.withColumn("previous", F.lag("cumulative_consumption").over(order))
    drop = F.col("cumulative_consumption") < F.col("previous")
    checked, figures = tally(with_previous, decreasing=drop)
    failures = figures["decreasing"]
    drops = with_previous.filter(drop).select(
        "meterpoint_id", "billing_month", "usage_hour", "previous", "cumulative_consumption"
    )
    return CheckOutcome(
        failures == 0,
        {
            "rows_checked": checked,
            "decreasing_rows": failures,
            "decreases": examples(drops, "meterpoint_id", failures),
        },
    )


def cumulative_matches_hourly(
    spark: SparkSession, warehouse: Warehouse, window: RunWindow, hourly_version: int | None = None
) -> CheckOutcome:
    """Each running total equals the month-to-date sum of ``hourly_usage``, and no hourly row is left out."""
    hourly = (
        read_at(spark, warehouse, HOURLY_USAGE, window.hours, hourly_version)
        .withColumn("billing_month", billing_month("usage_hour", window.timezone))
        .select("meterpoint_id", "billing_month", "usage_hour", F.col("consumption").cast(EXACT).alias("hourly"))
    )
    keys = ["meterpoint_id", "billing_month", "usage_hour"]
    rows = read_at(spark, warehouse, CUMULATIVE_USAGE, window.months)
    order = (
        Window.partitionBy("meterpoint_id", "billing_month")
        .orderBy("usage_hour")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    # hourly_usage has one row per (meterpoint, hour), so the left join keeps one row per total.
    with_expected = rows.join(hourly, keys, "left").withColumn(
        "expected", F.sum(F.coalesce("hourly", F.lit(0).cast(EXACT))).over(order)
    )
    off = differs("expected", "cumulative_consumption")
    checked, figures = tally(with_expected, wrong=off)
    compared = with_expected.filter(off).select(
        *keys, F.col("expected").cast("double").alias("expected"), "cumulative_consumption"
    )
    missing = hourly.join(rows.select(*keys), keys, "left_anti")
    wrong, left_out = figures["wrong"], missing.count()
    return CheckOutcome(
        wrong == 0 and left_out == 0,
        {
            "rows_checked": checked,
            "rows_not_month_to_date_sum": wrong,
            "hourly_rows_missing": left_out,
            "mismatches": examples(compared, "meterpoint_id", wrong),
            "missing": examples(missing, "meterpoint_id", left_out),
            "tolerance_kwh": TOLERANCE,
        },
    )
