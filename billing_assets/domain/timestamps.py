"""Timestamp rules of the landing contract: interval starts, local clock hours, local time to UTC.

The keys of hours, days and months, and their conversions, are in ``keys``.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: The years whose UTC offsets decide a zone's clock phase: data older than this is not billed here.
_PHASE_YEARS = (2000, 2100)
#: A timestamp names a time of day: a date alone would silently mean local midnight.
_HAS_TIME = re.compile(r"[0-9][Tt ][0-9]")


class TimestampError(ValueError):
    """A reading's ``interval_start`` cannot be turned into one UTC instant."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class UnsupportedTimeZone(ValueError):
    """A zone whose local clock hours are not all one hour of real time long."""


def _clock_phase_computed(timezone: str) -> int:
    """Seconds past each UTC hour at which the zone's local clock hours start (0 in whole-hour zones).

    Kolkata (+05:30) gives 1800, Kathmandu (+05:45) and Chatham (+12:45/+13:45) 900. A zone
    whose offsets differ by a part of an hour (Lord Howe's 30-minute summer time) has no single
    phase: some of its local hours last 30 or 90 minutes, which hourly partitions cannot hold.
    """
    zone = ZoneInfo(timezone)
    instant, end = datetime(_PHASE_YEARS[0], 1, 1, tzinfo=UTC), datetime(_PHASE_YEARS[1], 1, 1, tzinfo=UTC)
    offsets = set()
    # Weekly samples see every offset a zone keeps for more than a week (all of them in the tz database).
    while instant < end:
        offsets.add(int(instant.astimezone(zone).utcoffset().total_seconds()))
        instant += timedelta(days=7)
    phases = {-offset % 3600 for offset in offsets}
    if len(phases) != 1 or any(offset % 60 for offset in offsets):
        shown = ", ".join(_offset_text(o) for o in sorted(offsets))
        raise UnsupportedTimeZone(
            f"BILLING_TIMEZONE={timezone} is not supported: its UTC offsets ({shown}) differ by part of an hour, "
            "so some of its local hours are not one hour long"
        )
    return phases.pop()


#: Computed once per zone. A plain dict, not ``functools.lru_cache``: executors get this module
#: pickled by value on a cluster or Spark Connect, and an lru_cache wrapper is pickled by name.
_CLOCK_PHASE_KNOWN: dict = {}


def clock_phase(timezone: str) -> int:
    """``_clock_phase_computed``, once per zone."""
    if timezone not in _CLOCK_PHASE_KNOWN:
        _CLOCK_PHASE_KNOWN[timezone] = _clock_phase_computed(timezone)
    return _CLOCK_PHASE_KNOWN[timezone]


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def recording_hour_start(instant: datetime, timezone: str) -> datetime:
    """The UTC start of the local clock hour holding ``instant`` (a reading belongs to the hour of its start)."""
    phase = timedelta(seconds=clock_phase(timezone))
    utc = instant.astimezone(UTC)
    try:
        return (utc - phase).replace(minute=0, second=0, microsecond=0) + phase
    except OverflowError:
        # The first minutes of year 1: no such reading is inside any watermark (it is quarantined
        # as too late), but parsing must not fail on it, so it gets its UTC hour.
        return utc.replace(minute=0, second=0, microsecond=0)


def half_hour_phase(timezone: str) -> int:
    """Seconds past each UTC half hour at which the zone's local half hours start."""
    return clock_phase(timezone) % 1800


def parse_naive_or_aware(value: object) -> datetime:
    """Parse an ISO-8601 string; the result is naive when the text carries no offset."""
    if not isinstance(value, str) or not value.strip():
        raise TimestampError("invalid_timestamp", f"interval_start is not a timestamp string: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise TimestampError("invalid_timestamp", f"unparseable interval_start: {value!r}") from None
    if not _HAS_TIME.search(value):
        raise TimestampError("invalid_timestamp", f"interval_start has a date but no time of day: {value!r}")
    return parsed


def to_utc(aware: datetime) -> datetime:
    """An aware datetime in UTC; instants UTC cannot represent (year 1 or 9999 with an offset) are rejected."""
    try:
        return aware.astimezone(UTC)
    except OverflowError:
        raise TimestampError("invalid_timestamp", f"{aware.isoformat()} is outside the representable range") from None


def local_to_utc(naive: datetime, zone: ZoneInfo, fold: int = 0) -> datetime:
    """Resolve a naive local wall-clock time to UTC.

    ``fold`` picks the occurrence of a repeated wall-clock time in the autumn change
    (0 = first, summer time; 1 = second, winter time). Times skipped by the spring change
    do not exist on any meter clock and are rejected rather than guessed.
    """
    aware = naive.replace(tzinfo=zone, fold=fold)
    utc = to_utc(aware)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        raise TimestampError(
            "nonexistent_local_time", f"{naive.isoformat()} does not exist in {zone.key} (clock change)"
        )
    return utc


def is_ambiguous(naive: datetime, zone: ZoneInfo) -> bool:
    """True for wall-clock times that occur twice (the repeated autumn hour)."""
    first = naive.replace(tzinfo=zone, fold=0).utcoffset()
    second = naive.replace(tzinfo=zone, fold=1).utcoffset()
    if first == second:
        return False
    try:
        return local_to_utc(naive, zone, 0) != local_to_utc(naive, zone, 1)
    except TimestampError:
        return False
