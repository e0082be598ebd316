"""Read and parse landing files on the Spark executors.

The driver only lists files; each task opens its files through fsspec (local or S3, so no
``s3a`` connector is needed), parses them with ``landing.parse`` and yields Arrow batches of
at most ``BATCH_ROWS`` rows. Readings and quarantine rows travel in one frame, told apart by
``reason``.

A file over the piece size (``BILLING_LANDING_PIECE_MIB``) is never read whole: a first job
surveys its pieces (``landing.survey``), one task each, for what a whole-file read decides
from all of it; the parse job then reads each piece in its own task (``landing.pieces``),
or streams a large split-form document (``landing.document``). Memory per task is bounded
by the piece reader's blocks and the batch size, whatever the file's size.
"""

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from zoneinfo import ZoneInfo

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from billing_assets.domain.keys import parse_hour_key, recording_hour_key
from billing_assets.domain.limits import DEFAULT_MAX_READING_KWH, DEFAULT_PIECE_BYTES

# Names, not the module: a module global is pickled by reference, which a cluster or Spark
# Connect server without this project installed cannot import.
from billing_assets.landing.document import data_rows
from billing_assets.landing.document import survey as survey_document
from billing_assets.landing.fast_parse import plain_readings
from billing_assets.landing.files import LandingFile, NotARegularFile, open_landing_file, read_landing_file
from billing_assets.landing.parse import (
    ParsedRow,
    file_parser,
    line_rows,
    long_line_row,
    parse_landing_file,
    reject_file,
    split_row,
)
from billing_assets.landing.pieces import LongLine, handle_reader, piece_runs, plan_pieces
from billing_assets.landing.survey import (
    DocumentOutcome,
    FilePlan,
    PieceSurvey,
    document_outcome,
    plan_file,
    seen_counter,
    survey_piece,
)
from billing_assets.tables.schemas import arrow_schema

PARSED_SCHEMA = arrow_schema(
    "ingestion_hour string, source_file string, line_number bigint, record_id string, meterpoint_id string,"
    " interval_start timestamp, consumption double, recording_hour string, reason string, detail string, raw string"
)
#: Rows per Arrow batch a parse task hands to Spark: a large file never sits in one batch.
BATCH_ROWS = 32_768
_SURVEY_SCHEMA = pa.schema([("index", pa.int64()), ("survey", pa.string())])
_BOM = b"\xef\xbb\xbf"


def rows_to_batch(ingestion_hour: str, rows: list[ParsedRow], timezone: str = "UTC") -> pa.RecordBatch:
    """Parsed rows as a batch of ``PARSED_SCHEMA``, each reading keyed by its local hour in ``timezone``."""
    columns = {
        "ingestion_hour": [ingestion_hour] * len(rows),
        "source_file": [r.source_file for r in rows],
        "line_number": [r.line_number for r in rows],
        "record_id": [r.record_id for r in rows],
        "meterpoint_id": [r.meterpoint_id for r in rows],
        "interval_start": [r.interval_start for r in rows],
        "consumption": [r.consumption for r in rows],
        "recording_hour": [recording_hour_key(r.interval_start, timezone) if r.interval_start else None for r in rows],
        "reason": [r.reason for r in rows],
        "detail": [r.detail for r in rows],
        "raw": [r.raw for r in rows],
    }
    return pa.RecordBatch.from_pydict(columns, schema=PARSED_SCHEMA)


@dataclass(frozen=True)
class Work:
    """One unit of a parse task (plain values: shipped to the executors)."""

    #: ``whole`` (a file within one piece, read whole), ``piece`` (one piece of a large file),
    #: ``split`` (a large split-form document, streamed) or ``reject`` (a large file quarantined whole).
    kind: str
    ingestion_hour: str
    uri: str
    root: str
    name: str
    size: int = 0
    start: int = 0
    end: int = 0
    first_line: int = 1
    #: The parser's memory of repeated local times from the pieces before this one.
    repeated: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    #: Why a file is quarantined whole: (reason, detail) of the listing or the plan.
    reason: str | None = None
    detail: str | None = None
    preview: bytes = b""


