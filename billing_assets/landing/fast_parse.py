"""The common case at C speed: a landing file whose every record is a clean reading.

``landing.parse`` is total: it turns any bytes into readings and quarantine rows, one Python
object at a time, and that is the safety net for hostile input. Most files are nothing of the
kind: ASCII JSON lines of exactly the four fields with offset timestamps, or a split-form
document of exactly its three columns, every reading inside the watermark. For those,
pyarrow's JSON reader (C ``json`` for a split document) and compute kernels give the same rows
several times faster.

The fast path never quarantines. It answers ``None`` for any file it cannot prove would give
only accepted readings, and that whole file goes through the safe parser, so both paths give
the same rows and the same reasons by construction; a property test
(``test_fast_parse.py``) feeds both the same arbitrary input.
"""

import io
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from billing_assets.domain.keys import HOUR_KEY_FORMAT, MINUTE_KEY_FORMAT
from billing_assets.domain.record_ids import RECORD_ID_INSTANT, record_id_of
from billing_assets.domain.timestamps import clock_phase
from billing_assets.domain.watermark import acceptance_window
from billing_assets.landing.parse import JSON_LINE_FIELDS, MAX_LINE_CHARS, SPLIT_COLUMNS, loads

_FIELDS = pa.schema(
    [
        ("record_id", pa.string()),
        ("meterpoint_id", pa.string()),
        ("interval_start", pa.string()),
        ("consumption", pa.float64()),
    ]
)
_OPTIONS = pa_json.ParseOptions(explicit_schema=_FIELDS, unexpected_field_behavior="error")
#: Text the safe parser keeps as it is: printable ASCII, no space at either end (``str.strip``
#: would remove it), so the value needs no stripping and holds no unpaired surrogate.
_PLAIN_TEXT = r"^[!-~]([ -~]*[!-~])?$"
#: What ``datetime.fromisoformat`` reads as an aware instant, in the one spelling the fast path
#: takes: whole seconds, ``T``, an offset of ``Z`` or ``±HH:MM`` (Arrow's cast rejects impossible dates).
_HOUR_MINUTE = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_AWARE = f"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T{_HOUR_MINUTE}:[0-5][0-9](?:Z|[+-]{_HOUR_MINUTE})$"
#: A naive local time in the one spelling the fast path takes (``T`` or a space, whole seconds).
_NAIVE = f"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ]{_HOUR_MINUTE}:[0-5][0-9]$"
_NEWLINE, _OPEN, _CLOSE = ord("\n"), ord("{"), ord("}")


def _shaped_as_plain_lines(data: bytes) -> int | None:
    """The number of lines when every line is one ``{...}`` of ASCII without escapes, else ``None``.

    Blank lines (which pyarrow skips but which count in line numbers), carriage returns and
    lines the safe parser calls too long send the file to the safe parser (``plain_readings``
    has already refused non-ASCII, NULs and escapes).
    """
    if b"\r" in data:
        return None
    body = data[:-1] if data.endswith(b"\n") else data
    if not body:
        return None
    raw = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(raw == _NEWLINE)
    if raw[0] != _OPEN or raw[-1] != _CLOSE or (raw[ends + 1] != _OPEN).any() or (raw[ends - 1] != _CLOSE).any():
        return None
    bounds = np.concatenate(([-1], ends, [len(raw)]))
    if np.diff(bounds).max() - 1 > MAX_LINE_CHARS:
        return None
    lines = len(ends) + 1
    # Each key once per line: a key named twice in an object is quarantined by the safe parser.
    if any(body.count(f'"{name}"'.encode()) != lines for name in JSON_LINE_FIELDS):
        return None
    return lines


def _recording_hours(instants: pa.Array, timezone: str) -> pa.Array:
    """``domain.keys.recording_hour_key`` of each instant, vectorised."""
    seconds = clock_phase(timezone)
    phase = pa.scalar(timedelta(seconds=seconds), pa.duration("us"))
    starts = pc.add(pc.floor_temporal(pc.subtract(instants, phase), unit="hour"), phase)
    return pc.strftime(starts, format=MINUTE_KEY_FORMAT if seconds else HOUR_KEY_FORMAT)


def plain_readings(data: bytes, ingestion_hour: datetime, timezone: str, ceiling: float) -> pa.Table | None:
    """The readings of a file whose every record the safe parser would accept, else ``None``.

    Columns: ``line_number``, ``record_id``, ``meterpoint_id``, ``interval_start`` (UTC),
    ``consumption``, ``recording_hour``: the values ``landing.parse`` gives the same records.
    JSON lines and the split form are both read; a split-form document is told apart, as the
    safe parser does, by being one JSON object with ``columns`` and ``data``.
    """
    if not data or not data.isascii() or any(byte in data for byte in (b"\x00", b"\\")):
        return None
    if b'"columns"' in data and b'"data"' in data:
        return _split_readings(data, ingestion_hour, timezone, ceiling)
    return _line_readings(data, ingestion_hour, timezone, ceiling)


