import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from billing_assets.domain.record_ids import derive_record_id
from billing_assets.landing.parse import RAW_TEXT_LIMIT, parse_landing_file

H = datetime(2026, 3, 10, 8, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


def parse(data: bytes | str, hour: datetime = H):
    return parse_landing_file(data if isinstance(data, bytes) else data.encode(), "f.json", hour, LONDON)


def line(**fields) -> str:
    return json.dumps(fields)


GOOD = dict(record_id="r1", meterpoint_id="m1", interval_start="2026-03-10T07:30:00Z", consumption=0.42)


def test_json_lines_reading_is_accepted_with_utc_time() -> None:
    [row] = parse(line(**GOOD))
    assert row.reason is None
    assert (row.record_id, row.meterpoint_id, row.consumption) == ("r1", "m1", 0.42)
    assert row.interval_start == datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
    assert row.line_number == 1


def test_split_form_with_any_column_order_derives_record_ids() -> None:
    doc = {
        "columns": ["meterpoint_id", "consumption_delta", "interval_start"],
        "data": [["m1", 0.186, "2026-03-10 07:30:00"], ["m2", 0.2, "2026-03-10T07:00:00+01:00"]],
    }
    rows = parse(json.dumps(doc))
    assert [r.reason for r in rows] == [None, None]
    assert rows[0].interval_start == datetime(2026, 3, 10, 7, 30, tzinfo=UTC)  # London is on GMT in March
    assert rows[1].interval_start == datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # explicit offsets are exact
    assert rows[0].record_id == derive_record_id("m1", rows[0].interval_start)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("{not json", "malformed_json"),
        ("[1, 2]", "malformed_record"),
        (line(**{**GOOD, "record_id": ""}), "missing_field"),
        (line(**{k: v for k, v in GOOD.items() if k != "meterpoint_id"}), "missing_field"),
        (line(**{k: v for k, v in GOOD.items() if k != "consumption"}), "missing_field"),
        (line(**{k: v for k, v in GOOD.items() if k != "interval_start"}), "missing_field"),
        (line(**{**GOOD, "meterpoint_id": 7}), "invalid_field"),
        (line(**{**GOOD, "interval_start": "yesterday"}), "invalid_timestamp"),
        (line(**{**GOOD, "interval_start": "2026-03-29 01:30:00"}), "nonexistent_local_time"),
        (line(**{**GOOD, "consumption": -0.1}), "invalid_consumption"),
        (line(**{**GOOD, "consumption": "0.4"}), "invalid_consumption"),
        (line(**{**GOOD, "consumption": True}), "invalid_consumption"),
        (line(**GOOD).replace("0.42", "NaN"), "invalid_consumption"),
        (line(**GOOD).replace("0.42", "Infinity"), "invalid_consumption"),
        (line(**{**GOOD, "interval_start": "2026-03-03T07:59:59Z"}), "too_late"),
        (line(**{**GOOD, "interval_start": "2026-03-10T09:05:01Z"}), "from_future"),
    ],
)
def test_each_bad_record_is_quarantined_with_its_reason_and_the_rest_survive(record: str, reason: str) -> None:
    rows = parse("\n".join([line(**GOOD), record, line(**{**GOOD, "record_id": "r2"})]))
    assert [r.reason for r in rows] == [None, reason, None]
    bad = rows[1]
    assert bad.line_number == 2 and bad.raw == record and bad.detail


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b'{"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": [["2026-', "split-form"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "UTF-8"),
        (b"abc\x00def", "NUL"),
        (json.dumps({"columns": ["a"], "data": []}).encode(), "lacks columns"),
    ],
)
def test_unreadable_files_are_quarantined_whole(data: bytes, why: str) -> None:
    [row] = parse(data)
    assert row.reason == "unreadable_file" and row.line_number == 0
    assert why in row.detail


def test_other_encodings_and_bom_are_decoded() -> None:
    text = line(**GOOD)
    assert parse(text.encode("utf-16"))[0].reason is None
    assert parse(b"\xef\xbb\xbf" + text.encode())[0].reason is None


def test_enormous_line_is_quarantined_with_bounded_raw_text() -> None:
    huge = line(**{**GOOD, "meterpoint_id": "m" * (2 << 20)})
    rows = parse("\n".join([huge, line(**{**GOOD, "record_id": "r2"})]))
    assert rows[0].reason == "line_too_long"
    assert len(rows[0].raw) < RAW_TEXT_LIMIT + 100
    assert rows[1].reason is None


def test_blank_lines_are_not_records() -> None:
    rows = parse("\n\n" + line(**GOOD) + "\n\n")
    assert len(rows) == 1 and rows[0].line_number == 3


def test_repeated_autumn_hour_in_split_form_first_is_summer_time_second_winter() -> None:
    doc = {
        "columns": ["interval_start", "consumption_delta", "meterpoint_id"],
        "data": [
            ["2026-10-25 01:30:00", 0.1, "m1"],
            ["2026-10-25 01:30:00", 0.2, "m1"],
            ["2026-10-25 01:30:00", 0.3, "m2"],
        ],
    }
    rows = parse(json.dumps(doc), hour=datetime(2026, 10, 25, 2, tzinfo=UTC))
    assert [r.interval_start.hour for r in rows] == [0, 1, 0]
    assert len({r.record_id for r in rows}) == 3


def test_every_input_record_yields_exactly_one_row() -> None:
    records = [line(**{**GOOD, "record_id": f"r{i}"}) for i in range(5)] + ["oops", "{}"]
    assert len(parse("\n".join(records))) == 7