def _whole_file(name: str, reason: str, detail: str) -> list[ParsedRow]:
    """The one quarantine row of a file that is not read or not parsed (line 0: the whole file)."""
    return [ParsedRow(name, 0, reason=reason, detail=detail, raw="")]


def _read_failure(exc: OSError) -> tuple[str, str]:
    """The quarantine (reason, detail) of a file that could not be opened or read."""
    if isinstance(exc, NotARegularFile):
        return "not_a_regular_file", str(exc)
    if isinstance(exc, FileNotFoundError):
        return "unreadable_file", "the file was listed but had disappeared when it was read"
    # Permissions, a link loop, a network failure after the client's own retries: this file
    # is quarantined and the batch goes on; re-running the hour once it is fixed reads it again.
    return "unreadable_file", f"{type(exc).__name__}: {exc}"


def _file_rows(work: Work, zone: ZoneInfo, storage_options: dict, max_reading_kwh: float) -> list[ParsedRow]:
    """The rows of one file read whole; total: any failure to read or parse it becomes a quarantine row."""
    if work.reason:
        return _whole_file(work.name, work.reason, work.detail)
    try:
        data = read_landing_file(work.uri, work.root, storage_options)
    except OSError as exc:
        return _whole_file(work.name, *_read_failure(exc))
    return _parsed_safely(work, data, zone, max_reading_kwh)


def _parsed_safely(work: Work, data: bytes, zone: ZoneInfo, max_reading_kwh: float) -> list[ParsedRow]:
    """The rows ``landing.parse`` gives a whole file's bytes; a bug in it quarantines the file, not the batch."""
    try:
        return parse_landing_file(data, work.name, parse_hour_key(work.ingestion_hour), zone, max_reading_kwh)
    except Exception as exc:  # noqa: BLE001 - the parser is meant to be total; a bug in it must not stop the batch
        return _whole_file(work.name, "parser_error", f"parser error {type(exc).__name__}: {exc}"[:1000])


def fast_batch(ingestion_hour: str, source_file: str, readings: pa.Table) -> pa.Table:
    """``plain_readings``' table of one file as rows of ``PARSED_SCHEMA`` (no quarantine columns)."""
    rows = readings.num_rows
    columns = {
        "ingestion_hour": pa.array([ingestion_hour] * rows, pa.string()),
        "source_file": pa.array([source_file] * rows, pa.string()),
        **{name: readings.column(name) for name in ("line_number", "record_id", "meterpoint_id")},
        "interval_start": readings.column("interval_start"),
        "consumption": readings.column("consumption"),
        "recording_hour": readings.column("recording_hour"),
        **{name: pa.nulls(rows, pa.string()) for name in ("reason", "detail", "raw")},
    }
    return pa.table(columns).cast(PARSED_SCHEMA)


def _whole_file_batches(
    work: Work, zone: ZoneInfo, timezone: str, storage_options: dict, ceiling: float
) -> Iterator[pa.RecordBatch]:
    """The batches of a file read whole: the fast path's when it vouches for every line, else the safe parser's."""
    if work.reason:
        rows = _whole_file(work.name, work.reason, work.detail)
    else:
        try:
            data = read_landing_file(work.uri, work.root, storage_options)
        except OSError as exc:
            rows = _whole_file(work.name, *_read_failure(exc))
        else:
            try:
                readings = plain_readings(data, parse_hour_key(work.ingestion_hour), timezone, ceiling)
            except Exception:  # noqa: BLE001 - the fast path only saves time: if it fails, the safe parser decides
                readings = None
            if readings is not None:
                yield from fast_batch(work.ingestion_hour, work.name, readings).to_batches(max_chunksize=BATCH_ROWS)
                return
            rows = _parsed_safely(work, data, zone, ceiling)
    for first in range(0, len(rows), BATCH_ROWS):
        yield rows_to_batch(work.ingestion_hour, rows[first : first + BATCH_ROWS], timezone)


