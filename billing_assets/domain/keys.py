"""Every key format, and every conversion between keys and instants: format, parse, shift.

* Ingestion hours: ``YYYY-MM-DD-HH``, the UTC hour of arrival, literally the landing folder
  name (``ingestion_hour=<key>``) and the Dagster partition key alike.
* Recording hours as the tables key them (``recording_hour``): the UTC start of a local clock
  hour, ``YYYY-MM-DD-HH``, or ``YYYY-MM-DD-HHMM`` in a zone whose hours start at :15, :30 or
  :45 UTC (Kolkata's ``2026-04-01-1730`` is 23:00 local). Every format here is fixed-width, so
  string order is time order.
* Local hour keys, Dagster's recording-hour partition keys: the local hour with its UTC offset
  (``2026-10-25-01+0100`` and ``2026-10-25-01+0000`` are the two hours of the autumn change);
  ``local_hour_key`` converts a table key to one, one hour to exactly one hour.
* Local days ``YYYY-MM-DD`` and billing months ``YYYY-MM`` in the billing time zone.
* The command line's hours, ``YYYY-MM-DDTHH`` (UTC): ``--start`` and ``--end``.

Executors use these functions (parsing on ``mapInArrow`` tasks), so the module holds plain
values only: no module objects and no ``functools.lru_cache`` wrappers (see ``timestamps``).
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from billing_assets.domain.timestamps import clock_phase, recording_hour_start

#: Ingestion hour keys and landing folder names (e.g. ``2026-01-15-08``).
HOUR_KEY_FORMAT = "%Y-%m-%d-%H"
#: ASCII digits only: ``re``'s ``\d`` and ``strptime`` also accept other scripts' digits.
HOUR_KEY_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}"
_HOUR_KEY = re.compile(HOUR_KEY_PATTERN)
#: Recording-hour keys in a zone whose local hours start off the UTC hour (``2026-04-01-1730``
#: is 23:00 in Kolkata): still fixed-width, so string order stays time order.
MINUTE_KEY_FORMAT = "%Y-%m-%d-%H%M"
MINUTE_KEY_WIDTH = len("2026-01-01-0000")
RECORDING_HOUR_KEY_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}(?:[0-9]{2})?"
_RECORDING_HOUR_KEY = re.compile(RECORDING_HOUR_KEY_PATTERN)
#: The two recording-hour key formats in Spark's ``date_format`` syntax.
SPARK_HOUR_KEY_PATTERN = "yyyy-MM-dd-HH"
SPARK_MINUTE_KEY_PATTERN = "yyyy-MM-dd-HHmm"
#: Local hour keys (Dagster's recording-hour partition keys): the local hour and its UTC offset.
LOCAL_HOUR_KEY_FORMAT = "%Y-%m-%d-%H%z"
#: Local days (Dagster's daily partitions and the tables' date partitions).
DAY_KEY_FORMAT = "%Y-%m-%d"
DAY_KEY_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: Billing months, local calendar months.
MONTH_KEY_FORMAT = "%Y-%m"
MONTH_KEY_PATTERN = r"[0-9]{4}-[0-9]{2}"
#: Hours on the command line (``--start``, ``--end``), UTC.
COMMAND_HOUR_FORMAT = "%Y-%m-%dT%H"


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


def recording_hour_key(instant: datetime, timezone: str) -> str:
    """The tables' ``recording_hour`` of ``instant``: the UTC start of its local hour.

    ``YYYY-MM-DD-HH`` in whole-hour zones (the UTC hour, as always), ``YYYY-MM-DD-HHMM`` in
    zones whose hours start at :15, :30 or :45 UTC.
    """
    start = recording_hour_start(instant, timezone)
    return start.strftime(MINUTE_KEY_FORMAT if clock_phase(timezone) else HOUR_KEY_FORMAT)


def spark_recording_hour_pattern(timezone: str) -> str:
    """``date_format``'s pattern of the ``recording_hour`` keys of ``timezone`` (for Spark columns)."""
    return SPARK_MINUTE_KEY_PATTERN if clock_phase(timezone) else SPARK_HOUR_KEY_PATTERN


def parse_recording_hour_key(key: str) -> datetime:
    """The UTC start of a ``recording_hour`` key (``YYYY-MM-DD-HH`` or ``YYYY-MM-DD-HHMM``)."""
    if not isinstance(key, str) or not _RECORDING_HOUR_KEY.fullmatch(key):
        raise ValueError(f"not a recording hour key (YYYY-MM-DD-HH or YYYY-MM-DD-HHMM): {key!r}")
    return datetime.strptime(key, _recording_key_format(key)).replace(tzinfo=UTC)


def _recording_key_format(key: str) -> str:
    return MINUTE_KEY_FORMAT if len(key) == MINUTE_KEY_WIDTH else HOUR_KEY_FORMAT


def shift_recording_hour(key: str, delta: timedelta) -> str:
    """The ``recording_hour`` key ``delta`` (e.g. a reach of days) after ``key``, in the same format."""
    return (parse_recording_hour_key(key) + delta).strftime(_recording_key_format(key))


def recording_hour_keys(first: str, last: str) -> list[str]:
    """Every ``recording_hour`` key from ``first`` to ``last`` inclusive (both of one zone), one hour apart."""
    start, end, fmt = parse_recording_hour_key(first), parse_recording_hour_key(last), _recording_key_format(first)
    keys = []
    while start <= end:
        keys.append(start.strftime(fmt))
        start += timedelta(hours=1)
    return keys


def local_hour_key(table_key: str, timezone: str) -> str:
    """The local hour key (hour and UTC offset in ``timezone``) of a ``recording_hour`` value."""
    return parse_recording_hour_key(table_key).astimezone(ZoneInfo(timezone)).strftime(LOCAL_HOUR_KEY_FORMAT)


def day_key(instant: datetime) -> str:
    """The ``YYYY-MM-DD`` key of an aware datetime's own date (convert it to the zone first)."""
    return instant.strftime(DAY_KEY_FORMAT)


def month_key(instant: datetime) -> str:
    """The ``YYYY-MM`` billing-month key of an aware datetime's own month (convert it to the zone first)."""
    return instant.strftime(MONTH_KEY_FORMAT)


def command_hour(instant: datetime) -> str:
    """A UTC hour as the command line takes it: ``YYYY-MM-DDTHH``."""
    return instant.strftime(COMMAND_HOUR_FORMAT)


def parse_command_hour(text: str) -> datetime:
    """A command-line hour ``YYYY-MM-DDTHH`` (UTC) as an aware datetime; ValueError for anything else."""
    return datetime.strptime(text, COMMAND_HOUR_FORMAT).replace(tzinfo=UTC)
