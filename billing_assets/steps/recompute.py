"""The shape every derived table shares: read a range of a source, transform, replace a range of the target."""

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from billing_assets.resources.warehouse import Warehouse
from billing_assets.tables.delta_io import read_table, replace_partitions, retry_on_conflict
from billing_assets.tables.schemas import TableSpec


@dataclass(frozen=True)
class StepResult:
    """Rows written and the Delta version committed."""

    rows: int
    version: int


def recompute(
    spark: SparkSession,
    warehouse: Warehouse,
    source: TableSpec,
    source_filters: list[tuple[str, str, object]],
    transform: Callable[[DataFrame], DataFrame],
    target: TableSpec,
    target_predicate: str,
) -> StepResult:
    """Replace ``target_predicate``'s rows of ``target`` with ``transform(source rows)`` in one commit.

    The whole read-compute-commit is retried when another writer committed first, so a
    conflict never commits a result computed from stale input.
    """

    def step() -> StepResult:
        output = warehouse.open(target)  # pinned first: a concurrent write to it forces a recompute
        rows = read_table(spark, warehouse.open(source), source_filters)
        result = transform(rows).persist()
        try:
            count = result.count()
            version = replace_partitions(result, output, target_predicate)
        finally:
            result.unpersist()
        return StepResult(count, version)

    return retry_on_conflict(step)


def between(column: str, first: str, last: str) -> list[tuple[str, str, object]]:
    """Partition filters for the inclusive range ``[first, last]``."""
    return [(column, ">=", first), (column, "<=", last)]
