"""The common case at C speed: a JSON-lines file whose every record is a clean reading.

``landing.parse`` is total: it turns any bytes into readings and quarantine rows, one Python
object at a time, and that is the safety net for hostile input. Most files are nothing of the
kind: ASCII JSON lines, one object of exactly the four fields per line, timestamps with an
offset, every reading inside the watermark. For those, pyarrow's JSON reader and compute
kernels give the same rows several times faster.

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
from billing_assets.domain.timestamps import clock_phase
from billing_assets.domain.watermark import acceptance_window
from billing_assets.landing.parse import JSON_LINE_FIELDS, MAX_LINE_CHARS

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
_NEWLINE, _OPEN, _CLOSE = ord("\n"), ord("{"), ord("}")


def _shaped_as_plain_lines(data: bytes) -> int | None:
    """The number of lines when every line is one ``{...}`` of ASCII without escapes, else ``None``.

    Blank lines (which pyarrow skips but which count in line numbers), carriage returns, NULs,
    escapes (a key can be spelled with them) and lines the safe parser calls too long all send
    the file to the safe parser.
    """
    if not data or not data.isascii() or any(byte in data for byte in (b"\x00", b"\r", b"\\")):
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
    """The readings of a file whose every line the safe parser would accept, else ``None``.

    Columns: ``line_number``, ``record_id``, ``meterpoint_id``, ``interval_start`` (UTC),
    ``consumption``, ``recording_hour``: the values ``landing.parse`` gives the same lines.
    """
    lines = _shaped_as_plain_lines(data)
    if lines is None:
        return None
    try:
        table = pa_json.read_json(io.BytesIO(data), parse_options=_OPTIONS)
    except pa.ArrowInvalid:
        return None
    if table.num_rows != lines or any(table.column(name).null_count for name in _FIELDS.names):
        return None
    record_id, meterpoint_id = table.column("record_id"), table.column("meterpoint_id")
    text, consumption = table.column("interval_start"), table.column("consumption")
    shaped = [pc.match_substring_regex(column, _PLAIN_TEXT) for column in (record_id, meterpoint_id)]
    shaped.append(pc.match_substring_regex(text, _AWARE))
    if not all(pc.all(matches).as_py() for matches in shaped):
        return None
    try:
        instants = pc.cast(text, pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        return None
    earliest, latest = acceptance_window(ingestion_hour)
    inside = pc.and_(pc.greater_equal(instants, pa.scalar(earliest)), pc.less_equal(instants, pa.scalar(latest)))
    # -0.0 passes, as in the safe parser (``-0.0 < 0`` is false); NaN cannot come from JSON.
    plausible = pc.and_(pc.greater_equal(consumption, 0.0), pc.less_equal(consumption, ceiling))
    if not pc.all(pc.and_(inside, plausible)).as_py():
        return None
    instants = instants.combine_chunks()
    return pa.table(
        {
            "line_number": pa.array(np.arange(1, lines + 1, dtype=np.int64)),
            "record_id": record_id,
            "meterpoint_id": meterpoint_id,
            "interval_start": instants,
            "consumption": consumption,
            "recording_hour": _recording_hours(instants, timezone),
        }
    )
