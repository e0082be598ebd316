"""Hourly usage and the monthly running total, as pure DataFrame transformations.

Sums run in fixed point (``decimal(38, 9)``): floating-point addition depends on the order
Spark happens to add rows in, and a billing total must not change between two runs over
the same readings. Results are stored as doubles, converted once from the exact sum.
"""

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from billing_assets.transforms.clock import hour_key_start

EXACT = "decimal(38,9)"


def hourly_usage(readings: DataFrame) -> DataFrame:
    """Per meterpoint per recording hour: total consumption and number of readings.

    ``usage_hour`` is the UTC instant the local hour starts (23:00 in Kolkata is 17:30 UTC).
    """
    return (
        readings.groupBy("meterpoint_id", "recording_hour")
        .agg(
            F.sum(F.col("consumption").cast(EXACT)).alias("_exact"),
            F.count(F.lit(1)).alias("reading_count"),
        )
        .select(
            "meterpoint_id",
            hour_key_start(F.col("recording_hour")).alias("usage_hour"),
            F.col("_exact").cast("double").alias("consumption"),
            "reading_count",
            "recording_hour",
        )
    )


def billing_month(usage_hour: str, timezone: str) -> F.Column:
    """The ``YYYY-MM`` calendar month, in the billing time zone, of a local hour's UTC start.

    Local hours never straddle local midnight, so the month of an hour's start is its month.
    """
    return F.date_format(F.from_utc_timestamp(F.col(usage_hour), timezone), "yyyy-MM")


def cumulative_usage(hourly: DataFrame, timezone: str) -> DataFrame:
    """Running consumption total per meterpoint since the start of each billing month.

    One row per meterpoint and hour, from the meterpoint's first reading in the month to the
    latest hour of the month that has any reading: hours without readings carry the total
    forward, so "usage so far this month" can be read at any hour.
    """
    months = hourly.withColumn("billing_month", billing_month("usage_hour", timezone))
    last_hour = months.groupBy("billing_month").agg(F.max("usage_hour").alias("_last"))
    first_hour = months.groupBy("billing_month", "meterpoint_id").agg(F.min("usage_hour").alias("_first"))
    grid = first_hour.join(last_hour, "billing_month").select(
        "billing_month",
        "meterpoint_id",
        F.explode(F.sequence("_first", "_last", F.expr("INTERVAL 1 HOUR"))).alias("usage_hour"),
    )
    filled = grid.join(
        months.select("billing_month", "meterpoint_id", "usage_hour", F.col("consumption").cast(EXACT).alias("_c")),
        ["billing_month", "meterpoint_id", "usage_hour"],
        "left",
    ).withColumn("_x", F.coalesce("_c", F.lit(0).cast(EXACT)))
    running = (
        Window.partitionBy("meterpoint_id", "billing_month")
        .orderBy("usage_hour")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return filled.select(
        "meterpoint_id",
        "usage_hour",
        F.col("_x").cast("double").alias("consumption"),
        F.sum("_x").over(running).cast("double").alias("cumulative_consumption"),
        "billing_month",
    )
