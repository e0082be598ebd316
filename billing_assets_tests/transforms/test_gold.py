"""The gold transforms as pure DataFrames: settlement periods across a clock change, and the totals."""

from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession

from billing_assets.transforms import gold


def readings(spark: SparkSession, *rows: tuple[str, str, float]) -> DataFrame:
    """Readings ``(meterpoint, UTC interval_start, kWh)``."""
    data = [(meter, datetime.fromisoformat(at).replace(tzinfo=UTC), kwh) for meter, at, kwh in rows]
    return spark.createDataFrame(data, "meterpoint_id string, interval_start timestamp, consumption double")


def test_settlement_periods_follow_local_time_on_the_spring_change(spark) -> None:
    settled = gold.settle(
        readings(
            spark,
            ("m1", "2026-03-29T00:45:00", 1.0),  # 00:45 GMT: period 2
            ("m1", "2026-03-29T01:15:00", 1.0),  # 02:15 BST: 01:00-02:00 local never happened, period 3
            ("m1", "2026-03-29T22:45:00", 1.0),  # 23:45 BST: the day's last period, 46
            ("m1", "2026-03-29T23:10:00", 1.0),  # 00:10 BST on the 30th: period 1 of the next day
        ),
        "Europe/London",
    ).collect()
    assert sorted((x["settlement_date"], x["settlement_period"]) for x in settled) == [
        (date(2026, 3, 29), 2),
        (date(2026, 3, 29), 3),
        (date(2026, 3, 29), 46),
        (date(2026, 3, 30), 1),
    ]


def test_half_hourly_totals_count_meterpoints_and_sum_every_reading(spark) -> None:
    settled = gold.settle(
        readings(
            spark,
            ("m1", "2026-03-10T08:00:00", 0.25),
            ("m1", "2026-03-10T08:20:00", 0.5),  # same half hour, same meterpoint
            ("m2", "2026-03-10T08:29:00", 1.0),
            ("m2", "2026-03-10T08:30:00", 2.0),  # the next half hour
        ),
        "Europe/London",
    )
    totals = {
        (x["interval_start"], x["settlement_period"]): (x["meterpoint_count"], x["consumption"])
        for x in gold.half_hourly_consumption(settled).collect()
    }
    assert totals == {
        (datetime(2026, 3, 10, 8, 0), 17): (2, 1.75),
        (datetime(2026, 3, 10, 8, 30), 18): (1, 2.0),
    }


def test_product_tables_average_per_meterpoint_and_sum_per_day(spark) -> None:
    matched = gold.settle(
        readings(spark, ("m1", "2026-03-10T08:00:00", 1.0), ("m2", "2026-03-10T08:10:00", 3.0)), "Europe/London"
    ).selectExpr("*", "'Standard' AS product_display_name")
    [half_hour] = gold.avg_consumption_per_half_hour_by_product(matched).collect()
    assert (half_hour["meterpoint_count"], half_hour["consumption"], half_hour["avg_consumption"]) == (2, 4.0, 2.0)
    [day] = gold.product_daily_consumption(matched).collect()
    assert (day["product_display_name"], day["date"], day["consumption"]) == ("Standard", date(2026, 3, 10), 4.0)
