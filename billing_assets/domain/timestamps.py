"""Timestamp rules of the landing contract: hour keys, interval starts, local time to UTC."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: Partition keys and landing folder names share this format (e.g. ``2026-01-15-08``).
HOUR_KEY_FORMAT = "%Y-%m-%d-%H"
#: ASCII digits only: ``re``'s ``\d`` and ``strptime`` also accept other scripts' digits.
HOUR_KEY_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}"
_HOUR_KEY = re.compile(HOUR_KEY_PATTERN)
#: Recording-hour keys in a zone whose local hours start off the UTC hour (``2026-04-01-1730``
#: is 23:00 in Kolkata): still fixed-width, so string order stays time order.
MINUTE_KEY_FORMAT = "%Y-%m-%d-%H%M"
RECORDING_HOUR_KEY_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}(?:[0-9]{2})?"
_RECORDING_HOUR_KEY = re.compile(RECORDING_HOUR_KEY_PATTERN)
#: The years whose UTC offsets decide a zone's clock phase: data older than this is not billed here.
_PHASE_YEARS = (2000, 2100)
#: A timestamp names a time of day: a date alone would silently mean local midnight.
_HAS_TIME = re.compile(r"[0-9][Tt ][0-9]")


class TimestampError(ValueError):
    """A reading's ``interval_start`` cannot be turned into one UTC instant."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def hour_key(instant: datetime) -> str:
    """The UTC hour key of an aware datetime."""
    return instant.astimezone(UTC).strftime(HOUR_KEY_FORMAT)


def parse_hour_key(key: str) -> datetime:
    """The UTC start of an hour key; rejects anything that is not exactly ``YYYY-MM-DD-HH``."""
    if not isinstance(key, str) or not _HOUR_KEY.fullmatch(key):
        raise ValueError(f"not an hour key (YYYY-MM-DD-HH): {key!r}")
    return datetime.strptime(key, HOUR_KEY_FORMAT).replace(tzinfo=UTC)


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


def recording_hour_key(instant: datetime, timezone: str) -> str:
    """The tables' ``recording_hour`` of ``instant``: the UTC start of its local hour.

    ``YYYY-MM-DD-HH`` in whole-hour zones (the UTC hour, as always), ``YYYY-MM-DD-HHMM`` in
    zones whose hours start at :15, :30 or :45 UTC.
    """
    start = recording_hour_start(instant, timezone)
    return start.strftime(MINUTE_KEY_FORMAT if clock_phase(timezone) else HOUR_KEY_FORMAT)


def parse_recording_hour_key(key: str) -> datetime:
    """The UTC start of a ``recording_hour`` key (``YYYY-MM-DD-HH`` or ``YYYY-MM-DD-HHMM``)."""
    if not isinstance(key, str) or not _RECORDING_HOUR_KEY.fullmatch(key):
        raise ValueError(f"not a recording hour key (YYYY-MM-DD-HH or YYYY-MM-DD-HHMM): {key!r}")
    return datetime.strptime(key, _recording_key_format(key)).replace(tzinfo=UTC)


def _recording_key_format(key: str) -> str:
    return MINUTE_KEY_FORMAT if len(key) == len("2026-01-01-0000") else HOUR_KEY_FORMAT


def shift_recording_hour(key: str, delta: timedelta) -> str:
    """The ``recording_hour`` key ``delta`` after ``key``, in the same format."""
    return (parse_recording_hour_key(key) + delta).strftime(_recording_key_format(key))


def recording_hour_keys(first: str, last: str) -> list[str]:
    """Every ``recording_hour`` key from ``first`` to ``last`` inclusive (both of one zone), one hour apart."""
    start, end, fmt = parse_recording_hour_key(first), parse_recording_hour_key(last), _recording_key_format(first)
    keys = []
    while start <= end:
        keys.append(start.strftime(fmt))
        start += timedelta(hours=1)
    return keys


def half_hour_phase(timezone: str) -> int:
    """Seconds past each UTC half hour at which the zone's local half hours start."""
    return clock_phase(timezone) % 1800


def hour_keys_between(start: datetime, end: datetime) -> list[str]:
    """Hour keys of every hour starting in ``[start, end)``."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += timedelta(hours=1)
    keys = []
    while hour < end:
        keys.append(hour_key(hour))
        hour += timedelta(hours=1)
    return keys


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
