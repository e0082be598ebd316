"""A landing file read in pieces: every line once, and every record's row exactly as a whole-file read gives it."""

import codecs
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_assets.landing import parse, pieces
from billing_assets.landing.files import LandingFile
from billing_assets.landing.parse import parse_landing_file
from billing_assets.landing.pieces import LongLine, piece_lines, plan_pieces
from billing_assets.transforms.ingest import read_locally

HOUR = "2026-10-25-02"  # the repeated autumn hour is inside its watermark
LONDON = "Europe/London"

# Bytes that make lines interesting: CR (CRLF endings), blanks, separators JSON allows inside
# strings (U+2028, form feed, NEL), a multi-byte character and the newline itself.
_CHUNKS = st.sampled_from(
    [b"a", b"{", b" ", b"\r", b"\n", b"\n", "é".encode(), "\u2028".encode(), b"\x0c", b"\xc2\x85"]
)


def _expected_lines(data: bytes) -> list[tuple[int, bytes]]:
    """The lines of ``data`` with their offsets, as a whole-file split on ``\\n`` numbers them."""
    lines, offset = [], 0
    parts = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        parts.pop()  # the empty text after the last newline is no line
    for part in parts:
        lines.append((offset, part))
        offset += len(part) + 1
    return lines


def _read_all(data: bytes, piece_bytes: int, block: int, limit: int) -> list[tuple[int, bytes | LongLine]]:
    read = lambda offset, size: data[offset : offset + size]  # noqa: E731 - a reader over bytes
    return [
        line
        for start, end in plan_pieces(len(data), piece_bytes)
        for line in piece_lines(read, start, end, len(data), block=block, limit=limit)
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_CHUNKS, max_size=120).map(b"".join),
    st.integers(min_value=1, max_value=130),
    st.integers(min_value=1, max_value=17),
    st.integers(min_value=1, max_value=40),
)
def test_each_line_is_read_exactly_once_whatever_the_piece_size(data, piece_bytes, block, limit) -> None:
    expected = _expected_lines(data)
    got = _read_all(data, piece_bytes, block, limit)
    assert [offset for offset, _ in got] == [offset for offset, _ in expected]
    for (_, line), (_, whole) in zip(got, expected, strict=True):
        if isinstance(line, LongLine):
            # Only a line longer than the limit is cut short, and then it is counted exactly.
            assert len(whole) > limit and line.head == whole[:limit] and line.size == len(whole)
            text = whole.decode().removesuffix("\r")
            assert (line.chars, line.blank, line.json_blank) == (len(text), not text.strip(), not text.strip(" \t\r"))
        else:
            assert line == whole


def test_a_line_straddling_a_boundary_belongs_to_the_piece_it_starts_in() -> None:
    data = b"first line\nsecond line\r\n\nlast line without newline"
    # Boundaries inside "second", right after a newline, and inside the last line.
    for piece_bytes in (1, 3, 11, 12, 13, 25, 26):
        assert _read_all(data, piece_bytes, block=4, limit=100) == [
            (0, b"first line"),
            (11, b"second line\r"),
            (24, b""),
            (25, b"last line without newline"),
        ]


def test_pieces_cover_the_file_and_an_empty_file_is_one() -> None:
    assert plan_pieces(0, 64) == [(0, 0)]
    assert plan_pieces(64, 64) == [(0, 64)]
    assert plan_pieces(130, 64) == [(0, 64), (64, 128), (128, 130)]
    with pytest.raises(ValueError, match="at least one byte"):
        plan_pieces(10, 0)


def _record(n: int, timestamp: str = "2026-10-25T01:30:00Z", meter: str = "m1", consumption: object = 0.5) -> str:
    return json.dumps(
        {"record_id": f"r{n}", "meterpoint_id": meter, "interval_start": timestamp, "consumption": consumption}
    )


#: Lines of a landing file: readings, repeated autumn local times (the parser remembers them per
#: file), hostile and broken records, blanks, and lines over the (lowered) length limit.
_LINES = st.sampled_from(
    [
        _record(1),
        _record(2, meter="m\u2028x"),
        _record(3, "2026-10-25 01:15:00"),  # naive and repeated: first summer, second winter, third quarantined
        _record(4, "2026-10-25 01:15:00"),
        _record(5, "20261025T0115", meter="m2"),
        _record(6, "2026-10-25T01:15:00+01:00"),
        _record(7, consumption=-1),
        _record(8, "2026-03-29 01:30:00"),
        _record(1),  # a record id twice in one file
        '{"record_id": "d", "meterpoint_id": "m1", "consumption": 1, "consumption": 2}',
        "[1, 2]",
        "{not json",
        "",
        "   ",
        "\r",
        "x" * 70,  # over the lowered line length: quarantined as too long
        json.dumps({"note": "y" * 60}),
        "é" * 120,  # over the piece reader's lowered limit too: read as a long line
        json.dumps({"note": "w" * 300}),
        " " * 250,  # a long blank line is still no record
    ]
)


