"""The Delta tables of the warehouse: names, columns and partition columns (the output contract)."""

from dataclasses import dataclass

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: its folder name, Arrow schema and single partition column."""

    name: str
    schema: pa.Schema
    partition_by: str


RAW_READINGS = TableSpec(
    "raw_readings",
    pa.schema(
        [
            ("record_id", pa.string()),
            ("meterpoint_id", pa.string()),
            ("interval_start", UTC_TIMESTAMP),
            ("consumption", pa.float64()),
            ("recording_hour", pa.string()),
            ("source_file", pa.string()),
            ("line_number", pa.int64()),
            ("ingestion_hour", pa.string()),
        ]
    ),
    "ingestion_hour",
)

QUARANTINED_READINGS = TableSpec(
    "quarantined_readings",
    pa.schema(
        [
            ("source_file", pa.string()),
            ("line_number", pa.int64()),
            ("record_id", pa.string()),
            ("reason", pa.string()),
            ("detail", pa.string()),
            ("raw", pa.string()),
            ("ingestion_hour", pa.string()),
        ]
    ),
    "ingestion_hour",
)

DEDUPLICATED_RAW = TableSpec(
    "deduplicated_raw",
    pa.schema(
        [
            ("record_id", pa.string()),
            ("meterpoint_id", pa.string()),
            ("interval_start", UTC_TIMESTAMP),
            ("consumption", pa.float64()),
            ("ingestion_hour", pa.string()),
            ("source_file", pa.string()),
            ("line_number", pa.int64()),
            ("recording_hour", pa.string()),
        ]
    ),
    "recording_hour",
)

HOURLY_USAGE = TableSpec(
    "hourly_usage",
    pa.schema(
        [
            ("meterpoint_id", pa.string()),
            ("usage_hour", UTC_TIMESTAMP),
            ("consumption", pa.float64()),
            ("reading_count", pa.int64()),
            ("recording_hour", pa.string()),
        ]
    ),
    "recording_hour",
)

CUMULATIVE_USAGE = TableSpec(
    "cumulative_usage",
    pa.schema(
        [
            ("meterpoint_id", pa.string()),
            ("usage_hour", UTC_TIMESTAMP),
            ("consumption", pa.float64()),
            ("cumulative_consumption", pa.float64()),
            ("billing_month", pa.string()),
        ]
    ),
    "billing_month",
)

ALL_TABLES = (RAW_READINGS, QUARANTINED_READINGS, DEDUPLICATED_RAW, HOURLY_USAGE, CUMULATIVE_USAGE)
