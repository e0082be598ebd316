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

from billing_assets.domain.timestamps import hour_key, parse_hour_key
from billing_assets.landing.parse import ParsedRow, parse_landing_file
from billing_assets.resources.landing import LandingFile
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
_FILES_SCHEMA = "ingestion_hour string, uri string, name string, rejected string"


def _rows_to_batch(ingestion_hour: str, rows: list[ParsedRow]) -> pa.RecordBatch:
    columns = {
        "ingestion_hour": [ingestion_hour] * len(rows),
        "source_file": [r.source_file for r in rows],
        "line_number": [r.line_number for r in rows],
        "record_id": [r.record_id for r in rows],
        "meterpoint_id": [r.meterpoint_id for r in rows],
        "interval_start": [r.interval_start for r in rows],
        "consumption": [r.consumption for r in rows],
        "recording_hour": [hour_key(r.interval_start) if r.interval_start else None for r in rows],
        "reason": [r.reason for r in rows],
        "detail": [r.detail for r in rows],
        "raw": [r.raw for r in rows],
    }
    return pa.RecordBatch.from_pydict(columns, schema=PARSED_SCHEMA)


def _file_parser(timezone: str, storage_options: dict):
    """The per-partition function shipped to executors (closes over plain values only)."""

    def parse_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import fsspec

        zone = ZoneInfo(timezone)
        for batch in batches:
            for row in batch.to_pylist():
                hour = row["ingestion_hour"]
                if row["rejected"]:
                    rows = [ParsedRow(row["name"], 0, reason="unsafe_file_name", detail=row["rejected"], raw="")]
                else:
                    # A read error (permissions, network) fails the task: retrying is right,
                    # quarantining a file we never saw would be wrong. A file gone since the
                    # listing will not come back on a retry: it is quarantined, the batch goes on.
                    try:
                        with fsspec.open(row["uri"], "rb", **storage_options) as handle:
                            data = handle.read()
                    except FileNotFoundError:
                        detail = "the file was listed but had disappeared when it was read"
                        rows = [ParsedRow(row["name"], 0, reason="unreadable_file", detail=detail, raw="")]
                    else:
                        rows = parse_landing_file(data, row["name"], parse_hour_key(hour), zone)
                yield _rows_to_batch(hour, rows)

    return parse_files


def parse_landing_files(
    spark: SparkSession, files: Sequence[LandingFile], timezone: str, storage_options: dict
) -> DataFrame:
    """Every record of ``files`` as a row of ``PARSED_SCHEMA`` (readings and quarantine rows)."""
    listing = [(f.ingestion_hour, f.uri, f.name, f.rejected) for f in files]
    if not listing:
        return spark.createDataFrame([], from_arrow_schema(PARSED_SCHEMA))
    # Spark Connect has no SparkContext to ask for the cluster's cores: the session's shuffle
    # parallelism is the width this pipeline is configured for.
    slices = max(1, min(len(listing), int(spark.conf.get("spark.sql.shuffle.partitions")) * 2))
    frame = spark.createDataFrame(listing, _FILES_SCHEMA).repartition(slices)
    return frame.mapInArrow(_file_parser(timezone, storage_options), from_arrow_schema(PARSED_SCHEMA))
