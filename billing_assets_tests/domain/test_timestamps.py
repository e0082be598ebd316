from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from billing_assets.domain.keys import (
    hour_key,
    hour_keys_between,
    parse_hour_key,
    parse_recording_hour_key,
    recording_hour_key,
    recording_hour_keys,
    shift_recording_hour,
)
from billing_assets.domain.record_ids import derive_record_id
from billing_assets.domain.timestamps import (
    TimestampError,
    UnsupportedTimeZone,
    clock_phase,
    half_hour_phase,
    is_ambiguous,
    local_to_utc,
    parse_naive_or_aware,
)

LONDON = ZoneInfo("Europe/London")


def test_hour_keys_round_trip_and_reject_anything_else() -> None:
    assert parse_hour_key("2026-01-15-08") == datetime(2026, 1, 15, 8, tzinfo=UTC)
    for hostile in ["2026-01-01-00' OR '1'='1", "../2026-01-01-00", "2026-1-1-0", "", "2026-01-15-08:00"]:
        with pytest.raises(ValueError):
            parse_hour_key(hostile)


def test_hour_keys_between_is_half_open() -> None:
    keys = hour_keys_between(datetime(2026, 1, 1, 22, tzinfo=UTC), datetime(2026, 1, 2, 1, tzinfo=UTC))
    assert keys == ["2026-01-01-22", "2026-01-01-23", "2026-01-02-00"]


def test_naive_local_times_follow_the_clock_changes() -> None:
    winter = local_to_utc(datetime(2026, 1, 15, 8, 30), LONDON)
    summer = local_to_utc(datetime(2026, 7, 15, 8, 30), LONDON)
    assert winter == datetime(2026, 1, 15, 8, 30, tzinfo=UTC)
    assert summer == datetime(2026, 7, 15, 7, 30, tzinfo=UTC)


def test_spring_gap_times_are_rejected_not_guessed() -> None:
    with pytest.raises(TimestampError) as err:
        local_to_utc(datetime(2026, 3, 29, 1, 30), LONDON)
    assert err.value.reason == "nonexistent_local_time"


def test_repeated_autumn_hour_resolves_by_fold() -> None:
    naive = datetime(2026, 10, 25, 1, 30)
    assert is_ambiguous(naive, LONDON)
    assert not is_ambiguous(datetime(2026, 10, 25, 2, 30), LONDON)
    assert local_to_utc(naive, LONDON, fold=0) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local_to_utc(naive, LONDON, fold=1) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_timestamp_parsing_keeps_offsets_and_rejects_garbage() -> None:
    assert parse_naive_or_aware("2026-01-15T08:30:00Z") == datetime(2026, 1, 15, 8, 30, tzinfo=UTC)
    assert parse_naive_or_aware("2026-01-15 08:30:00").tzinfo is None
    for bad in ["yesterday", 12345, None, ""]:
        with pytest.raises(TimestampError):
            parse_naive_or_aware(bad)


def test_derived_record_ids_are_stable_and_instant_based() -> None:
    a = derive_record_id("mp1", datetime(2026, 7, 15, 7, 30, tzinfo=UTC))
    b = derive_record_id("mp1", datetime(2026, 7, 15, 8, 30, tzinfo=LONDON))  # the same instant
    assert a == b and len(a) == 32
    assert a != derive_record_id("mp2", datetime(2026, 7, 15, 7, 30, tzinfo=UTC))


# --- Recording hours: local clock hours keyed by the UTC instant they start -------------------

#: Zone -> the UTC minute its local hours start at (seconds).
PHASES = {
    "Europe/London": 0,
    "America/New_York": 0,
    "Africa/Casablanca": 0,
    "Europe/Dublin": 0,
    "Asia/Kolkata": 1800,
    "America/St_Johns": 1800,
    "Australia/Adelaide": 1800,
    "Asia/Kathmandu": 900,
    "Pacific/Chatham": 900,
}


@pytest.mark.parametrize(("zone", "phase"), sorted(PHASES.items()))
def test_each_zone_has_one_clock_phase(zone: str, phase: int) -> None:
    assert clock_phase(zone) == phase
    assert half_hour_phase(zone) == phase % 1800


def test_a_zone_whose_clock_moves_by_part_of_an_hour_is_refused_in_one_line() -> None:
    with pytest.raises(UnsupportedTimeZone) as err:
        clock_phase("Australia/Lord_Howe")
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(
        "BILLING_TIMEZONE=Australia/Lord_Howe is not supported: its UTC offsets (+10:30, +11:00)"
    )


