"""Spark computes, delta-rs commits: reading Delta tables into Spark and replacing partitions.

Spark here has no Delta connector (its jars cannot be fetched), so the transaction log is
owned by delta-rs: reads list the table's live files through the log and hand them to
Spark's Parquet reader; writes replace an explicit set of partitions in one Delta commit,
which is what makes every asset run an idempotent replace.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from billing_assets.tables.schemas import TableSpec

log = logging.getLogger(__name__)

#: Concurrent writers to the same partitions conflict; the loser recomputes and retries.
COMMIT_ATTEMPTS = 5
T = TypeVar("T")


@dataclass(frozen=True)
class PinnedTable:
    """A Delta table as of the version it was opened at.

    Reads see exactly that version, and a write based on it is committed against it: if
    another writer changed the partitions it replaces in the meantime, delta-rs refuses the
    commit (``CommitFailedError``) instead of silently overwriting the other writer's rows.
    """

    uri: str
    spec: TableSpec
    delta: DeltaTable


def open_table(uri: str, spec: TableSpec, storage_options: dict[str, str] | None = None) -> PinnedTable:
    """Open the table at its latest version, creating it empty with its schema on first use."""
    try:
        delta = DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        delta = DeltaTable.create(
            uri, schema=spec.schema, partition_by=_partitioning(spec), storage_options=storage_options, mode="ignore"
        )
    return PinnedTable(uri, spec, delta)


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
    spark: SparkSession, table: PinnedTable, filters: list[tuple[str, str, object]] | None = None
) -> DataFrame:
    """The rows of the pinned version as a Spark DataFrame, pruned to the partitions in ``filters``."""
    files = table.delta.file_uris(partition_filters=filters) if filters else table.delta.file_uris()
    schema = from_arrow_schema(table.spec.schema)
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", table.uri).parquet(*files)


def replace_partitions(df: DataFrame, table: PinnedTable, predicate: str | None) -> int:
    """Replace every row matching ``predicate`` (all rows if ``None``) with ``df`` in one commit.

    Returns the new table version. delta-rs rejects rows outside the predicate, so a bug
    cannot spill into other partitions; and the commit is checked against the pinned
    version, so a concurrent change to the same partitions fails it rather than being lost.
    """
    data = df.select(*table.spec.schema.names).toArrow().cast(table.spec.schema)
    write_deltalake(table.delta, data, mode="overwrite", predicate=predicate, partition_by=_partitioning(table.spec))
    table.delta.update_incremental()
    return table.delta.version()


def retry_on_conflict(step: Callable[[], T], attempts: int = COMMIT_ATTEMPTS) -> T:
    """Run ``step`` (read, compute, commit) again when another writer committed first.

    The whole step is repeated, not just the commit: its input may have changed, and
    re-committing stale data would lose the other writer's rows.
    """
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except CommitFailedError as exc:
            if attempt == attempts:
                raise
            log.warning("Delta commit conflict (attempt %d of %d), recomputing: %s", attempt, attempts, exc)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")
