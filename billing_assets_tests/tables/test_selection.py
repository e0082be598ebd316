"""Partition selections: strict key formats, ranges and the filters handed to delta-rs (no Spark)."""

import pyarrow as pa
import pytest

from billing_assets.tables.selection import (
    HOUR,
    ISO_DATE,
    MONTH,
    RECORDING_HOUR,
    key_format,
    partition_range,
    partitions,
)

HOSTILE = [
    "2026-01-01-00' OR '1'='1",
    "../x",
    "2026-01-01-00/../../etc",
    "2026-01-01-24",
    "2026-1-01-00",
    "２０２６-01-01-00",  # full-width digits
    "٢٠٢٦-01-01-00",  # Arabic-Indic digits pass \d and strptime, not the key format
    " 2026-01-01-00",
    "2026-01-01-00\n",
    "",
    None,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_hour_keys_are_refused(value) -> None:
    for fmt in (HOUR, RECORDING_HOUR):
        with pytest.raises(ValueError, match="not a valid hour"):
            partitions([value]).validated(fmt)
        with pytest.raises(ValueError, match="not a valid hour|a range"):
            partition_range("2026-01-01-00", value).validated(fmt)


def test_each_column_has_its_format() -> None:
    assert key_format("recording_hour", pa.string()) is RECORDING_HOUR
    assert key_format("ingestion_hour", pa.string()) is HOUR
    assert key_format("billing_month", pa.string()) is MONTH
    assert key_format("settlement_date", pa.date32()) is ISO_DATE
    with pytest.raises(ValueError, match="no partition value format"):
        key_format("region", pa.string())
    # A recording hour carries minutes in a zone whose local hours start off the UTC hour (Kolkata: :30).
    assert RECORDING_HOUR.check("2026-04-01-1730") == "2026-04-01-1730"
    assert RECORDING_HOUR.check("2026-04-01-17") == "2026-04-01-17"
    for bad in ("2026-04-01-1760", "2026-04-01-173", "2026-04-01-17:30", "2026-04-01-2400"):
        with pytest.raises(ValueError, match="not a valid hour"):
            RECORDING_HOUR.check(bad)
    with pytest.raises(ValueError, match="not a valid hour"):
        HOUR.check("2026-04-01-1730")  # landing folders stay whole UTC hours
    assert MONTH.check("2026-02") == "2026-02"
    for bad in ("2026-13", "2026-02-01", "2026-2"):
        with pytest.raises(ValueError):
            MONTH.check(bad)
    assert ISO_DATE.check("2024-02-29") == "2024-02-29"
    for bad in ("2026-02-29", "2026-02-01T00", "20260201"):
        with pytest.raises(ValueError):
            ISO_DATE.check(bad)


def test_ranges_and_lists_select_and_filter() -> None:
    hours = partition_range("2026-01-01-22", "2026-01-02-01").validated(HOUR)
    assert [hours.contains(v) for v in ("2026-01-01-21", "2026-01-01-22", "2026-01-02-01", "2026-01-02-02")] == [
        False,
        True,
        True,
        False,
    ]
    assert hours.filters("recording_hour") == [
        ("recording_hour", ">=", "2026-01-01-22"),
        ("recording_hour", "<=", "2026-01-02-01"),
    ]
    listed = partitions(["2026-03-01", "2026-03-05"]).validated(ISO_DATE)
    assert listed.contains("2026-03-05") and not listed.contains("2026-03-02")
    assert listed.filters("date") == [("date", "in", ["2026-03-01", "2026-03-05"])]
    with pytest.raises(ValueError, match="empty partition range"):
        partition_range("2026-02", "2026-01").validated(MONTH)
    with pytest.raises(ValueError, match="lists no partitions"):
        partitions([]).validated(MONTH)
