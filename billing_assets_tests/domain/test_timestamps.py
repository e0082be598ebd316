from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from billing_assets.domain.record_ids import derive_record_id
from billing_assets.domain.timestamps import (
    TimestampError,
    hour_keys_between,
    is_ambiguous,
    local_to_utc,
    parse_hour_key,
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
