"""The fast path and the safe parser agree: same rows whenever the fast path answers, and it answers for clean files."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_assets.domain.keys import parse_hour_key
from billing_assets.landing.fast_parse import plain_readings
from billing_assets.landing.parse import DEFAULT_MAX_READING_KWH, parse_landing_file
from billing_assets.landing.sample import generate_sample
from billing_assets.transforms.ingest import fast_batch, rows_to_batch

HOUR = datetime(2026, 3, 29, 8, tzinfo=UTC)  # the morning after London's spring change
ZONES = ("Europe/London", "Asia/Kolkata", "America/St_Johns", "Australia/Adelaide")
OFFSETS = ("Z", "+00:00", "+01:00", "+05:30", "-03:30", "+10:30", "-00:00", "+23:59")


def _safe(data: bytes, timezone: str, name: str = "f.json", hour: str = "2026-03-29-08") -> list[dict]:
    rows = parse_landing_file(data, name, parse_hour_key(hour), ZoneInfo(timezone), DEFAULT_MAX_READING_KWH)
    return pa.Table.from_batches([rows_to_batch(hour, rows, timezone)]).to_pylist()


def _fast(data: bytes, timezone: str, name: str = "f.json", hour: str = "2026-03-29-08") -> list[dict] | None:
    readings = plain_readings(data, parse_hour_key(hour), timezone, DEFAULT_MAX_READING_KWH)
    return None if readings is None else fast_batch(hour, name, readings).to_pylist()


def _stamp(minutes: int, offset: str) -> str:
    """An instant ``minutes`` after the ingestion hour, written in local time at ``offset``."""
    shift = (
        timedelta()
        if offset in ("Z", "-00:00")
        else timedelta(hours=int(offset[:3]), minutes=int(offset[0] + offset[4:]))
    )
    local = (HOUR + timedelta(minutes=minutes) + shift).replace(tzinfo=None)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + offset


#: Inside the watermark: from 7 days before the hour to 1 h 5 min after it.
inside = st.integers(-7 * 24 * 60, 65)
#: Printable ASCII that JSON writes without an escape (a quote or backslash needs one).
clean_text = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'), min_size=1, max_size=12
)
clean_stamp = st.builds(_stamp, inside, st.sampled_from(OFFSETS))
clean_consumption = st.one_of(
    st.floats(0, DEFAULT_MAX_READING_KWH), st.integers(0, int(DEFAULT_MAX_READING_KWH)), st.just(-0.0)
)
clean_record = st.fixed_dictionaries(
    {
        "record_id": clean_text,
        "meterpoint_id": clean_text,
        "interval_start": clean_stamp,
        "consumption": clean_consumption,
    }
)

any_text = st.one_of(
    clean_text,
    st.text(max_size=8),
    st.sampled_from(["", " ", " padded", "padded ", "in side", "tab\there", "é", "\u2028", "record_id", "\ud800"]),
    st.integers(),
    st.none(),
)
any_stamp = st.one_of(
    clean_stamp,
    st.builds(_stamp, st.integers(-8 * 24 * 60, 24 * 60), st.sampled_from(OFFSETS)),  # outside the watermark too
    st.builds(lambda s: s[:19], clean_stamp),  # naive local time
    st.builds(lambda s: s.replace("T", " "), clean_stamp),
    st.builds(lambda s: s.replace("T", "t"), clean_stamp),
    st.builds(lambda s: s[:19] + ".5" + s[19:], clean_stamp),
    st.sampled_from(["2026-02-30T00:00:00Z", "2026-03-29T24:00:00Z", "2026-03-29T01:30:00+24:00", "2026-03-29", "x"]),
    st.integers(),
    st.none(),
)
any_consumption = st.one_of(
    clean_consumption,
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**30), 10**30),
    st.sampled_from(["1.5", True, None, [1], {"kwh": 1}]),
)
any_record = st.fixed_dictionaries(
    {},
    optional={
        "record_id": any_text,
        "meterpoint_id": any_text,
        "interval_start": any_stamp,
        "consumption": any_consumption,
    },
).flatmap(lambda record: st.one_of(st.just(record), st.builds(lambda extra: {**record, "note": extra}, any_text)))


def _written(record: dict, how: str) -> str:
    text = json.dumps(record, ensure_ascii=how != "unicode")
    if how == "duplicate key" and text.startswith("{") and len(text) > 2:
        return '{"record_id": "twice", ' + text[1:]
    if how == "escaped key":
        return text.replace('"record_id"', '"record\\u005fid"')
    if how == "spaced":
        return f"  {text}\t"
    if how == "two on a line":
        return text + text
    return text


line = st.one_of(
    st.builds(_written, any_record, st.sampled_from(["plain", "unicode", "duplicate key", "escaped key", "spaced"])),
    st.builds(_written, clean_record, st.sampled_from(["plain", "two on a line"])),
    st.sampled_from(["", "   ", "{", "[1, 2]", "null", '{"columns": [], "data": []}', "NaN", "\x00"]),
)


@st.composite
def files(draw) -> bytes:
    lines = draw(st.lists(line, min_size=1, max_size=8))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))
    data = text.encode("utf-8", errors="surrogatepass")
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + data


@given(files(), st.sampled_from(ZONES))
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_whenever_the_fast_path_answers_it_gives_the_safe_parsers_rows(data: bytes, timezone: str) -> None:
    fast = _fast(data, timezone)
    if fast is not None:
        assert fast == _safe(data, timezone)
        assert all(row["reason"] is None for row in fast)


@given(st.lists(clean_record, min_size=1, max_size=20), st.sampled_from(ZONES), st.booleans())
@settings(max_examples=200, deadline=None)
def test_the_fast_path_answers_for_every_clean_file(
    records: list[dict], timezone: str, ends_with_newline: bool
) -> None:
    data = ("\n".join(json.dumps(record) for record in records) + ("\n" if ends_with_newline else "")).encode()
    fast = _fast(data, timezone)
    assert fast is not None
    assert fast == _safe(data, timezone)
    assert [row["line_number"] for row in fast] == list(range(1, len(records) + 1))


def test_the_sample_landing_zone_goes_the_fast_way_except_its_legacy_and_broken_files(tmp_path) -> None:
    generate_sample(str(tmp_path), meterpoints=40, start=HOUR - timedelta(hours=6), hours=6, seed=3)
    fast_files = safe_files = 0
    for path in sorted(tmp_path.rglob("*.json")):
        data, hour = path.read_bytes(), path.parent.name.removeprefix("ingestion_hour=")
        fast = _fast(data, "Europe/London", path.name, hour)
        if fast is None:
            safe_files += 1
            rows = _safe(data, "Europe/London", path.name, hour)
            # Only the legacy split form (naive local times) and files with a rejected record go the safe way.
            assert data.startswith(b'{"columns"') or any(row["reason"] for row in rows), path
        else:
            fast_files += 1
            assert fast == _safe(data, "Europe/London", path.name, hour)
    assert fast_files > 0 and safe_files > 0


#: The spring change (London skips 01:00-02:00 on 29 March), the autumn one (25 October repeats
#: 01:00-02:00) and a week without a change.
SPLIT_HOURS = ("2026-03-29-08", "2026-10-25-08", "2026-06-15-08")


def _local(hour: str, timezone: str, minutes: int) -> str:
    """The wall-clock time in ``timezone``, without its offset, of an instant ``minutes`` after ``hour``."""
    instant = parse_hour_key(hour) + timedelta(minutes=minutes)
    return instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


def _wall(hour: str, minutes: int) -> str:
    """A wall-clock time ``minutes`` after the hour's own digits: it may be skipped or repeated locally."""
    return (parse_hour_key(hour).replace(tzinfo=None) + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")


@st.composite
def split_files(draw, hour: str, timezone: str) -> bytes:
    columns = draw(
        st.sampled_from(
            [
                ["interval_start", "consumption_delta", "meterpoint_id"],
                ["meterpoint_id", "interval_start", "consumption_delta"],
                ["interval_start", "consumption_delta", "meterpoint_id", "note"],
                ["interval_start", "consumption_delta", "interval_start"],
                ["interval_start", "consumption_delta"],
            ]
        )
    )
    stamp = st.one_of(
        st.builds(_local, st.just(hour), st.just(timezone), inside),
        st.builds(_wall, st.just(hour), st.integers(-8 * 24 * 60, 24 * 60)),
        st.builds(lambda s: s.replace(" ", "T"), st.builds(_local, st.just(hour), st.just(timezone), inside)),
        any_stamp,
    )
    value = {"interval_start": stamp, "consumption_delta": any_consumption, "meterpoint_id": any_text, "note": any_text}
    row = st.tuples(*[value[name] for name in columns]).map(list)
    rows = draw(st.lists(st.one_of(row, row, row, st.just([1, 2]), st.just("x")), max_size=6))
    doc = {"columns": columns, "data": rows, **draw(st.sampled_from([{}, {"source": "legacy"}]))}
    text = json.dumps(doc)
    if draw(st.booleans()) and draw(st.booleans()):
        text = '{"data": [], ' + text[1:]  # a key named twice
    return text.encode("utf-8", errors="surrogatepass")


@given(st.sampled_from(SPLIT_HOURS).flatmap(lambda h: st.tuples(st.just(h), st.sampled_from(ZONES))), st.data())
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_for_the_split_form_too_the_fast_path_gives_the_safe_parsers_rows(place: tuple[str, str], data) -> None:
    hour, timezone = place
    document = data.draw(split_files(hour, timezone))
    fast = _fast(document, timezone, hour=hour)
    if fast is not None:
        assert fast == _safe(document, timezone, hour=hour)


@given(
    st.lists(st.tuples(clean_text, inside, clean_consumption), min_size=1, max_size=20),
    st.sampled_from(ZONES),
    st.permutations(["interval_start", "consumption_delta", "meterpoint_id"]),
)
@settings(max_examples=200, deadline=None)
def test_the_fast_path_answers_for_every_clean_split_document(readings, timezone: str, columns: list[str]) -> None:
    hour = "2026-06-15-08"  # no clock change within a week in any of the zones
    rows = [
        {"interval_start": _local(hour, timezone, minutes), "consumption_delta": kwh, "meterpoint_id": meter}
        for meter, minutes, kwh in readings
    ]
    document = json.dumps({"columns": columns, "data": [[row[name] for name in columns] for row in rows]}).encode()
    fast = _fast(document, timezone, hour=hour)
    assert fast is not None
    assert fast == _safe(document, timezone, hour=hour)
