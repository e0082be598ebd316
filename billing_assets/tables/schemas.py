"""The Delta tables of the warehouse: names, columns and partition columns (the output contract)."""

from dataclasses import dataclass

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: its folder name, Arrow schema and single partition column."""

    name: str
    schema: pa.Schema
    #: The partition column; ``None`` for small tables that are always replaced whole.
    partition_by: str | None


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

# --- Dimensions: daily snapshots of the source database, and their type-2 history ---

_SCD2 = [
    ("valid_from_date", pa.date32()),  # first load day on which this version was seen
    ("valid_to_date", pa.date32()),  # first load day on which it was no longer seen; null = current
    ("is_current", pa.bool_()),
    ("row_hash", pa.string()),
]

# Every source id is an opaque string, whatever SQLite type it is stored with: the case study's
# database holds 10-hex-character text ids beside integer ones, and analysts join on equal strings.
AGREEMENT_COLUMNS = [
    ("agreement_id", pa.string()),
    ("agreement_valid_from", pa.date32()),
    ("agreement_valid_to", pa.date32()),
    ("product_id", pa.string()),
    ("meterpoint_id", pa.string()),
    ("account_id", pa.string()),
]
PRODUCT_COLUMNS = [
    ("id", pa.string()),  # the source's surrogate; agreements reference product_id
    ("product_id", pa.string()),
    ("display_name", pa.string()),
    ("is_variable", pa.bool_()),
]
METERPOINT_COLUMNS = [("meterpoint_id", pa.string()), ("region", pa.string())]


@dataclass(frozen=True)
class Dimension:
    """A source table kept as daily snapshots and a type-2 history."""

    source_table: str
    key: str
    columns: tuple[tuple[str, pa.DataType], ...]
    #: Id columns a row cannot do without (the key, and what it must point at).
    required: tuple[str, ...] = ()

    @property
    def ids(self) -> frozenset[str]:
        """The columns holding source ids (``id`` and ``*_id``), read as opaque strings."""
        return frozenset(name for name, _ in self.columns if name == "id" or name.endswith("_id"))

    @property
    def snapshots(self) -> TableSpec:
        """One partition per load day: the source table as it was read that day."""
        return TableSpec(
            f"{self.source_table}_snapshots",
            pa.schema([*self.columns, ("snapshot_date", pa.date32())]),
            "snapshot_date",
        )

    @property
    def history(self) -> TableSpec:
        """Type-2 history: one row per version of each source row."""
        return TableSpec(f"dim_{self.source_table}", pa.schema([*self.columns, *_SCD2]), None)


AGREEMENT = Dimension("agreement", "agreement_id", tuple(AGREEMENT_COLUMNS), ("agreement_id", "meterpoint_id"))
PRODUCT = Dimension("product", "product_id", tuple(PRODUCT_COLUMNS), ("product_id",))
METERPOINT = Dimension("meterpoint", "meterpoint_id", tuple(METERPOINT_COLUMNS), ("meterpoint_id",))
DIMENSIONS = (AGREEMENT, PRODUCT, METERPOINT)

AGREEMENT_DAYS = TableSpec(
    "agreement_days",
    pa.schema(
        [
            ("agreement_id", pa.string()),
            ("meterpoint_id", pa.string()),
            ("account_id", pa.string()),
            ("product_id", pa.string()),
            ("product_display_name", pa.string()),
            ("product_is_variable", pa.bool_()),
            ("covers_readings", pa.bool_()),
            ("is_active", pa.bool_()),
            # Why the readings it covers cannot be attributed to a product (null: they can).
            ("unmatched_reason", pa.string()),
            ("date", pa.date32()),
        ]
    ),
    "date",
)

# --- Gold tables (the analysts' contract) ---

ACTIVE_AGREEMENTS = TableSpec(
    "active_agreements",
    pa.schema(
        [
            ("agreement_id", pa.string()),
            ("meterpoint_id", pa.string()),
            ("product_display_name", pa.string()),
            ("product_is_variable", pa.bool_()),
            ("as_of_date", pa.date32()),
        ]
    ),
    "as_of_date",
)

HALF_HOURLY_CONSUMPTION = TableSpec(
    "half_hourly_consumption",
    pa.schema(
        [
            ("interval_start", UTC_TIMESTAMP),
            ("settlement_period", pa.int32()),
            ("meterpoint_count", pa.int64()),
            ("consumption", pa.float64()),
            ("settlement_date", pa.date32()),
        ]
    ),
    "settlement_date",
)

PRODUCT_DAILY_CONSUMPTION = TableSpec(
    "product_daily_consumption",
    pa.schema(
        [
            ("product_display_name", pa.string()),
            ("meterpoint_count", pa.int64()),
            ("consumption", pa.float64()),
            ("date", pa.date32()),
        ]
    ),
    "date",
)

AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT = TableSpec(
    "avg_consumption_per_half_hour_by_product",
    pa.schema(
        [
            ("interval_start", UTC_TIMESTAMP),
            ("product_display_name", pa.string()),
            ("meterpoint_count", pa.int64()),
            ("consumption", pa.float64()),
            ("avg_consumption", pa.float64()),
            ("settlement_date", pa.date32()),
        ]
    ),
    "settlement_date",
)

UNMATCHED_READINGS = TableSpec(
    "unmatched_readings",
    pa.schema(
        [
            ("record_id", pa.string()),
            ("meterpoint_id", pa.string()),
            ("interval_start", UTC_TIMESTAMP),
            ("consumption", pa.float64()),
            ("reason", pa.string()),
            ("settlement_date", pa.date32()),
        ]
    ),
    "settlement_date",
)

GOLD_TABLES = (
    ACTIVE_AGREEMENTS,
    HALF_HOURLY_CONSUMPTION,
    PRODUCT_DAILY_CONSUMPTION,
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    UNMATCHED_READINGS,
)
ALL_TABLES = (
    RAW_READINGS,
    QUARANTINED_READINGS,
    DEDUPLICATED_RAW,
    HOURLY_USAGE,
    CUMULATIVE_USAGE,
    *(spec for dim in DIMENSIONS for spec in (dim.snapshots, dim.history)),
    AGREEMENT_DAYS,
    *GOLD_TABLES,
)
