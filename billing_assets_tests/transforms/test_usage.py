"""Billing-month arithmetic on real Spark: months are local calendar months."""

from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession

from billing_assets.partitions import billing_months, hour_range, month_range
from billing_assets.transforms.usage import cumulative_usage, hourly_usage


def hourly_frame(spark: SparkSession, rows: list[tuple[str, str, float]]):
    readings = spark.createDataFrame(
        [
            (
                mp,
                datetime.fromisoformat(hour).replace(tzinfo=UTC),
                x,
                datetime.fromisoformat(hour).strftime("%Y-%m-%d-%H"),
            )
            for mp, hour, x in rows
        ],
        "meterpoint_id string, interval_start timestamp, consumption double, recording_hour string",
    )
    return hourly_usage(readings)


def totals(spark: SparkSession, rows, timezone: str = "Europe/London") -> dict[str, tuple[str, float]]:
    out = cumulative_usage(hourly_frame(spark, rows), timezone).collect()
    return {
        r["usage_hour"].astimezone(UTC).strftime("%Y-%m-%dT%H"): (r["billing_month"], r["cumulative_consumption"])
        for r in out
    }


@pytest.mark.parametrize(
    ("last_hour_of_month", "first_hour_of_next", "months"),
    [
        # London is on summer time (UTC+1) on 30 September: October starts at 23:00 UTC.
        ("2026-09-30T22:00", "2026-09-30T23:00", ("2026-09", "2026-10")),
        # ... and on winter time (UTC+0) at the end of February: March starts at midnight UTC.
        ("2026-02-28T23:00", "2026-03-01T00:00", ("2026-02", "2026-03")),
        # March ends on summer time (the clocks went forward on 29 March): April starts 23:00 UTC.
        ("2026-03-31T22:00", "2026-03-31T23:00", ("2026-03", "2026-04")),
        # October ends on winter time again (clocks went back on 25 October).
        ("2026-10-31T23:00", "2026-11-01T00:00", ("2026-10", "2026-11")),
    ],
)
def test_running_total_resets_at_the_local_month_boundary(spark, last_hour_of_month, first_hour_of_next, months):
    result = totals(spark, [("m1", last_hour_of_month, 1.0), ("m1", first_hour_of_next, 2.0)])
    assert result[last_hour_of_month[:13]] == (months[0], 1.0)
    assert result[first_hour_of_next[:13]] == (months[1], 2.0)


def test_running_total_accumulates_within_a_month_and_carries_gaps(spark):
    hourly = hourly_frame(
        spark,
        [
            ("m1", "2026-10-24T23:00", 0.5),
            ("m1", "2026-10-25T01:00", 0.25),
            ("m1", "2026-10-25T01:00", 0.25),
            ("m2", "2026-10-25T00:00", 1.0),
        ],
    )
    rows = sorted(
        cumulative_usage(hourly, "Europe/London").collect(), key=lambda r: (r["meterpoint_id"], r["usage_hour"])
    )
    assert [
        (r["meterpoint_id"], r["usage_hour"].astimezone(UTC).hour, r["consumption"], r["cumulative_consumption"])
        for r in rows
    ] == [
        ("m1", 23, 0.5, 0.5),
        ("m1", 0, 0.0, 0.5),
        ("m1", 1, 0.5, 1.0),  # the 00:00 gap carries the total
        ("m2", 0, 1.0, 1.0),
        ("m2", 1, 0.0, 1.0),  # every meter runs to the month's latest hour
    ]


def test_fixed_point_sums_do_not_depend_on_addition_order(spark):
    # 0.1 + 0.2 + 0.3 in doubles depends on the order; the exact sum does not.
    rows = [("m1", "2026-01-15T08:00", x) for x in (0.1, 0.2, 0.3)]
    forward = hourly_frame(spark, rows).collect()[0]["consumption"]
    backward = hourly_frame(spark, list(reversed(rows))).collect()[0]["consumption"]
    assert forward == backward == 0.6


@pytest.mark.parametrize(
    ("month", "first_hour", "last_hour"),
    [("2026-10", "2026-09-30-23", "2026-10-31-23"), ("2026-03", "2026-03-01-00", "2026-03-31-22")],
)
def test_a_billing_month_partition_covers_exactly_its_local_month(month, first_hour, last_hour):
    window = billing_months.time_window_for_partition_key(month)
    assert hour_range(window) == (first_hour, last_hour)
    assert month_range(window) == (month, month)
