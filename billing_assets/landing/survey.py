"""What a whole-file read decides about a large file, gathered piece by piece.

A file read whole is rejected as a whole for facts anywhere in it (a byte that is not UTF-8,
a NUL, nothing but whitespace, no JSON object on any line), is one split-form document or
JSON lines depending on all of its text, numbers its lines from the top, and resolves a
meter's repeated autumn wall-clock time by the readings earlier in the file. Each piece's
task surveys its own lines for those facts (cheaply: it decodes and splits its text, and
parses only the lines that can matter); ``plan_file`` then combines the surveys, so each
piece is parsed knowing what came before it, and every record gets exactly the row a
whole-file read gives it.
"""

import codecs
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from billing_assets.landing.document import Survey
from billing_assets.landing.parse import (
    RAW_TEXT_LIMIT,
    _decode_line,
    _parse_json_line,
    _Reject,
    _split_columns,
    _split_form,
    file_parser,
)
from billing_assets.landing.pieces import LongLine, Reader, piece_runs

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass
class PieceSurvey:
    """One piece's share of the whole-file facts."""

    #: Lines the piece owns, blank ones included (they are numbered too).
    lines: int = 0
    #: The first byte that is not UTF-8: (file offset, the decoder's reason).
    bad_utf8: tuple[int, str] | None = None
    nul: bool = False
    #: Lines with text (``str.strip``), and lines with more than JSON's whitespace.
    text_lines: int = 0
    json_lines: int = 0
    #: The piece's first line with more than JSON whitespace: (index in the piece, ``split``,
    #: ``value`` or ``no``: whether it decodes alone, to a split-form document or another value).
    first_json: tuple[int, str] | None = None
    has_object: bool = False
    #: [meterpoint, naive local time (ISO), readings]: repeated autumn times counted by the parser.
    repeated_times: list = field(default_factory=list)
    #: The file's first bytes and whether it is UTF-16 (first piece only).
    head: bytes = b""
    utf16: bool = False


def _clock_change_dates_computed(zone_key: str) -> re.Pattern:
    """A pattern for dates (any year) near a change of ``zone_key``'s UTC offset, in ISO forms.

    Only a naive time in a repeated hour touches the parser's per-file memory; such a time's
    text names a date next to an offset change, or is escaped (``\\``) or an ISO week date
    (``W``). Lines matching none of these cannot, so the survey need not parse them.
    """
    zone = ZoneInfo(zone_key)
    days: set[tuple[int, int]] = set()
    day, last = date(1800, 1, 1), None
    while day.year <= 2100:
        offset = datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset()
        if last is not None and offset != last:
            for near in (day - timedelta(days=2), day - timedelta(days=1), day, day + timedelta(days=1)):
                days.add((near.month, near.day))
        last, day = offset, day + timedelta(days=1)
    dates = "|".join(f"{month:02d}-?{dom:02d}" for month, dom in sorted(days))
    return re.compile(rf"\\|W|[0-9]{{4}}-?(?:{dates or 'x^'})")


#: Computed once per zone. A plain dict, not ``functools.lru_cache``: executors get this module
#: pickled by value on a cluster or Spark Connect, and an lru_cache wrapper is pickled by name.
_CLOCK_CHANGE_DATES_KNOWN: dict = {}


def _clock_change_dates(zone_key: str) -> re.Pattern:
    """``_clock_change_dates_computed``, once per zone."""
    if zone_key not in _CLOCK_CHANGE_DATES_KNOWN:
        _CLOCK_CHANGE_DATES_KNOWN[zone_key] = _clock_change_dates_computed(zone_key)
    return _CLOCK_CHANGE_DATES_KNOWN[zone_key]


def _line_status(line: str) -> str:
    value = _decode_line(line)
    if isinstance(value, _Reject):
        return "no"
    return "split" if _split_form(value) else "value"


def survey_piece(
    read: Reader, start: int, end: int, size: int, zone: ZoneInfo, ingestion_hour: datetime, ceiling: float
) -> PieceSurvey:
    """The whole-file facts of the lines owned by piece ``[start, end)``."""
    survey = PieceSurvey()
    bom = False
    if start == 0:
        survey.head = read(0, RAW_TEXT_LIMIT)
        survey.utf16 = survey.head.startswith(_UTF16_BOMS)
        if survey.utf16:
            return survey
        bom = survey.head.startswith(codecs.BOM_UTF8)
    candidate = _clock_change_dates(zone.key)
    counter = file_parser("", ingestion_hour, zone, ceiling)
    for run in piece_runs(read, start, end, size):
        if isinstance(run, LongLine):
            _long_line(survey, run)
            continue
        offset, data = run
        if offset == 0 and bom:
            data, offset = data[3:], 3
        if survey.bad_utf8 is None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                survey.bad_utf8 = (offset + exc.start, exc.reason)
        if survey.bad_utf8 is not None:
            text = data.decode("utf-8", errors="replace")  # the file is rejected; counts still matter
        survey.nul = survey.nul or "\x00" in text
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        for line in lines:
            survey.lines += 1
            line = line.removesuffix("\r")
            if not line.strip(" \t\r"):
                continue
            survey.json_lines += 1
            if survey.first_json is None:
                survey.first_json = (survey.lines - 1, _line_status(line))
            if not line.strip():
                continue
            survey.text_lines += 1
            if not survey.has_object:
                survey.has_object = isinstance(_decode_line(line), dict)
            if candidate.search(line):
                _parse_json_line(counter, 0, line, _decode_line(line))
    survey.repeated_times = [[meter, local.isoformat(), n] for (meter, local), n in counter.seen_local.items()]
    return survey


