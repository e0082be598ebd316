"""The shape every derived table shares: read partitions of a source, transform, replace partitions of the target."""

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from billing_assets.tables.delta_io import Written, read_table, retry_on_conflict, write_partitions
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.selection import PartitionSelection
from billing_assets.tables.warehouse import Warehouse


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
    source_partitions: PartitionSelection | None,
    transform: Callable[[DataFrame], DataFrame],
    target: TableSpec,
    target_partitions: PartitionSelection | None,
) -> StepResult:
    """Replace the ``target_partitions`` of ``target`` with ``transform(source rows)`` in one commit.

    ``None`` selects a whole (unpartitioned) table. The whole read-compute-commit is retried
    when another writer committed first, so a conflict never commits a result computed from
    stale input.
    """

    def step() -> StepResult:
        output = warehouse.open(target)  # pinned first: a concurrent write to it forces a recompute
        inputs = warehouse.open(source)
        rows = read_table(spark, inputs, selected(source, source_partitions))
        written = write_partitions(transform(rows), output, target_partitions)
        return StepResult(written.rows, written.version, inputs.delta.version())

    return retry_on_conflict(step)


def replace(
    warehouse: Warehouse, target: TableSpec, frame: DataFrame, partitions: PartitionSelection | None
) -> Written:
    """Replace ``partitions`` of ``target`` with ``frame``, which is computed from nothing in ``target``.

    Retried like ``recompute``; the frame does not depend on the target, so only the commit is redone.
    """
    return retry_on_conflict(lambda: write_partitions(frame, warehouse.open(target), partitions))


def selected(spec: TableSpec, partitions: PartitionSelection | None) -> list[tuple[str, str, object]] | None:
    """delta-rs partition filters for ``partitions`` of ``spec`` (``None``: the whole table)."""
    return None if partitions is None else partitions.filters(spec.partition_by)
