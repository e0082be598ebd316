"""Spark computes, delta-rs commits: reading Delta tables into Spark and replacing partitions.

Spark here has no Delta connector (its jars cannot be fetched), so the transaction log is
owned by delta-rs: reads list the table's live files through the log and hand them to
Spark's Parquet reader; writes replace an explicit set of partitions in one Delta commit,
which is what makes every asset run an idempotent replace.
"""

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from billing_assets.tables.schemas import TableSpec

#: Concurrent writers to the same partitions conflict; the loser recomputes and retries.
COMMIT_ATTEMPTS = 5
T = TypeVar("T")


def ensure_table(uri: str, spec: TableSpec, storage_options: dict[str, str] | None = None) -> DeltaTable:
    """Open the table, creating it empty with its schema and partitioning on first use."""
    try:
        return DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        return DeltaTable.create(
            uri, schema=spec.schema, partition_by=_partitioning(spec), storage_options=storage_options, mode="ignore"
        )


def _partitioning(spec: TableSpec) -> list[str] | None:
    return [spec.partition_by] if spec.partition_by else None


def in_predicate(column: str, values: Sequence[str]) -> str:
    """A Delta predicate ``column IN (...)`` for validated partition values."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def range_predicate(column: str, first: str, last: str) -> str:
    """A Delta predicate selecting the inclusive range ``[first, last]`` of partition values."""
    return f"{column} >= '{first}' AND {column} <= '{last}'"


def read_table(
    spark: SparkSession,
    uri: str,
    spec: TableSpec,
    filters: list[tuple[str, str, object]] | None = None,
    storage_options: dict[str, str] | None = None,
) -> DataFrame:
    """The live rows of a Delta table as a Spark DataFrame, pruned to the partitions in ``filters``."""
    table = ensure_table(uri, spec, storage_options)
    files = table.file_uris(partition_filters=filters) if filters else table.file_uris()
    schema = from_arrow_schema(spec.schema)
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", uri).parquet(*files)


def replace_partitions(
    df: DataFrame,
    uri: str,
    spec: TableSpec,
    predicate: str | None,
    storage_options: dict[str, str] | None = None,
) -> int:
    """Replace every row matching ``predicate`` (all rows if ``None``) with ``df`` in one commit.

    Returns the new table version. delta-rs rejects rows outside the predicate, so a bug
    cannot spill into other partitions.
    """
    data = _to_arrow(df, spec)
    ensure_table(uri, spec, storage_options)
    write_deltalake(
        uri,
        data,
        mode="overwrite",
        predicate=predicate,
        partition_by=_partitioning(spec),
        storage_options=storage_options,
    )
    return DeltaTable(uri, storage_options=storage_options).version()


def retry_on_conflict(step: Callable[[], T], attempts: int = COMMIT_ATTEMPTS) -> T:
    """Run ``step`` (read, compute, commit) again when another writer committed first.

    The whole step is repeated, not just the commit: its input may have changed, and
    re-committing stale data would lose the other writer's rows.
    """
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except CommitFailedError:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _to_arrow(df: DataFrame, spec: TableSpec) -> pa.Table:
    # Spark's Arrow export may use large string types; the table schema is the contract.
    table = df.select(*spec.schema.names).toArrow()
    return table.cast(spec.schema)
