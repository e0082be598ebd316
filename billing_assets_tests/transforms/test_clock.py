"""The local clock in Spark agrees with the pure key functions and with zoneinfo's wall clock."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from billing_assets.domain.keys import recording_hour_key as python_key
from billing_assets.transforms.clock import half_hour_start, hour_key_start, recording_hour_key

#: Zone -> a local day with a clock change in 2026 (or an ordinary day).
DAYS = {
    "Europe/London": datetime(2026, 10, 24, 22, tzinfo=UTC),
    "Asia/Kolkata": datetime(2026, 3, 31, 17, tzinfo=UTC),
    "Asia/Kathmandu": datetime(2026, 3, 31, 17, tzinfo=UTC),
    "America/St_Johns": datetime(2026, 11, 1, 0, tzinfo=UTC),
    "Australia/Adelaide": datetime(2026, 10, 3, 12, tzinfo=UTC),
    "Pacific/Chatham": datetime(2026, 4, 4, 9, tzinfo=UTC),
}


@pytest.mark.parametrize("zone", sorted(DAYS))
def test_spark_keys_and_half_hours_follow_the_local_clock(spark: SparkSession, zone: str) -> None:
    local = ZoneInfo(zone)
    instants = [DAYS[zone] + timedelta(minutes=7 * i) for i in range(27 * 60 // 7)]
    frame = spark.createDataFrame([(t,) for t in instants], "interval_start timestamp")
    rows = frame.select(
        "interval_start",
        recording_hour_key(F.col("interval_start"), zone).alias("key"),
        half_hour_start(F.col("interval_start"), zone).alias("half_hour"),
    ).collect()
    keys = spark.createDataFrame([(r["key"],) for r in rows], "key string")
    named = [r[0] for r in keys.select(hour_key_start(F.col("key"))).collect()]
    starts = dict(zip([r["key"] for r in rows], named, strict=True))
    for row in rows:
        instant = row["interval_start"].astimezone(UTC)
        assert row["key"] == python_key(instant, zone)
        hour_start = starts[row["key"]].astimezone(UTC)
        assert hour_start <= instant < hour_start + timedelta(hours=1)
        shown = instant.astimezone(local)
        wall = shown.replace(minute=shown.minute - shown.minute % 30, second=0).astimezone(UTC)
        # Chatham changes its clock at 02:45: the quarter hour after a change shows a half hour that
        # did not start on this side of it: it belongs to the half hour that began before the change.
        if timedelta(0) <= instant - wall < timedelta(minutes=30):
            assert row["half_hour"].astimezone(UTC) == wall, (instant, row["half_hour"])
            assert python_key(wall, zone) == row["key"]  # half hours nest in recording hours