def test_recording_hour_keys_in_whole_hour_zones_are_the_utc_hour_as_before() -> None:
    instant = datetime(2026, 10, 25, 1, 59, 59, tzinfo=UTC)
    for zone in ("Europe/London", "America/New_York", "Africa/Casablanca", "Europe/Dublin", "UTC"):
        assert recording_hour_key(instant, zone) == "2026-10-25-01" == hour_key(instant)


def test_recording_hours_start_on_the_local_clock() -> None:
    # 23:30 IST on 1 April is in the hour 23:00 IST = 17:30 UTC, not the UTC hour 18:00.
    assert recording_hour_key(datetime(2026, 4, 1, 18, 0, tzinfo=UTC), "Asia/Kolkata") == "2026-04-01-1730"
    assert recording_hour_key(datetime(2026, 4, 1, 17, 29, 59, tzinfo=UTC), "Asia/Kolkata") == "2026-04-01-1630"
    # 00:00 NPT on 2 April is 18:15 UTC: the first hour of the new local day.
    assert recording_hour_key(datetime(2026, 4, 1, 18, 15, tzinfo=UTC), "Asia/Kathmandu") == "2026-04-01-1815"
    # A reading fed on the UTC grid in +05:45 (18:00 UTC = 23:45 NPT) straddles two local hours:
    # it belongs to the hour of its start, 23:00 NPT.
    assert recording_hour_key(datetime(2026, 4, 1, 18, 0, tzinfo=UTC), "Asia/Kathmandu") == "2026-04-01-1715"


def test_recording_hour_keys_are_total_at_the_edges_of_time() -> None:
    # Such readings are quarantined as too late; computing their key must not fail the batch.
    assert recording_hour_key(datetime(1, 1, 1, 0, 10, tzinfo=UTC), "Asia/Kolkata").endswith("-01-01-0000")
    assert recording_hour_key(datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "Asia/Kolkata") == "9999-12-31-2330"


def test_recording_hour_key_arithmetic_keeps_the_format() -> None:
    assert parse_recording_hour_key("2026-04-01-1730") == datetime(2026, 4, 1, 17, 30, tzinfo=UTC)
    assert parse_recording_hour_key("2026-04-01-17") == datetime(2026, 4, 1, 17, tzinfo=UTC)
    assert shift_recording_hour("2026-04-01-1730", timedelta(days=-7)) == "2026-03-25-1730"
    assert shift_recording_hour("2026-04-01-17", timedelta(hours=7)) == "2026-04-02-00"
    assert recording_hour_keys("2026-04-01-2230", "2026-04-02-0030") == [
        "2026-04-01-2230",
        "2026-04-01-2330",
        "2026-04-02-0030",
    ]
    for hostile in ("2026-04-01-17:30", "2026-04-01-173", "../2026-04-01-17", "2026-04-01-1730\n", ""):
        with pytest.raises(ValueError):
            parse_recording_hour_key(hostile)


@pytest.mark.parametrize("zone", sorted(PHASES))
def test_each_dagster_recording_hour_is_exactly_one_table_hour_and_back(zone: str) -> None:
    """Each hour around 2026's changes: its window holds exactly the instants keyed to it, and its key maps back."""
    fmt = "%Y-%m-%d-%H%z"
    hours = dg.HourlyPartitionsDefinition(start_date="2025-12-31-00+0000", fmt=fmt, timezone=zone)
    local = ZoneInfo(zone)
    # The days around each 2026 clock change, and the first two days of every month.
    days = {f"2026-{month:02d}-0{day}" for month in range(1, 13) for day in (1, 2)}
    for day in range(366):
        noon = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=day)
        if noon.astimezone(local).utcoffset() != (noon + timedelta(days=1)).astimezone(local).utcoffset():
            days.update((noon + timedelta(days=shift)).strftime("%Y-%m-%d") for shift in (-1, 0, 1, 2))
    keys = [k for k in hours.get_partition_keys(datetime(2027, 1, 2, tzinfo=UTC)) if k[:10] in days]
    seen = set()
    for key in keys:
        window = hours.time_window_for_partition_key(key)
        start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
        assert end - start == timedelta(hours=1), key
        table_key = recording_hour_key(start, zone)
        assert table_key not in seen
        seen.add(table_key)
        assert parse_recording_hour_key(table_key) == start
        assert parse_recording_hour_key(table_key).astimezone(local).strftime(fmt) == key
        for minutes in range(0, 60, 15):
            assert recording_hour_key(start + timedelta(minutes=minutes, seconds=59), zone) == table_key, (key, minutes)