def _file(folder: Path, data: bytes) -> LandingFile:
    path = folder / f"ingestion_hour={HOUR}" / "f.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return LandingFile(HOUR, str(path), f"ingestion_hour={HOUR}/f.json", len(data), "1")


def _whole(data: bytes) -> list[parse.ParsedRow]:
    hour = datetime(2026, 10, 25, 2, tzinfo=UTC)
    return parse_landing_file(data, f"ingestion_hour={HOUR}/f.json", hour, ZoneInfo(LONDON))


@pytest.fixture
def small_limits(monkeypatch) -> None:
    """Lines over 48 characters are too long, quarantine keeps 40 of them, the piece reader 200 bytes at most."""
    monkeypatch.setattr(parse, "MAX_LINE_CHARS", 48)
    monkeypatch.setattr(parse, "RAW_TEXT_LIMIT", 40)
    monkeypatch.setattr(pieces, "LINE_LIMIT", 4 * 48 + 8)
    monkeypatch.setattr(pieces, "READ_BLOCK", 64)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(_LINES, max_size=40),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.booleans(),
    st.integers(min_value=1, max_value=400),
)
def test_reading_in_pieces_gives_every_record_the_row_a_whole_file_read_gives(
    small_limits, lines, newline, final_newline, bom, piece_bytes
) -> None:
    data = (codecs.BOM_UTF8 if bom else b"") + (newline.join(lines) + (newline if final_newline else "")).encode()
    with tempfile.TemporaryDirectory() as folder:
        listed = _file(Path(folder), data)
        assert read_locally([listed], LONDON, {}, parse.DEFAULT_MAX_READING_KWH, piece_bytes) == _whole(data)


@pytest.mark.parametrize(
    "data",
    [
        # Split documents: on one line, pretty-printed, columns after the data, truncated, and broken.
        json.dumps(
            {
                "columns": ["interval_start", "consumption_delta", "meterpoint_id"],
                "data": [["2026-10-25 01:30:00", 0.1 * i, f"m{i % 2}"] for i in range(30)] + [["x"], "y", 1e400],
            }
        ).encode(),
        json.dumps(
            {
                "data": [["2026-10-25T01:30:00Z", i, "m1"] for i in range(30)],
                "columns": ["consumption_delta", "interval_start", "meterpoint_id"],
            },
            indent=2,
        ).encode(),
        json.dumps({"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": [[1, 2, 3]] * 40})[
            :-20
        ].encode(),
        json.dumps({"columns": ["a"], "data": [[1]] * 40}, indent=1).encode(),
        b'{"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": [], "data": []}' + b" " * 80,
        # One JSON value and nothing else; no JSON object on any line; bytes that are not UTF-8 or NUL late in the file.
        (_record(1) + "\n" + " \n" * 60).encode(),
        json.dumps({"a": list(range(40))}, indent=1).encode(),
        b"not json at all\n" * 20,
        (_record(1) + "\n").encode() * 20 + b"\xe2\x82\n" + (_record(2) + "\n").encode(),
        (_record(1) + "\n").encode() * 20 + b"\x00",
        b" \n\t\r\n" * 40,
    ],
)
@pytest.mark.parametrize("piece_bytes", [5, 64, 333])
def test_whole_file_decisions_are_the_same_in_pieces(small_limits, tmp_path, data, piece_bytes) -> None:
    listed = _file(tmp_path, data)
    assert read_locally([listed], LONDON, {}, parse.DEFAULT_MAX_READING_KWH, piece_bytes) == _whole(data)


def test_a_utf16_file_over_one_piece_is_quarantined_with_the_size_limit(tmp_path) -> None:
    data = "\n".join(_record(n) for n in range(40)).encode("utf-16")
    listed = _file(tmp_path, data)
    [row] = read_locally([listed], LONDON, {}, parse.DEFAULT_MAX_READING_KWH, 1024)
    assert (row.line_number, row.reason) == (0, "unreadable_file")
    assert row.detail.startswith(f"UTF-16 file of {len(data)} bytes: files over the piece size (1024 bytes) are read")
    # Within one piece it is read as before.
    assert read_locally([listed], LONDON, {}, parse.DEFAULT_MAX_READING_KWH, len(data)) == _whole(data)
