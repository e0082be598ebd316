import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_assets.domain.record_ids import derive_record_id
from billing_assets.landing.parse import (
    DEFAULT_MAX_READING_KWH,
    JSON_LINE_FIELDS,
    RAW_TEXT_LIMIT,
    SPLIT_COLUMNS,
    parse_landing_file,
)
from billing_assets.transforms.ingest import rows_to_batch

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


AUTUMN_HOUR = datetime(2026, 10, 25, 2, tzinfo=UTC)


def test_a_third_reading_at_one_repeated_wall_clock_time_is_quarantined_not_stacked() -> None:
    doc = {
        "columns": ["interval_start", "consumption_delta", "meterpoint_id"],
        "data": [["2026-10-25 01:15:00", v, "m1"] for v in (0.1, 0.2, 0.3)],
    }
    rows = parse(json.dumps(doc), hour=AUTUMN_HOUR)
    assert [r.reason for r in rows] == [None, None, "ambiguous_local_time"]
    assert [r.interval_start for r in rows[:2]] == [
        datetime(2026, 10, 25, 0, 15, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 15, tzinfo=UTC),
    ]
    jsonl = "\n".join(
        line(record_id=f"r{i}", meterpoint_id="m1", interval_start="2026-10-25T01:15:00", consumption=0.1)
        for i in range(3)
    )
    assert [r.reason for r in parse(jsonl, hour=AUTUMN_HOUR)] == [None, None, "ambiguous_local_time"]


def test_the_rule_is_per_file_so_one_wall_clock_time_in_two_files_is_one_instant_and_one_record_id() -> None:
    doc = {
        "columns": ["interval_start", "consumption_delta", "meterpoint_id"],
        "data": [["2026-10-25 01:30:00", 0.1, "m1"]],
    }
    [first] = parse(json.dumps(doc), hour=AUTUMN_HOUR)
    [second] = parse(json.dumps(doc), hour=AUTUMN_HOUR)
    assert first.interval_start == second.interval_start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert first.record_id == second.record_id  # deduplication sees a duplicate (or a conflict), never two readings


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            '{"record_id":"s1","meterpoint_id":"m\\ud800","interval_start":"2026-03-10T07:30:00Z","consumption":1}',
            "invalid_field",
        ),
        (
            '{"record_id":"s\\udfff","meterpoint_id":"m1","interval_start":"2026-03-10T07:30:00Z","consumption":1}',
            "invalid_field",
        ),
        (line(**GOOD).replace("0.42", "1" + "0" * 400), "implausible_consumption"),
        (line(**GOOD).replace("0.42", "1" + "0" * 5000), "implausible_consumption"),
        (line(**GOOD).replace("0.42", "1e308"), "implausible_consumption"),
        (line(**GOOD).replace("0.42", "1e400"), "implausible_consumption"),
        (line(**GOOD).replace("0.42", "50000.5"), "implausible_consumption"),
        (line(**GOOD).replace('"consumption": 0.42', '"consumption": 0.42, "consumption": 0.5'), "malformed_record"),
        (
            line(**GOOD).replace('"meterpoint_id": "m1"', '"meterpoint_id": "m1", "meterpoint_id": "m1"'),
            "malformed_record",
        ),
        (line(**{**GOOD, "interval_start": "2026-03-10"}), "invalid_timestamp"),
        (line(**{**GOOD, "interval_start": "20260310"}), "invalid_timestamp"),
        (line(**{**GOOD, "interval_start": "0001-01-01T00:00:00+05:00"}), "invalid_timestamp"),
        (line(**{**GOOD, "interval_start": "9999-12-31T23:59:59-05:00"}), "invalid_timestamp"),
        (line(**GOOD).replace('"m1"', "NaN"), "invalid_field"),
    ],
)
def test_hostile_values_are_quarantined_with_a_reason(record: str, reason: str) -> None:
    rows = parse("\n".join([line(**GOOD), record, line(**{**GOOD, "record_id": "r2"})]))
    assert [r.reason for r in rows] == [None, reason, None]
    rows_to_batch("2026-03-10-08", rows)  # every row can be stored


def test_the_ceiling_is_inclusive_and_configurable() -> None:
    at = line(**GOOD).replace("0.42", "50000")
    assert parse(at)[0].reason is None
    [row] = parse_landing_file(line(**GOOD).encode(), "f.json", H, LONDON, max_reading_kwh=0.4)
    assert (row.reason, row.detail) == (
        "implausible_consumption",
        "consumption 0.42 kWh is above the ceiling of 0.4 kWh",
    )


def test_split_documents_with_non_text_or_repeated_columns_are_quarantined() -> None:
    bad = {
        "columns": ["interval_start", "consumption_delta", "meterpoint_id", ["x"]],
        "data": [["2026-03-10T07:30:00Z", 1, "m1", 2]],
    }
    assert [r.reason for r in parse(json.dumps(bad))] == ["unreadable_file"]
    repeated = {
        "columns": ["interval_start", "consumption_delta", "meterpoint_id", "consumption_delta"],
        "data": [["2026-03-10T07:30:00Z", 1, "m1", 2], ["2026-03-10T07:00:00Z", 1, "m2", 2]],
    }
    assert [(r.line_number, r.reason) for r in parse(json.dumps(repeated))] == [
        (1, "malformed_record"),
        (2, "malformed_record"),
    ]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x0c", "\x1c", "\x85"])
def test_only_newline_ends_a_json_line(separator: str) -> None:
    text = (
        json.dumps({**GOOD, "meterpoint_id": f"m{separator}1"}, ensure_ascii=False)
        + "\r\n"
        + line(**{**GOOD, "record_id": "r2"})
    )
    rows = parse(text)
    assert [(r.reason, r.meterpoint_id) for r in rows] == [(None, f"m{separator}1"), (None, "m1")]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
_FIELD_VALUES = _JSON | st.sampled_from(["2026-03-10T07:30:00Z", "2026-10-25 01:30:00", "2026-03-29 01:30:00", "m1"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_the_parser_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    rows = parse(data)
    assert rows and all(r.reason or r.interval_start for r in rows)
    rows_to_batch("2026-03-10-08", rows)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*JSON_LINE_FIELDS, "other"]), _FIELD_VALUES, max_size=6),
    st.lists(st.lists(_FIELD_VALUES, max_size=4), max_size=4),
    st.lists(_JSON | st.sampled_from(["interval_start", "consumption_delta", "meterpoint_id"]), max_size=5),
)
def test_the_parser_never_raises_on_arbitrary_json_values(record: dict, rows: list, columns: list) -> None:
    documents = [
        (json.dumps(record, allow_nan=True), {1}),
        (json.dumps(record, ensure_ascii=False, allow_nan=True), {1}),
        (json.dumps({"columns": columns, "data": rows}), {1, len(rows)}),  # one row per record, or the file
        (json.dumps({"columns": list(SPLIT_COLUMNS), "data": rows}), {len(rows)}),
    ]
    for text, counts in documents:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(json.loads(text))  # a lone surrogate only travels escaped
        parsed = parse(text, hour=AUTUMN_HOUR)
        assert len(parsed) in counts
        for row in parsed:
            assert (row.reason is None) == (row.interval_start is not None)
            if row.reason is None:
                assert 0 <= row.consumption <= DEFAULT_MAX_READING_KWH and row.interval_start.tzinfo is UTC
        rows_to_batch("2026-10-25-02", parsed)
