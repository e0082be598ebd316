"""``too_late`` readings read back from quarantine rows that the real landing parser wrote."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import polars as pl

from billing_assets.domain.record_ids import derive_record_id
from billing_assets.landing.parse import parse_landing_file
from billing_assets.transforms.too_late import too_late_readings

HOUR = datetime(2026, 2, 12, 9, tzinfo=UTC)
OLD = datetime(2026, 2, 1, 5, 30, tzinfo=UTC)


def quarantine(data: bytes, name: str) -> pl.DataFrame:
    rows = parse_landing_file(data, name, HOUR, ZoneInfo("Europe/London"))
    return pl.DataFrame(
        [
            {
                "source_file": row.source_file,
                "line_number": row.line_number,
                "record_id": row.record_id,
                "reason": row.reason,
                "detail": row.detail,
                "raw": row.raw,
                "ingestion_hour": "2026-02-12-09",
            }
            for row in rows
            if row.reason is not None
        ]
    )


def test_json_lines_and_split_rows_are_read_back_and_others_left_alone() -> None:
    lines = [
        {"record_id": "r1", "meterpoint_id": " mp1 ", "interval_start": "2026-02-01T05:30:00Z", "consumption": 0.4},
        {"record_id": "r2", "meterpoint_id": "mp1", "interval_start": "2026-02-12T09:00:00Z", "consumption": -1},
    ]
    jsonl = quarantine("\n".join(json.dumps(line) for line in lines).encode(), "a.json")
    # The split form in another column order, with a naive local (GMT) time.
    split = {
        "columns": ["meterpoint_id", "consumption_delta", "interval_start"],
        "data": [["mp2", 3, "2026-02-01 05:30:00"]],
    }
    split_rows = quarantine(json.dumps(split).encode(), "b.json")

    readings, unreadable = too_late_readings(pl.concat([jsonl, split_rows]))

    assert unreadable == 0
    assert readings.select("record_id", "meterpoint_id", "interval_start", "consumption").rows() == [
        ("r1", "mp1", OLD, 0.4),
        (derive_record_id("mp2", OLD), "mp2", OLD, 3.0),
    ]
    assert readings.select("source_file", "line_number").rows() == [("a.json", 1), ("b.json", 1)]


def test_a_row_that_does_not_say_its_reading_unambiguously_is_counted_not_guessed() -> None:
    # Two numbers in a split row: which is the kWh is not recorded.
    split = {
        "columns": ["interval_start", "consumption_delta", "meterpoint_id", "tariff"],
        "data": [["2026-02-01 05:30:00", 3, "mp2", 7]],
    }
    rows = quarantine(json.dumps(split).encode(), "c.json")
    clipped = rows.with_columns(pl.lit('{"record_id": "x", "meter... [5000 chars]').alias("raw"))

    assert too_late_readings(rows)[1] == 1
    assert too_late_readings(clipped)[1] == 1