def _piece_rows(work: Work, zone: ZoneInfo, storage_options: dict, ceiling: float) -> Iterator[list[ParsedRow]]:
    """The rows of one piece of a large JSON-lines file, numbered and parsed as in a whole-file read."""
    parser = file_parser(work.name, parse_hour_key(work.ingestion_hour), zone, ceiling, seen_counter(work.repeated))
    number = work.first_line
    with open_landing_file(work.uri, work.root, storage_options) as handle:
        for run in piece_runs(handle_reader(handle), work.start, work.end, work.size):
            if isinstance(run, LongLine):
                head, chars = run.head, run.chars
                if run.offset == 0 and head.startswith(_BOM):
                    head, chars = head[3:], chars - 1
                if not run.blank:  # a blank line is no record, however long
                    yield [long_line_row(parser, number, head.decode("utf-8", errors="ignore"), chars)]
                number += 1
                continue
            offset, data = run
            if offset == 0 and data.startswith(_BOM):
                data = data[3:]  # a whole-file read decodes with utf-8-sig
            text = data.decode("utf-8")
            yield line_rows(parser, number, text)
            number += text.count("\n") + (0 if text.endswith("\n") else 1)


def _split_rows(work: Work, zone: ZoneInfo, storage_options: dict, ceiling: float) -> Iterator[list[ParsedRow]]:
    """The rows of a large split-form document, its ``data`` elements read one at a time."""
    parser = file_parser(work.name, parse_hour_key(work.ingestion_hour), zone, ceiling)
    rows: list[ParsedRow] = []
    with open_landing_file(work.uri, work.root, storage_options) as handle:
        for index, values in enumerate(data_rows(handle_reader(handle), work.size), start=1):
            rows.append(split_row(parser, index, values, work.columns))
            if len(rows) >= BATCH_ROWS:
                yield rows
                rows = []
    yield rows


def _work_rows(work: Work, zone: ZoneInfo, storage_options: dict, ceiling: float) -> Iterator[list[ParsedRow]]:
    """The rows of one unit of work, a bounded list at a time; total, like ``_file_rows``."""
    if work.kind == "whole":
        yield _file_rows(work, zone, storage_options, ceiling)
        return
    parser = file_parser(work.name, parse_hour_key(work.ingestion_hour), zone, ceiling)
    if work.kind == "reject":
        yield [reject_file(parser, work.reason, work.detail, work.preview)]
        return
    rows = _piece_rows if work.kind == "piece" else _split_rows
    try:
        yield from rows(work, zone, storage_options, ceiling)
    except OSError as exc:
        # The file changed or vanished after its survey: the rest of this piece is quarantined with the file.
        reason, detail = _read_failure(exc)
        yield [parser.reject(0, reason, f"bytes {work.start}-{work.end}: {detail}", "")]
    except Exception as exc:  # noqa: BLE001 - as in _file_rows
        detail = f"parser error in bytes {work.start}-{work.end}: {type(exc).__name__}: {exc}"[:1000]
        yield [parser.reject(0, "parser_error", detail, "")]