def _long_line(survey: PieceSurvey, line: LongLine) -> None:
    """A line over the piece reader's limit: counted, checked, never a record (it is too long)."""
    survey.lines += 1
    if survey.bad_utf8 is None and line.bad_utf8 is not None:
        survey.bad_utf8 = line.bad_utf8
    survey.nul = survey.nul or line.nul
    if line.json_blank:
        return
    survey.json_lines += 1
    if survey.first_json is None:
        survey.first_json = (survey.lines - 1, "no")
    if not line.blank:
        survey.text_lines += 1


@dataclass(frozen=True)
class FilePlan:
    """How a large file is read, decided from its pieces' surveys as a whole-file read would decide."""

    #: ``reject`` (one row for the file), ``lines`` (each piece in its own task), ``split`` (a
    #: split-form document, streamed in one task), ``document`` (a streamed survey of the whole
    #: text as one JSON document must decide first).
    kind: str
    reason: str | None = None
    detail: str | None = None
    #: Per piece: the number of its first line and the repeated local times seen before it.
    first_lines: list[int] = field(default_factory=list)
    repeated_before: list[list] = field(default_factory=list)
    #: A split-form document's columns.
    columns: list[str] = field(default_factory=list)


#: ``plan_file``'s ``document`` before the document survey ran.
NOT_SURVEYED = None


@dataclass(frozen=True)
class DocumentOutcome:
    """What a whole-file read makes of a text surveyed as one JSON document (plain values: sent to the driver)."""

    #: The whole text is one JSON value.
    one_value: bool
    #: A split-form document's columns, or why the document is rejected whole.
    columns: list[str] | None = None
    reject: list[str] | None = None


def document_outcome(top: "Survey | None") -> DocumentOutcome:
    """The outcome of a streamed document survey (``None``: not one JSON value)."""
    if top is None:
        return DocumentOutcome(False)
    doc = top.doc()
    if not _split_form(doc):
        return DocumentOutcome(True)
    try:
        return DocumentOutcome(True, columns=_split_columns(doc))
    except _Reject as rej:
        return DocumentOutcome(True, reject=[rej.reason, str(rej)])


def _seen_before(surveys: list[PieceSurvey]) -> list[list]:
    totals: Counter = Counter()
    before = []
    for survey in surveys:
        before.append([[meter, local, n] for (meter, local), n in totals.items()])
        totals.update({(meter, local): n for meter, local, n in survey.repeated_times})
    return before


def plan_file(
    size: int, piece_bytes: int, surveys: list[PieceSurvey], document: DocumentOutcome | None = NOT_SURVEYED
) -> FilePlan:
    """Combine the surveys of a file's pieces (in order) into how it is read.

    ``document`` is the outcome of the streamed survey of the whole text as one JSON
    document, once a plan of kind ``document`` asked for it.
    """
    first = surveys[0]
    if first.utf16:
        return FilePlan(
            "reject",
            "unreadable_file",
            f"UTF-16 file of {size} bytes: files over the piece size ({piece_bytes} bytes) are read in pieces, "
            "which needs UTF-8",
        )
    bad = min((s.bad_utf8 for s in surveys if s.bad_utf8 is not None), default=None)
    if bad is not None:
        # A whole-file decode strips the byte order mark first and counts from after it.
        offset = bad[0] - (3 if first.head.startswith(codecs.BOM_UTF8) else 0)
        return FilePlan("reject", "unreadable_file", f"not UTF-8 text: {bad[1]} at byte {offset}")
    if any(s.nul for s in surveys):
        return FilePlan("reject", "unreadable_file", "binary content (NUL bytes)")
    if not any(s.text_lines for s in surveys):
        return FilePlan("reject", "unreadable_file", "empty file")
    status = next(s.first_json[1] for s in surveys if s.first_json is not None)
    # The first line with JSON text decoding alone is the whole text's value when nothing but
    # whitespace follows; it is a document (perhaps valid) when it does not decode alone.
    alone = status != "no" and sum(s.json_lines for s in surveys) == 1
    if status == "no" or (alone and status == "split"):
        if document is NOT_SURVEYED:
            return FilePlan("document")
        if document.reject:
            return FilePlan("reject", *document.reject)
        if document.columns is not None:
            return FilePlan("split", columns=document.columns)
        whole_value = document.one_value
    else:
        whole_value = alone
    if not whole_value and not any(s.has_object for s in surveys):
        # Typically a truncated split-form document: no record in it can be trusted.
        return FilePlan("reject", "unreadable_file", "neither JSON lines nor a complete split-form document")
    first_lines, number = [], 1
    for survey in surveys:
        first_lines.append(number)
        number += survey.lines
    return FilePlan("lines", first_lines=first_lines, repeated_before=_seen_before(surveys))


def seen_counter(repeated: list[list]) -> Counter:
    """The parser's memory of repeated local times from a plan's ``repeated_before`` entry."""
    return Counter({(meter, datetime.fromisoformat(local)): n for meter, local, n in repeated})
