"""Parse one landing file into readings and quarantine rows (pure Python, no Spark).

Every input record yields exactly one output row: either an accepted reading or a
quarantine row with a reason. A file that cannot be read at all yields one quarantine row
for the whole file. Nothing is dropped silently, so ``records read == rows out``.
"""

import codecs
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from billing_assets.domain.limits import DEFAULT_MAX_READING_KWH
from billing_assets.domain.record_ids import derive_record_id
from billing_assets.domain.timestamps import TimestampError, is_ambiguous, local_to_utc, parse_naive_or_aware, to_utc
from billing_assets.domain.watermark import watermark_reason

#: Quarantine keeps this much of the offending text: enough to diagnose, bounded in size.
RAW_TEXT_LIMIT = 4096
#: Longer lines are not parsed: no meter reading is this long, and parsing one costs memory.
MAX_LINE_CHARS = 1 << 20
SPLIT_COLUMNS = ("interval_start", "consumption_delta", "meterpoint_id")
JSON_LINE_FIELDS = ("record_id", "meterpoint_id", "interval_start", "consumption")
#: Integers longer than this are not converted (Python refuses above 4,300 digits, and no
#: reading needs more than a few); they become infinity, which is above any ceiling.
_MAX_INT_DIGITS = 40


@dataclass(frozen=True)
class ParsedRow:
    """One input record's outcome: a reading (``reason is None``) or a quarantine entry."""

    source_file: str
    line_number: int
    record_id: str | None = None
    meterpoint_id: str | None = None
    interval_start: datetime | None = None
    consumption: float | None = None
    reason: str | None = None
    detail: str | None = None
    raw: str | None = None


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _clip(text: str) -> str:
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + f"... [{len(text)} chars]"


