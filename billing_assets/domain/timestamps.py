"""Timestamp rules of the landing contract: hour keys, interval starts, local time to UTC."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: Partition keys and landing folder names share this format (e.g. ``2026-01-15-08``).
HOUR_KEY_FORMAT = "%Y-%m-%d-%H"
#: ASCII digits only: ``re``'s ``\d`` and ``strptime`` also accept other scripts' digits.
HOUR_KEY_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}"
_HOUR_KEY = re.compile(HOUR_KEY_PATTERN)
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
