"""Partitions of the asset graph, and conversions between their keys and the tables' hour keys.

* Ingestion hours are UTC and keyed ``%Y-%m-%d-%H``: a key is literally the landing folder
  name (``ingestion_hour=<key>``).
* Recording hours, and everything computed from them, live in the billing time zone:
  Dagster maps hours onto months only within one time zone, and billing months are local
  calendar months. Their keys carry the UTC offset (``2026-10-25-01+0100`` and
  ``2026-10-25-01+0000`` are the two distinct hours of the autumn change). The tables key
  the same hour by the UTC instant it starts (``recording_hour`` column: ``YYYY-MM-DD-HH``,
  or ``YYYY-MM-DD-HHMM`` in a zone whose hours start at :15, :30 or :45 UTC, such as
  Kolkata's ``2026-04-01-1730`` for ``2026-04-01-23+0530``); ``table_hour_key`` and
  ``recording_partition_key`` convert in the billing zone, one partition to exactly one table
  hour and back. The key formats and conversions themselves are in ``domain/keys.py``.

This module owns partition keys and how runs cover them: the range tags of a run over many
partitions, contiguous ranges of keys, and how many hours one run may take.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import dagster as dg

from billing_assets.domain.keys import (
    DAY_KEY_FORMAT,
    HOUR_KEY_FORMAT,
    LOCAL_HOUR_KEY_FORMAT,
    MONTH_KEY_FORMAT,
    day_key,
    hour_key,
    local_hour_key,
    month_key,
    recording_hour_key,
)
from billing_assets.domain.watermark import CLOCK_DRIFT, HOUR, LATE_DATA_WINDOW
from billing_assets.settings import load_settings
from billing_assets.tables.selection import RunWindow, partition_range

#: Read when the code location loads: the partitions are built from them.
_SETTINGS = load_settings()
BILLING_TZ = _SETTINGS.timezone
T = TypeVar("T")

_FIRST_INGESTION = datetime.combine(_SETTINGS.start_date, datetime.min.time(), tzinfo=UTC)
# Readings in the first ingestion hour may be up to 7 days (+ drift) old, so recording
# hours start a whole day earlier than that.
_FIRST_RECORDING = (_FIRST_INGESTION - LATE_DATA_WINDOW - timedelta(days=1)).astimezone(ZoneInfo(BILLING_TZ))

#: Landing folders, one per UTC hour of arrival.
ingestion_hours = dg.HourlyPartitionsDefinition(
    start_date=hour_key(_FIRST_INGESTION), fmt=HOUR_KEY_FORMAT, timezone="UTC"
)

#: Hours of ``interval_start``: what a reading measures, whenever it arrived.
recording_hours = dg.HourlyPartitionsDefinition(
    start_date=_FIRST_RECORDING.replace(minute=0).strftime(LOCAL_HOUR_KEY_FORMAT),
    fmt=LOCAL_HOUR_KEY_FORMAT,
    timezone=BILLING_TZ,
)

#: Calendar months in the billing time zone; in London October starts 23:00 UTC on 30 Sep.
#: The current month is a partition too: its running total is kept up to date as hours arrive.
billing_months = dg.MonthlyPartitionsDefinition(
    start_date=month_key(_FIRST_RECORDING), fmt=MONTH_KEY_FORMAT, timezone=BILLING_TZ, end_offset=1
)


#: Dagster's run tags for a run over the inclusive range of partitions [start, end] (one run
#: per range: every Spark asset has ``BackfillPolicy.single_run()``).
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
#: The tag of a one-partition run.
PARTITION_TAG = "dagster/partition"

#: The longest range of ingestion hours one sensor run ingests: a week, so a first start-up or
#: a few days' backlog is one run (each run pays a Spark start), while a month-long catch-up is
#: still cut into runs whose memory stays bounded.
MAX_HOURS_PER_RUN = 168
#: Ingestion hours per ``raw_readings`` run of ``billing-assets process`` (``--batch-hours``).
DEFAULT_BATCH_HOURS = 24


#: Gaps up to this long between partitions to refresh are filled: readings up to 7 days late
#: (and 5 minutes of drift) from one batch become one run instead of one run per touched hour.
MAX_FILLED_GAP = LATE_DATA_WINDOW + CLOCK_DRIFT + HOUR


def range_tags(first: str, last: str) -> dict[str, str]:
    """The tags of one run over the partitions ``[first, last]``."""
    return {RANGE_START: first, RANGE_END: last}


def run_partitions(first: str, last: str) -> dict[str, object]:
    """``partition_key`` for one partition, else the range tags: keyword arguments of a run or run request."""
    return {"partition_key": first} if first == last else {"tags": range_tags(first, last)}


def key_ranges(
    partitions_def: dg.PartitionsDefinition, keys: Iterable[str], max_length: int | None = None
) -> list[dg.PartitionKeyRange]:
    """Contiguous ranges of ``keys`` in time order, each at most ``max_length`` partitions long."""
    keys = list(keys)
    if not keys:
        return []
    ranges = partitions_def.subset_with_partition_keys(keys).get_partition_key_ranges(partitions_def)
    if max_length is None:
        return list(ranges)
    out = []
    for key_range in ranges:
        inside = partitions_def.get_partition_keys_in_range(key_range)
        for at in range(0, len(inside), max_length):
            chunk = inside[at : at + max_length]
            out.append(dg.PartitionKeyRange(chunk[0], chunk[-1]))
    return out


def runs_over_ranges(
    wanted: Iterable[tuple[T, dg.PartitionsDefinition, Iterable[str]]],
) -> list[tuple[dg.PartitionsDefinition, dg.PartitionKeyRange, list[T]]]:
    """One run per contiguous range of each unit's partitions; units of one partitioning over the same range share it.

    ``wanted``: (unit, its partitions, the keys to refresh), a unit being whatever must run
    together (an asset, or the assets of one multi-asset). The sensor and ``process`` plan
    their runs here, so the UI and the command launch the same runs for the same change.
    """
    runs: list[tuple[dg.PartitionsDefinition, dg.PartitionKeyRange, list[T]]] = []
    for unit, partitions_def, keys in wanted:
        for key_range in key_ranges(partitions_def, keys):
            shared = next((run for run in runs if run[0] == partitions_def and run[1] == key_range), None)
            if shared is None:
                runs.append((partitions_def, key_range, [unit]))
            else:
                shared[2].append(unit)
    return runs


def filled_gaps(
    partitions_def: dg.TimeWindowPartitionsDefinition, keys: Iterable[str], max_gap: timedelta = MAX_FILLED_GAP
) -> set[str]:
    """The partitions in gaps of at most ``max_gap`` between the contiguous ranges of ``keys``."""
    ranges = key_ranges(partitions_def, keys)
    gaps: set[str] = set()
    for before, after in zip(ranges, ranges[1:], strict=False):
        end = partitions_def.time_window_for_partition_key(before.end).end
        start = partitions_def.time_window_for_partition_key(after.start).start
        if start - end <= max_gap:
            gaps.update(partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(before.end, after.start)))
    return gaps


#: For a month or day still in progress, its later hours do not exist yet: that is not an error.
TO_HOURS_SO_FAR = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)


def table_hour_key(instant: datetime) -> str:
    """The ``recording_hour`` value of the local hour holding ``instant`` (its UTC start)."""
    return recording_hour_key(instant, BILLING_TZ)


def recording_partition_key(table_key: str) -> str:
    """The Dagster recording-hour partition key of a ``recording_hour`` value."""
    return local_hour_key(table_key, BILLING_TZ)


def _last_hour(window: dg.TimeWindow) -> datetime:
    # In UTC: arithmetic on an aware datetime of a zone is wall-clock arithmetic, so an hour
    # before 01:00 GMT (the second 01:00 of the autumn change) would be 00:00, two hours back.
    return window.end.astimezone(UTC) - timedelta(hours=1)


def in_time_order(keys: Iterable[str]) -> list[str]:
    """Recording-hour keys sorted by the instant they start.

    Not by text (``01+0000`` sorts before ``01+0100``) nor by local datetime: Python compares
    two aware datetimes of one zone by wall-clock time, ignoring ``fold``, so the two hours of
    the autumn change compare equal.
    """
    return sorted(keys, key=lambda key: recording_hours.time_window_for_partition_key(key).start.timestamp())


def hour_range(window: dg.TimeWindow) -> tuple[str, str]:
    """First and last ``recording_hour`` keys inside a partition time window."""
    return table_hour_key(window.start), table_hour_key(_last_hour(window))


def month_range(window: dg.TimeWindow) -> tuple[str, str]:
    """First and last billing-month keys inside a monthly time window."""
    zone = ZoneInfo(BILLING_TZ)
    last = _last_hour(window).astimezone(zone)
    return month_key(window.start.astimezone(zone)), month_key(last)


#: Local calendar days in the billing time zone: settlement dates, dimension loads (the
#: source refreshes at local midnight) and gold tables. Today is a partition too.
local_days = dg.DailyPartitionsDefinition(
    start_date=day_key(_FIRST_RECORDING), fmt=DAY_KEY_FORMAT, timezone=BILLING_TZ, end_offset=1
)


def day_range(window: dg.TimeWindow) -> tuple[date, date]:
    """First and last local dates inside a daily time window."""
    zone = ZoneInfo(BILLING_TZ)
    return window.start.astimezone(zone).date(), _last_hour(window).astimezone(zone).date()


def run_window(window: dg.TimeWindow) -> RunWindow:
    """The hours, days and months a run's partition time window covers, as the tables key them."""
    first_day, last_day = day_range(window)
    return RunWindow(
        hours=partition_range(*hour_range(window)),
        days=partition_range(first_day.isoformat(), last_day.isoformat()),
        months=partition_range(*month_range(window)),
        timezone=BILLING_TZ,
    )


def all_days() -> tuple[date, date]:
    """First and last local date that have a partition now."""
    keys = local_days.get_partition_keys()
    return date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
