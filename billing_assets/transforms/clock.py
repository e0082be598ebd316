"""The local clock in Spark: recording hours and half hours of a reading, and instants of hour keys.

A zone's local hours start at one fixed minute past each UTC hour (``clock_phase``: 0 in
London, :30 in Kolkata, :15 in Kathmandu), and its half hours at that minute modulo 30, so
flooring on a shifted UTC grid is flooring on the local clock, with no time-zone lookup per row.
Spark's session time zone is UTC, so ``date_format`` writes UTC keys.
"""

from pyspark.sql import Column
from pyspark.sql import functions as F

from billing_assets.domain.keys import MINUTE_KEY_WIDTH, SPARK_MINUTE_KEY_PATTERN, spark_recording_hour_pattern
from billing_assets.domain.timestamps import clock_phase, half_hour_phase

HOUR_SECONDS = 3600
HALF_HOUR_SECONDS = 1800


def floor_on_grid(instant: Column, period: int, phase: int) -> Column:
    """``instant`` floored to the grid of ``period`` seconds that starts ``phase`` seconds past the UTC hour."""
    seconds = F.floor((F.unix_seconds(instant) - phase) / period) * period + phase
    return F.timestamp_seconds(seconds)


def recording_hour_start(instant: Column, timezone: str) -> Column:
    """The UTC start of the local clock hour holding ``instant``."""
    return floor_on_grid(instant, HOUR_SECONDS, clock_phase(timezone))


def recording_hour_key(instant: Column, timezone: str) -> Column:
    """The ``recording_hour`` key of ``instant`` (the Spark twin of ``keys.recording_hour_key``)."""
    return F.date_format(recording_hour_start(instant, timezone), spark_recording_hour_pattern(timezone))


def half_hour_start(instant: Column, timezone: str) -> Column:
    """The UTC start of the local clock half hour holding ``instant``."""
    return floor_on_grid(instant, HALF_HOUR_SECONDS, half_hour_phase(timezone))


def hour_key_start(key: Column) -> Column:
    """The UTC instant a ``recording_hour`` key names (``YYYY-MM-DD-HH`` or ``YYYY-MM-DD-HHMM``)."""
    return F.to_timestamp(F.rpad(key, MINUTE_KEY_WIDTH, "0"), SPARK_MINUTE_KEY_PATTERN)
