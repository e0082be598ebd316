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


#: Column types by their Spark DDL names; every column is nullable, without metadata.
ARROW_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": UTC_TIMESTAMP,
    "array<string>": pa.list_(pa.string()),
}


def columns(ddl: str) -> list[tuple[str, pa.DataType]]:
    """Arrow columns from Spark DDL (``"record_id string, line_number bigint"``), in order."""
    return [(name, ARROW_TYPES[kind]) for name, kind in (column.split() for column in ddl.split(","))]


def arrow_schema(ddl: str) -> pa.Schema:
    """An Arrow schema from Spark DDL (see ``columns``)."""
    return pa.schema(columns(ddl))


def table(name: str, ddl: str, partition_by: str | None) -> TableSpec:
    """A warehouse table from its columns in Spark DDL."""
    return TableSpec(name, arrow_schema(ddl), partition_by)


RAW_READINGS = table(
    "raw_readings",
    "record_id string, meterpoint_id string, interval_start timestamp, consumption double, recording_hour string,"
    " source_file string, line_number bigint, ingestion_hour string",
    "ingestion_hour",
)
QUARANTINED_READINGS = table(
    "quarantined_readings",
    "source_file string, line_number bigint, record_id string, reason string, detail string, raw string,"
    " ingestion_hour string",
    "ingestion_hour",
)
DEDUPLICATED_RAW = table(
    "deduplicated_raw",
    "record_id string, meterpoint_id string, interval_start timestamp, consumption double, ingestion_hour string,"
    " source_file string, line_number bigint, recording_hour string",
    "recording_hour",
)
HOURLY_USAGE = table(
    "hourly_usage",
    "meterpoint_id string, usage_hour timestamp, consumption double, reading_count bigint, recording_hour string",
    "recording_hour",
)
CUMULATIVE_USAGE = table(
    "cumulative_usage",
    "meterpoint_id string, usage_hour timestamp, consumption double, cumulative_consumption double,"
    " billing_month string",
    "billing_month",
)

# --- Dimensions: daily snapshots of the source database, and their type-2 history ---

#: valid_from_date: the first load day on which this version was seen; valid_to_date: the first
#: load day on which it was no longer seen (null: current).
_SCD2 = columns("valid_from_date date, valid_to_date date, is_current boolean, row_hash string")

# Every source id is an opaque string, whatever SQLite type it is stored with: the case study's
# database holds 10-hex-character text ids beside integer ones, and analysts join on equal strings.
AGREEMENT_COLUMNS = columns(
    "agreement_id string, agreement_valid_from date, agreement_valid_to date, product_id string,"
    " meterpoint_id string, account_id string"
)
#: ``id`` is the source's surrogate; agreements reference ``product_id``.
PRODUCT_COLUMNS = columns("id string, product_id string, display_name string, is_variable boolean")
METERPOINT_COLUMNS = columns("meterpoint_id string, region string")


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

#: unmatched_reason: why the readings it covers cannot be attributed to a product (null: they can).
AGREEMENT_DAYS = table(
    "agreement_days",
    "agreement_id string, meterpoint_id string, account_id string, product_id string, product_display_name string,"
    " product_is_variable boolean, covers_readings boolean, is_active boolean, unmatched_reason string, date date",
    "date",
)

# --- Gold tables (the analysts' contract) ---

ACTIVE_AGREEMENTS = table(
    "active_agreements",
    "agreement_id string, meterpoint_id string, product_display_name string, product_is_variable boolean,"
    " as_of_date date",
    "as_of_date",
)
HALF_HOURLY_CONSUMPTION = table(
    "half_hourly_consumption",
    "interval_start timestamp, settlement_period int, meterpoint_count bigint, consumption double,"
    " settlement_date date",
    "settlement_date",
)
PRODUCT_DAILY_CONSUMPTION = table(
    "product_daily_consumption",
    "product_display_name string, meterpoint_count bigint, consumption double, date date",
    "date",
)
AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT = table(
    "avg_consumption_per_half_hour_by_product",
    "interval_start timestamp, product_display_name string, meterpoint_count bigint, consumption double,"
    " avg_consumption double, settlement_date date",
    "settlement_date",
)
UNMATCHED_READINGS = table(
    "unmatched_readings",
    "record_id string, meterpoint_id string, interval_start timestamp, consumption double, reason string,"
    " settlement_date date",
    "settlement_date",
)

# --- Settlement: monthly statements, append-only (docs/settlement.md) ---

#: One row per line of a billing month's statement in one run: a meterpoint's consumption under
#: one agreement and product (or, with ``unmatched_reason``, under none). Every run restates the
#: whole month; a run once written never changes. ``*_version``: the Delta versions it read.
STATEMENTS = table(
    "statements",
    "meterpoint_id string, run int, run_kind string, agreement_id string, account_id string, product_id string,"
    " product_display_name string, unmatched_reason string, days int, reading_count bigint, too_late_count bigint,"
    " too_late_kwh double, corrected_count bigint, correction_kwh double, kwh double, created_at timestamp,"
    " hourly_usage_version bigint,"
    " agreement_days_version bigint, quarantined_readings_version bigint, deduplicated_raw_version bigint,"
    " billing_month string",
    "billing_month",
)
#: One row per meterpoint whose statement lines a run changed: its month total before and after,
#: and why (``late_reading``, ``reading_withdrawn``, ``reading_corrected``, ``too_late_reading``,
#: ``coverage_changed``, ``restated``).
STATEMENT_ADJUSTMENTS = table(
    "statement_adjustments",
    "meterpoint_id string, run int, previous_run int, kwh_before double, kwh_after double, kwh_difference double,"
    " reasons array<string>, created_at timestamp, billing_month string",
    "billing_month",
)
SETTLEMENT_TABLES = (STATEMENTS, STATEMENT_ADJUSTMENTS)
#: Columns that say when a row was made, not what it holds: the same decision made later over
#: the same inputs differs only in them (what a re-run is compared on leaves them out).
MADE_AT_COLUMNS = frozenset({"created_at"})


def content(row: dict) -> dict:
    """A row without its made-at columns: what two runs over the same inputs must agree on."""
    return {name: value for name, value in row.items() if name not in MADE_AT_COLUMNS}


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
    *SETTLEMENT_TABLES,
)
