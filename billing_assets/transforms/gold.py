"""The analysts' gold tables, from deduplicated readings and agreement coverage.

A reading's half hour is its ``interval_start`` floored to the local clock's half hour (meter
clocks drift a few minutes, never across a half-hour boundary they did not cross; in Kathmandu
local half hours start at :15 and :45 UTC); its settlement date is that half hour's local date,
and its settlement period the half hour's number in the local day: 1..48, 46 on the spring
clock change, 50 on the autumn one.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from billing_assets.transforms.clock import HALF_HOUR_SECONDS, half_hour_start
from billing_assets.transforms.usage import EXACT


def settle(readings: DataFrame, timezone: str) -> DataFrame:
    """Add ``slot`` (UTC start of the local half hour), ``settlement_date`` and ``settlement_period``."""
    slot = half_hour_start(F.col("interval_start"), timezone)
    local_midnight = F.to_utc_timestamp(F.col("settlement_date").cast("timestamp"), timezone)
    return (
        readings.withColumn("slot", slot)
        .withColumn("settlement_date", F.to_date(F.from_utc_timestamp("slot", timezone)))
        .withColumn(
            "settlement_period",
            ((F.unix_seconds("slot") - F.unix_seconds(local_midnight)) / HALF_HOUR_SECONDS + 1).cast("int"),
        )
    )


def _totals() -> list[F.Column]:
    return [
        F.countDistinct("meterpoint_id").alias("meterpoint_count"),
        F.sum(F.col("consumption").cast(EXACT)).cast("double").alias("consumption"),
    ]


def half_hourly_consumption(settled: DataFrame) -> DataFrame:
    """Total consumption and meterpoints reporting, per half hour (every reading counts)."""
    slot = F.col("slot").alias("interval_start")
    return settled.groupBy(slot, "settlement_date", "settlement_period").agg(*_totals())


def attribute(settled: DataFrame, coverage: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split readings into (matched to a product, unmatched with a reason); each reading lands in one."""
    covering = coverage.filter("covers_readings").select(
        "meterpoint_id",
        F.col("date").alias("settlement_date"),
        "agreement_id",
        "product_display_name",
        "unmatched_reason",
    )
    joined = settled.join(covering, ["meterpoint_id", "settlement_date"], "left")
    matched = joined.filter(F.col("product_display_name").isNotNull()).drop("unmatched_reason")
    unmatched = joined.filter(F.col("product_display_name").isNull()).withColumn(
        "reason",
        F.when(F.col("agreement_id").isNull(), "no_agreement").otherwise(
            F.coalesce("unmatched_reason", F.lit("unknown_product"))
        ),
    )
    return matched, unmatched.drop("unmatched_reason")


def product_daily_consumption(matched: DataFrame) -> DataFrame:
    """Per product display name and local day: meterpoints with readings and their consumption."""
    return (
        matched.groupBy("product_display_name", "settlement_date")
        .agg(*_totals())
        .select("product_display_name", "meterpoint_count", "consumption", F.col("settlement_date").alias("date"))
    )


def avg_consumption_per_half_hour_by_product(matched: DataFrame) -> DataFrame:
    """Per half hour and product: meterpoints, total and average consumption per meterpoint."""
    slot = F.col("slot").alias("interval_start")
    totals = matched.groupBy(slot, "product_display_name", "settlement_date").agg(*_totals())
    return totals.withColumn("avg_consumption", F.col("consumption") / F.col("meterpoint_count"))


def unmatched_readings(unmatched: DataFrame) -> DataFrame:
    """Readings no agreement (with a known product) covers: counted, never lost."""
    return unmatched.select("record_id", "meterpoint_id", "interval_start", "consumption", "reason", "settlement_date")


def active_agreements(coverage: DataFrame) -> DataFrame:
    """Agreements active on each day, with their product's display name."""
    return coverage.filter("is_active").select(
        "agreement_id",
        "meterpoint_id",
        "product_display_name",
        "product_is_variable",
        F.col("date").alias("as_of_date"),
    )
