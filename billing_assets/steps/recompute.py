"""The shape every derived table shares: read a range of a source, transform, replace a range of the target."""

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from billing_assets.resources.warehouse import Warehouse
from billing_assets.tables.delta_io import read_table, retry_on_conflict, write_partitions
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.selection import PartitionSelection


@dataclass(frozen=True)
class StepResult:
    """Rows written, the Delta version committed, and the source version it was computed from."""

    rows: int
    version: int
    #: Checks compare the output with exactly this input, not with a later concurrent write.
    source_version: int | None = None


def recompute(
    spark: SparkSession,
    warehouse: Warehouse,
    source: TableSpec,
    source_filters: list[tuple[str, str, object]],
    transform: Callable[[DataFrame], DataFrame],
    target: TableSpec,
    target_partitions: PartitionSelection | None,
) -> StepResult:
    """Replace the ``target_partitions`` of ``target`` with ``transform(source rows)`` in one commit.

    The whole read-compute-commit is retried when another writer committed first, so a
    conflict never commits a result computed from stale input.
    """

    def step() -> StepResult:
        output = warehouse.open(target)  # pinned first: a concurrent write to it forces a recompute
        inputs = warehouse.open(source)
        rows = read_table(spark, inputs, source_filters)
        written = write_partitions(transform(rows), output, target_partitions)
        return StepResult(written.rows, written.version, inputs.delta.version())

    return retry_on_conflict(step)


def between(column: str, first: str, last: str) -> list[tuple[str, str, object]]:
    """Partition filters for the inclusive range ``[first, last]``."""
    return [(column, ">=", first), (column, "<=", last)]
