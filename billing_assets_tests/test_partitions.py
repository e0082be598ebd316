"""``partitions.py``: where the recording partitions start, in zones on and off the UTC hour.

The zone and the start date are read when the module is imported, so each case is checked in a
fresh interpreter.
"""

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta

import pytest

from billing_assets.domain.watermark import LATE_DATA_WINDOW, watermark_reason

_FIRST_PARTITIONS = textwrap.dedent(
    """
    import json
    from datetime import UTC, datetime
    from billing_assets import partitions as p

    first_ingestion = datetime.fromisoformat(p.ingestion_hours.get_first_partition_key()[:10]).replace(tzinfo=UTC)
    hour = p.recording_hours.time_window_for_partition_key(p.recording_hours.get_first_partition_key())
    day = p.local_days.time_window_for_partition_key(p.local_days.get_first_partition_key())
    month = p.billing_months.time_window_for_partition_key(p.billing_months.get_first_partition_key())
    print(json.dumps({
        "first_ingestion": first_ingestion.isoformat(),
        "windows": {
            name: [window.start.astimezone(UTC).isoformat(), window.end.astimezone(UTC).isoformat()]
            for name, window in (("hour", hour), ("day", day), ("month", month))
        },
        "hour_key": p.recording_hours.get_first_partition_key(),
        "day_key": p.local_days.get_first_partition_key(),
        "month_key": p.billing_months.get_first_partition_key(),
    }))
    """
)


def first_partitions(zone: str, start_date: str) -> dict:
    env = {**os.environ, "BILLING_TIMEZONE": zone, "BILLING_START_DATE": start_date}
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_PARTITIONS], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("zone", "start_date", "hour_key", "day_key", "month_key"),
    [
        # S - 7 days is local midnight: the first hour and day are the ones it starts.
        ("Europe/London", "2026-01-01", "2025-12-25-00+0000", "2025-12-25", "2025-12"),
        # Summer time: 00:00 UTC is 01:00 local.
        ("Europe/London", "2026-04-08", "2026-04-01-01+0100", "2026-04-01", "2026-04"),
        # Hours starting at :30 UTC: the local hour holding 00:00 UTC starts at 23:30 UTC the day before.
        ("Asia/Kolkata", "2026-04-08", "2026-04-01-05+0530", "2026-04-01", "2026-04"),
        # :45 zone, its hours start at :15 UTC.
        ("Asia/Kathmandu", "2026-01-01", "2025-12-25-05+0545", "2025-12-25", "2025-12"),
        # West of UTC the oldest acceptable reading is in the evening of the local day before, and month.
        ("America/New_York", "2026-04-01", "2026-03-24-20-0400", "2026-03-24", "2026-03"),
        ("America/St_Johns", "2026-01-01", "2025-12-24-20-0330", "2025-12-24", "2025-12"),
    ],
)
def test_recording_partitions_start_where_the_oldest_acceptable_reading_falls(
    zone: str, start_date: str, hour_key: str, day_key: str, month_key: str
) -> None:
    found = first_partitions(zone, start_date)
    assert (found["hour_key"], found["day_key"], found["month_key"]) == (hour_key, day_key, month_key)
    first_ingestion = datetime.fromisoformat(found["first_ingestion"])
    oldest = first_ingestion - LATE_DATA_WINDOW
    # The watermark's bound: 7 days before the ingestion hour's start, inclusive, no drift below.
    assert watermark_reason(oldest, first_ingestion) is None
    assert watermark_reason(oldest - timedelta(seconds=1), first_ingestion) == "too_late"
    for name, (start, end) in found["windows"].items():
        start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
        # Every acceptable reading has a partition, and the first one holds an acceptable instant.
        assert start <= oldest < end, name
    hour_start = datetime.fromisoformat(found["windows"]["hour"][0])
    # No earlier hour partition: one starting an hour before could only hold readings that are too late.
    assert oldest - timedelta(hours=1) < hour_start
