"""The late-data watermark and hour completeness (pure arithmetic, no Spark)."""

from datetime import datetime, timedelta

#: Readings may arrive up to 7 days after their interval (domain rule).
LATE_DATA_WINDOW = timedelta(days=7)
#: Meter, ingestion and trigger clocks drift at most 5 minutes from each other (domain rule).
CLOCK_DRIFT = timedelta(minutes=5)
HOUR = timedelta(hours=1)
#: How far apart two copies of one record may lie in ``interval_start`` and still be matched:
#: a re-send lands within one acceptance window of the first copy (7 days + 1 h + 5 min).
RESEND_REACH = LATE_DATA_WINDOW + HOUR + CLOCK_DRIFT


def acceptance_window(ingestion_hour: datetime) -> tuple[datetime, datetime]:
    """Inclusive bounds on ``interval_start`` for readings landed in ``ingestion_hour``.

    ``H - 7 days <= interval_start <= H + 1 hour + 5 minutes``: anything older is too late to
    bill, anything newer claims a time the meter cannot have reached yet, even with drift.
    """
    return ingestion_hour - LATE_DATA_WINDOW, ingestion_hour + HOUR + CLOCK_DRIFT


def watermark_reason(interval_start: datetime, ingestion_hour: datetime) -> str | None:
    """``None`` when the reading is inside the window, else ``too_late`` or ``from_future``."""
    lo, hi = acceptance_window(ingestion_hour)
    if interval_start < lo:
        return "too_late"
    if interval_start > hi:
        return "from_future"
    return None


def is_complete(ingestion_hour: datetime, now: datetime) -> bool:
    """An ingestion hour is complete once wall-clock time passes ``H + 1 h + 5 min``."""
    return now > ingestion_hour + HOUR + CLOCK_DRIFT


def latest_complete_hour(now: datetime) -> datetime:
    """The newest ingestion hour that ``is_complete`` at ``now`` (UTC, on the hour)."""
    hour = (now - HOUR - CLOCK_DRIFT).replace(minute=0, second=0, microsecond=0)
    return hour if is_complete(hour, now) else hour - HOUR
