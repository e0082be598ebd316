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


#: The running-total invariants ``cumulative_invariants`` settles together, by check name.
NEVER_DECREASES, MONTH_TO_DATE_SUM = "never_decreases_within_month", "equals_month_to_date_hourly_sum"


def cumulative_invariants(
    spark: SparkSession, warehouse: Warehouse, window: RunWindow, hourly_version: int | None = None
) -> dict[str, CheckOutcome]:
    """Both running-total invariants of the run's months, from one Spark job over them.

    ``never_decreases_within_month``: a meterpoint's running total never goes down from one hour
    to the next. ``equals_month_to_date_hourly_sum``: each running total equals the month-to-date
    sum of ``hourly_usage`` (read at ``hourly_version``), and no hourly row is left out. One pass
    over the month, not one per figure: at the month's end each pass reads a month of rows.
    """
    keys = ["meterpoint_id", "billing_month", "usage_hour"]
    hourly = (
        read_at(spark, warehouse, HOURLY_USAGE, window.hours, hourly_version)
        .withColumn("billing_month", billing_month("usage_hour", window.timezone))
        .select(*keys, F.col("consumption").cast(EXACT).alias("hourly"))
    )
    stored = read_at(spark, warehouse, CUMULATIVE_USAGE, window.months).select(
        *keys, "cumulative_consumption", F.lit(True).alias("_stored")
    )
    # hourly_usage has one row per (meterpoint, hour), so the join keeps one row per total, plus
    # one row per hourly row that has no total (left out). The sums and the previous total run
    # over the stored totals only, as a reader of the table sees them.
    month = Window.partitionBy("meterpoint_id", "billing_month").orderBy("usage_hour")
    so_far = month.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    before = month.rowsBetween(Window.unboundedPreceding, -1)
    is_stored = F.col("_stored").isNotNull()
    rows = (
        stored.join(hourly, keys, "full_outer")
        .withColumn("expected", F.sum(F.when(is_stored, F.coalesce("hourly", F.lit(0).cast(EXACT)))).over(so_far))
        .withColumn("previous", F.last("cumulative_consumption", ignorenulls=True).over(before))
    )
    drop = is_stored & (F.col("cumulative_consumption") < F.col("previous"))
    off = is_stored & differs("expected", "cumulative_consumption")
    _, figures = tally(rows, checked=is_stored, decreasing=drop, wrong=off, missing=~is_stored)
    checked, decreasing, wrong, left_out = (figures[name] for name in ("checked", "decreasing", "wrong", "missing"))
    drops = rows.filter(drop).select(*keys, "previous", "cumulative_consumption")
    compared = rows.filter(off).select(
        *keys, F.col("expected").cast("double").alias("expected"), "cumulative_consumption"
    )
    missing = rows.filter(~is_stored).select(*keys)
    return {
        NEVER_DECREASES: CheckOutcome(
            decreasing == 0,
            {
                "rows_checked": checked,
                "decreasing_rows": decreasing,
                "decreases": examples(drops, "meterpoint_id", decreasing),
            },
        ),
        MONTH_TO_DATE_SUM: CheckOutcome(
            wrong == 0 and left_out == 0,
            {
                "rows_checked": checked,
                "rows_not_month_to_date_sum": wrong,
                "hourly_rows_missing": left_out,
                "mismatches": examples(compared, "meterpoint_id", wrong),
                "missing": examples(missing, "meterpoint_id", left_out),
                "tolerance_kwh": TOLERANCE,
            },
        ),
    }