def decode_text(data: bytes) -> str:
    """Decode landing bytes: UTF-8 (BOM tolerated) or BOM-marked UTF-16; anything else is rejected."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _Reject("unreadable_file", f"invalid UTF-16: {exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Reject("unreadable_file", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if "\x00" in text:
        raise _Reject("unreadable_file", "binary content (NUL bytes)")
    return text


class _NonFinite(str):
    """``NaN`` / ``Infinity`` / ``-Infinity`` as written: JSON has no such numbers."""


def _json_int(text: str) -> int | float:
    return int(text) if len(text) <= _MAX_INT_DIGITS else float(text)


class _DuplicateKeys(dict):
    """A JSON object that named a key twice; ``duplicates`` lists the keys."""

    duplicates: list[str]


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    # The standard decoder keeps the last of two equal keys; a record that says two things is
    # quarantined rather than silently read as one of them.
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _DuplicateKeys(obj)
    marked.duplicates = sorted({k for k, _ in pairs if sum(1 for other, _ in pairs if other == k) > 1})
    return marked


def loads(text: str) -> object:
    """``json.loads`` that keeps every number bounded and marks duplicate keys and non-JSON constants."""
    return json.loads(text, parse_int=_json_int, parse_constant=_NonFinite, object_pairs_hook=_json_object)


def _consumption(value: object, ceiling: float) -> float:
    if isinstance(value, _NonFinite):
        raise _Reject("invalid_consumption", f"consumption is not finite: {value}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject("invalid_consumption", f"consumption is not a number: {value!r}")
    number = float(value)
    if number < 0:
        raise _Reject("invalid_consumption", f"consumption is negative: {value!r}")
    if not number <= ceiling:
        raise _Reject("implausible_consumption", f"consumption {number:g} kWh is above the ceiling of {ceiling:g} kWh")
    return number


def _encodable(value: str, name: str) -> str:
    # A JSON escape can carry a lone surrogate, which no UTF-8 table can store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Reject("invalid_field", f"{name} holds an unpaired surrogate: {value!r}") from None
    return value


def _text_field(record: dict, name: str) -> str:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Reject("missing_field", f"{name} is missing or empty")
    if not isinstance(value, str) or isinstance(value, _NonFinite):
        raise _Reject("invalid_field", f"{name} is not a string: {value!r}")
    return _encodable(value.strip(), name)


class _FileParser:
    """Turns the records of one file into rows; remembers repeated local times per meter."""

    def __init__(
        self,
        source_file: str,
        ingestion_hour: datetime,
        zone: ZoneInfo,
        ceiling: float,
        seen_local: Counter | None = None,
    ) -> None:
        self.source_file = source_file
        self.ingestion_hour = ingestion_hour
        self.zone = zone
        self.ceiling = ceiling
        #: (meterpoint, naive local time) -> readings seen at that repeated time, earlier in the file.
        self.seen_local: Counter[tuple[str, datetime]] = Counter(seen_local or ())

    def _to_utc(self, meterpoint_id: str, value: object) -> datetime:
        parsed = parse_naive_or_aware(value)
        if parsed.tzinfo is not None:
            return to_utc(parsed)
        # The repeated autumn hour: within one file, a meter's first reading at an ambiguous
        # wall-clock time is the summer-time one, its second the winter-time one. A third has
        # no hour left to be in: placing it on either would count one half hour twice.
        fold = 0
        if is_ambiguous(parsed, self.zone):
            key = (meterpoint_id, parsed)
            seen = self.seen_local[key]
            self.seen_local[key] += 1
            if seen >= 2:
                raise TimestampError(
                    "ambiguous_local_time",
                    f"reading number {seen + 1} of {meterpoint_id} at {parsed.isoformat()} in this file: "
                    "the repeated hour holds two",
                )
            fold = seen
        return local_to_utc(parsed, self.zone, fold)

    def reading(self, line_number: int, raw: str, record_id: str | None, fields: dict) -> ParsedRow:
        """Validate one record's fields; a failure becomes a quarantine row."""
        try:
            if isinstance(fields, _DuplicateKeys):
                raise _Reject("malformed_record", f"keys given more than once: {fields.duplicates}")
            meterpoint_id = _text_field(fields, "meterpoint_id")
            if "interval_start" not in fields or fields["interval_start"] is None:
                raise _Reject("missing_field", "interval_start is missing")
            if "consumption" not in fields or fields["consumption"] is None:
                raise _Reject("missing_field", "consumption is missing")
            try:
                interval_start = self._to_utc(meterpoint_id, fields["interval_start"])
            except TimestampError as exc:
                raise _Reject(exc.reason, str(exc)) from None
            consumption = _consumption(fields["consumption"], self.ceiling)
            if record_id is None:
                record_id = derive_record_id(meterpoint_id, interval_start)
            late = watermark_reason(interval_start, self.ingestion_hour)
            if late:
                raise _Reject(late, f"interval_start {interval_start.isoformat()} outside the watermark")
        except _Reject as rej:
            return self.reject(line_number, rej.reason, str(rej), raw, record_id)
        return ParsedRow(self.source_file, line_number, record_id, meterpoint_id, interval_start, consumption)

    def reject(self, line_number: int, reason: str, detail: str, raw: str, record_id: str | None = None) -> ParsedRow:
        """A quarantine row for one record (or, with line 0, the whole file)."""
        return ParsedRow(self.source_file, line_number, record_id, reason=reason, detail=detail, raw=_clip(raw))


def _split_form(doc: object) -> bool:
    return isinstance(doc, dict) and "columns" in doc and "data" in doc


def _split_columns(doc: dict) -> list[str]:
    """The column names of a split document, or ``_Reject`` when no row of it can be read."""
    columns = doc["columns"]
    if isinstance(doc, _DuplicateKeys):
        raise _Reject("unreadable_file", f"split-form document names keys more than once: {doc.duplicates}")
    if (
        not isinstance(columns, list)
        or not all(isinstance(name, str) for name in columns)
        or not set(SPLIT_COLUMNS) <= set(columns)
        or not isinstance(doc["data"], list)
    ):
        raise _Reject("unreadable_file", f"split-form file lacks columns {SPLIT_COLUMNS}: {columns!r}")
    return columns


def split_row(parser: _FileParser, index: int, values: object, columns: list[str]) -> ParsedRow:
    """The row of the ``index``-th (from 1) element of a split document's ``data``, given its checked columns."""
    raw = json.dumps(values, default=str)
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        return parser.reject(index, "malformed_record", f"columns named more than once: {repeated}", raw)
    if not isinstance(values, list) or len(values) != len(columns):
        return parser.reject(index, "malformed_record", f"row does not match {len(columns)} columns", raw)
    fields = dict(zip(columns, values, strict=True))
    fields["consumption"] = fields.pop("consumption_delta")
    return parser.reading(index, raw, None, fields)


