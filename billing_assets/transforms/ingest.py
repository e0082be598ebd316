"""Read and parse landing files on the Spark executors.

The driver only lists files; each task opens its files through fsspec (local or S3, so no
``s3a`` connector is needed), parses them with ``landing.parse`` and yields Arrow batches.
Readings and quarantine rows travel in one frame, told apart by ``reason``.
"""

from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from billing_assets import settings
from billing_assets.domain.timestamps import parse_hour_key, recording_hour_key
from billing_assets.landing.files import LandingFile, NotARegularFile, read_landing_file
from billing_assets.landing.parse import ParsedRow, parse_landing_file
from billing_assets.tables.schemas import UTC_TIMESTAMP

PARSED_SCHEMA = pa.schema(
    [
        ("ingestion_hour", pa.string()),
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
        ("record_id", pa.string()),
        ("meterpoint_id", pa.string()),
        ("interval_start", UTC_TIMESTAMP),
        ("consumption", pa.float64()),
        ("recording_hour", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)
_FILES_SCHEMA = "ingestion_hour string, uri string, root string, name string, rejected string, rejected_reason string"


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


def _whole_file(name: str, reason: str, detail: str) -> list[ParsedRow]:
    """The one quarantine row of a file that is not read or not parsed (line 0: the whole file)."""
    return [ParsedRow(name, 0, reason=reason, detail=detail, raw="")]


def _file_rows(row: dict, zone: ZoneInfo, storage_options: dict, max_reading_kwh: float) -> list[ParsedRow]:
    """The rows of one listed file; total: any failure to read or parse it becomes a quarantine row."""
    name = row["name"]
    if row["rejected"]:
        return _whole_file(name, row["rejected_reason"], row["rejected"])
    try:
        data = read_landing_file(row["uri"], row["root"], storage_options)
    except NotARegularFile as exc:
        return _whole_file(name, "not_a_regular_file", str(exc))
    except FileNotFoundError:
        return _whole_file(name, "unreadable_file", "the file was listed but had disappeared when it was read")
    except OSError as exc:
        # Permissions, a link loop, a network failure after the client's own retries: this file
        # is quarantined and the batch goes on; re-running the hour once it is fixed reads it again.
        return _whole_file(name, "unreadable_file", f"{type(exc).__name__}: {exc}")
    try:
        return parse_landing_file(data, name, parse_hour_key(row["ingestion_hour"]), zone, max_reading_kwh)
    except Exception as exc:  # noqa: BLE001 - the parser is meant to be total; a bug in it must not stop the batch
        return _whole_file(name, "parser_error", f"parser error {type(exc).__name__}: {exc}"[:1000])


def _file_parser(timezone: str, storage_options: dict, max_reading_kwh: float):
    """The per-partition function shipped to executors (closes over plain values only)."""

    def parse_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        zone = ZoneInfo(timezone)
        for batch in batches:
            for row in batch.to_pylist():
                rows = _file_rows(row, zone, storage_options, max_reading_kwh)
                yield rows_to_batch(row["ingestion_hour"], rows, timezone)

    return parse_files


def parse_landing_files(
    spark: SparkSession,
    files: Sequence[LandingFile],
    timezone: str,
    storage_options: dict,
    max_reading_kwh: float | None = None,
) -> DataFrame:
    """Every record of ``files`` as a row of ``PARSED_SCHEMA`` (readings and quarantine rows)."""
    listing = [(f.ingestion_hour, f.uri, f.root, f.name, f.rejected, f.rejected_reason) for f in files]
    if not listing:
        return spark.createDataFrame([], from_arrow_schema(PARSED_SCHEMA))
    # Spark Connect has no SparkContext to ask for the cluster's cores: the session's shuffle
    # parallelism is the width this pipeline is configured for.
    slices = max(1, min(len(listing), int(spark.conf.get("spark.sql.shuffle.partitions")) * 2))
    frame = spark.createDataFrame(listing, _FILES_SCHEMA).repartition(slices)
    ceiling = settings.max_reading_kwh() if max_reading_kwh is None else max_reading_kwh
    return frame.mapInArrow(_file_parser(timezone, storage_options, ceiling), from_arrow_schema(PARSED_SCHEMA))