def _task_parser(tasks: list[list[Work]], timezone: str, storage_options: dict, ceiling: float):
    """The ``mapInArrow`` function over ``spark.range(len(tasks))``: the rows of each task's work (plain values)."""

    def parse_works(indexes: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        zone = ZoneInfo(timezone)
        for batch in indexes:
            for index in batch.column(0).to_pylist():
                for work in tasks[index]:
                    if work.kind == "whole":
                        yield from _whole_file_batches(work, zone, timezone, storage_options, ceiling)
                        continue
                    for rows in _work_rows(work, zone, storage_options, ceiling):
                        for first in range(0, len(rows), BATCH_ROWS):
                            yield rows_to_batch(work.ingestion_hour, rows[first : first + BATCH_ROWS], timezone)

    return parse_works


def _encode_survey(survey: PieceSurvey | DocumentOutcome | tuple[str, str]) -> str:
    if isinstance(survey, tuple):
        return json.dumps({"failed": list(survey)})
    fields = asdict(survey)
    if "head" in fields:
        fields["head"] = base64.b64encode(fields["head"]).decode()
    return json.dumps({type(survey).__name__: fields})


def _decode_survey(text: str) -> PieceSurvey | DocumentOutcome | tuple[str, str]:
    [(kind, fields)] = json.loads(text).items()
    if kind == "failed":
        return tuple(fields)
    if kind == "DocumentOutcome":
        return DocumentOutcome(**fields)
    fields["head"] = base64.b64decode(fields["head"])
    return PieceSurvey(**fields)


def _survey_work(work: Work, zone: ZoneInfo, storage_options: dict, ceiling: float) -> str:
    """The encoded survey of a piece (``piece``) or of a whole text as one document (``split``)."""
    try:
        with open_landing_file(work.uri, work.root, storage_options) as handle:
            read = handle_reader(handle)
            if work.kind == "piece":
                hour = parse_hour_key(work.ingestion_hour)
                found = survey_piece(read, work.start, work.end, work.size, zone, hour, ceiling)
            else:
                found = document_outcome(survey_document(read, work.size))
    except OSError as exc:
        found = _read_failure(exc)
    return _encode_survey(found)


def _surveyor(works: list[Work], timezone: str, storage_options: dict, ceiling: float):
    """The ``mapInArrow`` function over ``spark.range(len(works))``: each work's encoded survey."""

    def survey(indexes: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        zone = ZoneInfo(timezone)
        for batch in indexes:
            for index in batch.column(0).to_pylist():
                found = _survey_work(works[index], zone, storage_options, ceiling)
                yield pa.RecordBatch.from_pylist([{"index": index, "survey": found}], schema=_SURVEY_SCHEMA)

    return survey


def _run_surveys(spark: SparkSession, works: list[Work], timezone: str, options: dict, ceiling: float) -> list:
    """Each work's survey, in order: one Spark task per piece or document."""
    if not works:
        return []
    indexes = spark.range(len(works), numPartitions=len(works))
    rows = indexes.mapInArrow(_surveyor(works, timezone, options, ceiling), from_arrow_schema(_SURVEY_SCHEMA))
    found = {row["index"]: _decode_survey(row["survey"]) for row in rows.collect()}
    return [found[index] for index in range(len(works))]


def plan_large_files(
    files: Sequence[LandingFile], piece_bytes: int, run_surveys: Callable[[list[Work]], list]
) -> list[Work]:
    """The parse work of files over one piece: surveyed piece by piece (and as documents where needed) first.

    ``run_surveys`` surveys works and returns the decoded surveys in order (a Spark job, or in this process).
    """
    pieces = [
        Work("piece", f.ingestion_hour, f.uri, f.root, f.name, f.size, start, end)
        for f in files
        for start, end in plan_pieces(f.size, piece_bytes)
    ]
    surveys = run_surveys(pieces)
    by_file: dict[str, list[tuple[Work, object]]] = {}
    for work, survey in zip(pieces, surveys, strict=True):
        by_file.setdefault(work.uri, []).append((work, survey))
    plans: dict[str, FilePlan] = {}
    for uri, surveyed in by_file.items():
        failed = next((s for _, s in surveyed if isinstance(s, tuple)), None)
        if failed is not None:
            plans[uri] = FilePlan("reject", *failed)
        else:
            plans[uri] = plan_file(surveyed[0][0].size, piece_bytes, [s for _, s in surveyed])
    # Files whose text may be one JSON document are walked as one, each in its own task.
    documents = [replace(by_file[uri][0][0], kind="split") for uri, plan in plans.items() if plan.kind == "document"]
    for work, outcome in zip(documents, run_surveys(documents), strict=True):
        if isinstance(outcome, tuple):
            plans[work.uri] = FilePlan("reject", *outcome)
        else:
            plans[work.uri] = plan_file(work.size, piece_bytes, [s for _, s in by_file[work.uri]], outcome)
    works: list[Work] = []
    for uri, surveyed in by_file.items():
        plan, (first, survey) = plans[uri], surveyed[0]
        if plan.kind == "reject":
            head = survey.head if isinstance(survey, PieceSurvey) else b""
            works.append(replace(first, kind="reject", reason=plan.reason, detail=plan.detail, preview=head))
        elif plan.kind == "split":
            works.append(replace(first, kind="split", columns=plan.columns))
        else:
            works.extend(
                replace(work, first_line=line, repeated=repeated)
                for (work, _), line, repeated in zip(surveyed, plan.first_lines, plan.repeated_before, strict=True)
            )
    return works


def _text(name: str) -> str:
    """A listed name as storable text: a name that is not UTF-8 (refused unread) keeps its bytes as escapes."""
    return name.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _works(files: Sequence[LandingFile], piece_bytes: int, run_surveys: Callable[[list[Work]], list]) -> list[Work]:
    """The parse work of ``files``: each file within one piece read whole, larger ones planned piece by piece."""
    works = [
        Work("whole", f.ingestion_hour, f.uri, f.root, _text(f.name), reason=f.rejected_reason, detail=f.rejected)
        for f in files
        if f.rejected is not None or f.size <= piece_bytes
    ]
    large = [f for f in files if f.rejected is None and f.size > piece_bytes]
    return works + plan_large_files(large, piece_bytes, run_surveys)


def _tasks(works: list[Work], slices: int) -> list[list[Work]]:
    """Works grouped into tasks: each piece or document alone (they are large), small files spread over ``slices``."""
    large = [[work] for work in works if work.kind in ("piece", "split")]
    small = [work for work in works if work.kind not in ("piece", "split")]
    count = max(1, min(len(small), slices))
    return large + [small[start::count] for start in range(count) if small[start::count]]


@dataclass(frozen=True)
class ParseOptions:
    """How landing files are read: the billing zone, the store's options, the reading ceiling, the piece size.

    Readings above ``max_reading_kwh`` are quarantined; files over ``piece_bytes`` are read in
    pieces. The fields reach the executors inside the tasks, as plain values (never this object).
    """

    timezone: str
    storage_options: dict = field(default_factory=dict)
    max_reading_kwh: float = DEFAULT_MAX_READING_KWH
    piece_bytes: int = DEFAULT_PIECE_BYTES


def parse_landing_files(spark: SparkSession, files: Sequence[LandingFile], options: ParseOptions) -> DataFrame:
    """Every record of ``files`` as a row of ``PARSED_SCHEMA`` (readings and quarantine rows)."""
    timezone, storage_options = options.timezone, options.storage_options
    max_reading_kwh, piece_bytes = options.max_reading_kwh, options.piece_bytes
    if not files:
        return spark.createDataFrame([], from_arrow_schema(PARSED_SCHEMA))
    works = _works(
        files, piece_bytes, lambda todo: _run_surveys(spark, todo, timezone, storage_options, max_reading_kwh)
    )
    # Spark Connect has no SparkContext to ask for the cluster's cores: the session's shuffle
    # parallelism is the width this pipeline is configured for.
    tasks = _tasks(works, int(spark.conf.get("spark.sql.shuffle.partitions")) * 2)
    indexes = spark.range(len(tasks), numPartitions=len(tasks))
    return indexes.mapInArrow(
        _task_parser(tasks, timezone, storage_options, max_reading_kwh), from_arrow_schema(PARSED_SCHEMA)
    )


def read_locally(
    files: Sequence[LandingFile], timezone: str, storage_options: dict, ceiling: float, piece_bytes: int
) -> list[ParsedRow]:
    """The rows ``parse_landing_files`` gives, computed in this process without Spark (tests and tools)."""
    zone = ZoneInfo(timezone)

    def run_surveys(works: list[Work]) -> list:
        return [_decode_survey(_survey_work(work, zone, storage_options, ceiling)) for work in works]

    works = _works(files, piece_bytes, run_surveys)
    return [row for work in works for rows in _work_rows(work, zone, storage_options, ceiling) for row in rows]