def _line_readings(data: bytes, ingestion_hour: datetime, timezone: str, ceiling: float) -> pa.Table | None:
    """``plain_readings`` of a JSON-lines file (pyarrow's reader)."""
    lines = _shaped_as_plain_lines(data)
    if lines is None:
        return None
    try:
        table = pa_json.read_json(io.BytesIO(data), parse_options=_OPTIONS)
    except pa.ArrowInvalid:
        return None
    if table.num_rows != lines or any(table.column(name).null_count for name in _FIELDS.names):
        return None
    record_id, text = table.column("record_id"), table.column("interval_start")
    if not pc.all(pc.match_substring_regex(record_id, _PLAIN_TEXT)).as_py():
        return None
    if not pc.all(pc.match_substring_regex(text, _AWARE)).as_py():
        return None
    try:
        instants = pc.cast(text, pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        return None
    fields = (table.column("meterpoint_id"), instants, table.column("consumption"))
    return _accepted(record_id, *fields, ingestion_hour, timezone, ceiling)


def _split_readings(data: bytes, ingestion_hour: datetime, timezone: str, ceiling: float) -> pa.Table | None:
    """``plain_readings`` of a split-form document (C ``json`` for the document, Arrow for the checks).

    Naive local times go through Arrow's ``assume_timezone``, which refuses a repeated or
    skipped wall-clock time: such a file goes to the safe parser, which places the autumn
    hour's two readings by their order in the file.
    """
    try:
        doc = loads(data.decode("ascii"))
    except (ValueError, RecursionError):
        return None
    if type(doc) is not dict or not isinstance(doc.get("columns"), list) or not isinstance(doc.get("data"), list):
        return None  # a document that names a key twice is a ``_DuplicateKeys``, not a ``dict``
    columns, rows = doc["columns"], doc["data"]
    if not all(type(name) is str for name in columns) or sorted(columns) != sorted(SPLIT_COLUMNS) or not rows:
        return None
    if not all(type(row) is list and len(row) == len(columns) for row in rows):
        return None
    values = dict(zip(columns, zip(*rows, strict=True), strict=True))
    meterpoints, stamps, amounts = values["meterpoint_id"], values["interval_start"], values["consumption_delta"]
    # Exact types: a bool is an int, and ``NaN`` or ``Infinity`` decode as a str subclass.
    if not all(type(v) is str for v in meterpoints) or not all(type(v) is str for v in stamps):
        return None
    if not all(type(v) in (int, float) for v in amounts):
        return None
    try:
        consumption = pa.array(amounts, pa.float64())
        text = pa.array(stamps, pa.string())
        if pc.all(pc.match_substring_regex(text, _NAIVE)).as_py():
            local = pc.cast(text, pa.timestamp("us"))
            instants = pc.assume_timezone(local, timezone=timezone, ambiguous="raise", nonexistent="raise")
            instants = pc.cast(instants, pa.timestamp("us", tz="UTC"))
        elif pc.all(pc.match_substring_regex(text, _AWARE)).as_py():
            instants = pc.cast(text, pa.timestamp("us", tz="UTC"))
        else:
            return None
    except (pa.ArrowInvalid, OverflowError):
        return None
    meterpoint_id = pa.array(meterpoints, pa.string())
    # The split form carries no record id: the safe parser derives it from meterpoint and instant.
    utc = pc.strftime(pc.cast(instants, pa.timestamp("s", tz="UTC")), format=RECORD_ID_INSTANT).to_pylist()
    record_id = pa.array([record_id_of(m, t) for m, t in zip(meterpoints, utc, strict=True)], pa.string())
    return _accepted(record_id, meterpoint_id, instants, consumption, ingestion_hour, timezone, ceiling)


def _accepted(
    record_id: pa.Array,
    meterpoint_id: pa.Array,
    instants: pa.Array,
    consumption: pa.Array,
    ingestion_hour: datetime,
    timezone: str,
    ceiling: float,
) -> pa.Table | None:
    """The readings as ``plain_readings`` gives them when every one would be accepted, else ``None``."""
    if not pc.all(pc.match_substring_regex(meterpoint_id, _PLAIN_TEXT)).as_py():
        return None
    earliest, latest = acceptance_window(ingestion_hour)
    inside = pc.and_(pc.greater_equal(instants, pa.scalar(earliest)), pc.less_equal(instants, pa.scalar(latest)))
    # -0.0 passes, as in the safe parser (``-0.0 < 0`` is false); NaN cannot come from JSON.
    plausible = pc.and_(pc.greater_equal(consumption, 0.0), pc.less_equal(consumption, ceiling))
    if not pc.all(pc.and_(inside, plausible)).as_py():
        return None
    instants = instants.combine_chunks() if isinstance(instants, pa.ChunkedArray) else instants
    return pa.table(
        {
            "line_number": pa.array(np.arange(1, len(instants) + 1, dtype=np.int64)),
            "record_id": record_id,
            "meterpoint_id": meterpoint_id,
            "interval_start": instants,
            "consumption": consumption,
            "recording_hour": _recording_hours(instants, timezone),
        }
    )