def _parse_split(parser: _FileParser, doc: dict) -> list[ParsedRow]:
    columns = _split_columns(doc)
    return [split_row(parser, index, values, columns) for index, values in enumerate(doc["data"], start=1)]


def _decode_line(line: str) -> object:
    """The JSON value of one line, or the exception explaining why there is none."""
    if len(line) > MAX_LINE_CHARS:
        return _Reject("line_too_long", f"line of {len(line)} chars exceeds {MAX_LINE_CHARS}")
    try:
        return loads(line)
    except (ValueError, RecursionError) as exc:
        return _Reject("malformed_json", f"invalid JSON: {exc}")


def _parse_json_line(parser: _FileParser, line_number: int, line: str, record: object) -> ParsedRow:
    if isinstance(record, _Reject):
        return parser.reject(line_number, record.reason, str(record), line)
    if not isinstance(record, dict):
        return parser.reject(line_number, "malformed_record", "a reading must be a JSON object", line)
    try:
        record_id = _text_field(record, "record_id")
    except _Reject as rej:
        return parser.reject(line_number, rej.reason, str(rej), line)
    return parser.reading(line_number, line, record_id, record)


def json_lines(text: str) -> list[tuple[int, str]]:
    """Numbered non-blank lines; only ``\n`` (optionally ``\r\n``) ends one, as JSON lines define."""
    # str.splitlines also splits on U+2028, U+2029, form feeds and more, which JSON allows
    # inside strings: it would cut one record in two.
    numbered = ((n, line.removesuffix("\r")) for n, line in enumerate(text.split("\n"), start=1))
    return [(n, line) for n, line in numbered if line.strip()]


def line_rows(parser: _FileParser, first_number: int, text: str) -> list[ParsedRow]:
    """The rows of a run of whole JSON lines (as ``json_lines`` splits them) whose first is line ``first_number``."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # not a line of this run: what follows its last ``\n`` belongs to the next
    numbered = ((n, line.removesuffix("\r")) for n, line in enumerate(lines, start=first_number))
    return [_parse_json_line(parser, n, line, _decode_line(line)) for n, line in numbered if line.strip()]


def long_line_row(parser: _FileParser, number: int, head: str, chars: int) -> ParsedRow:
    """The quarantine row of a line over ``MAX_LINE_CHARS`` known by its first characters and its length."""
    detail = f"line of {chars} chars exceeds {MAX_LINE_CHARS}"
    # The text ``_clip`` would keep of the whole line.
    raw = head[:RAW_TEXT_LIMIT] + f"... [{chars} chars]"
    return ParsedRow(parser.source_file, number, reason="line_too_long", detail=detail, raw=raw)


def file_parser(
    source_file: str, ingestion_hour: datetime, zone: ZoneInfo, ceiling: float, seen_local: Counter | None = None
) -> _FileParser:
    """A parser for the records of one file (or of a piece of it, continuing from ``seen_local``)."""
    return _FileParser(source_file, ingestion_hour, zone, ceiling, seen_local)


def reject_file(parser: _FileParser, reason: str, detail: str, preview: bytes) -> ParsedRow:
    """The one quarantine row of a whole file, with its first bytes as the raw text."""
    return parser.reject(0, reason, detail, preview[:RAW_TEXT_LIMIT].decode("utf-8", errors="replace"))


def parse_landing_file(
    data: bytes,
    source_file: str,
    ingestion_hour: datetime,
    zone: ZoneInfo,
    max_reading_kwh: float = DEFAULT_MAX_READING_KWH,
) -> list[ParsedRow]:
    """Parse a landing file in either format; the format is told apart by content."""
    parser = _FileParser(source_file, ingestion_hour, zone, max_reading_kwh)
    try:
        text = decode_text(data)
        if not text.strip():
            raise _Reject("unreadable_file", "empty file")
        try:
            whole = loads(text)
        except (ValueError, RecursionError):
            whole = None
        if _split_form(whole):
            return _parse_split(parser, whole)
        lines = [(n, line, _decode_line(line)) for n, line in json_lines(text)]
        if whole is None and not any(isinstance(value, dict) for _, _, value in lines):
            # Typically a truncated split-form document: no record in it can be trusted.
            raise _Reject("unreadable_file", "neither JSON lines nor a complete split-form document")
        return [_parse_json_line(parser, n, line, value) for n, line, value in lines]
    except _Reject as rej:
        return [reject_file(parser, rej.reason, str(rej), data)]
