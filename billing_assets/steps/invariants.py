"""What every billing check shares: the outcome type, exact totals, one-job tallies and counts, failing examples.

Every check returns ``(passed, metadata)``; the assets turn that into asset check results.
The billing checks read the tables back through the Delta log after the commit (a quiet hour's
conservation is settled from the log alone, landing freshness from the instance). Where a
check compares a table with its input, it reads the input at the version the run read
(``*_version``): a concurrent run changing the input in between must not look like a bug.

Totals are compared as ``decimal(38, 9)`` sums (as the tables compute them), within
``TOLERANCE`` kWh: each stored double is one rounding away from its exact sum.
"""

from functools import reduce
from typing import Any, NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from billing_assets.steps.recompute import selected
from billing_assets.tables.delta_io import read_table
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.selection import PartitionSelection
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.usage import EXACT

#: Largest difference (kWh) tolerated between two totals of the same readings.
TOLERANCE = 1e-6
#: Failing rows or keys listed in the metadata (the counts are always complete).
EXAMPLES = 20


class CheckOutcome(NamedTuple):
    """Whether an invariant held, and the figures that show it."""

    passed: bool
    metadata: dict[str, Any]


def read_at(
    spark: SparkSession,
    warehouse: Warehouse,
    spec: TableSpec,
    partitions: PartitionSelection | None,
    version: int | None = None,
) -> DataFrame:
    """The rows of ``partitions`` of ``spec``, at ``version`` (default: the latest)."""
    return read_table(spark, warehouse.open(spec, version), selected(spec, partitions))


def exact_sum(column: str, alias: str) -> Column:
    """The exact ``decimal(38, 9)`` sum of ``column``, as the tables compute their totals."""
    return F.sum(F.col(column).cast(EXACT)).alias(alias)


def tally(df: DataFrame, **conditions: Column) -> tuple[int, dict[str, int]]:
    """Rows of ``df`` and how many satisfy each condition, in one Spark job.

    A ``count()`` per figure would run the whole plan (reads, joins, windows) once per figure.
    """
    figures = [F.count(F.when(condition, True)).alias(name) for name, condition in conditions.items()]
    row = df.agg(F.count(F.lit(1)).alias("_rows"), *figures).first()
    return row["_rows"], {name: row[name] for name in conditions}


def count_each(**frames: DataFrame) -> dict[str, int]:
    """The rows of each frame, in one Spark job (a ``count()`` each would be one job each)."""
    labelled = [frame.select(F.lit(name).alias("_frame")) for name, frame in frames.items()]
    found = {
        row["_frame"]: row["count"]
        for row in reduce(DataFrame.unionByName, labelled).groupBy("_frame").count().collect()
    }
    return {name: found.get(name, 0) for name in frames}


def examples(df: DataFrame, order: str, failures: int) -> list[dict[str, Any]]:
    """Up to ``EXAMPLES`` failing rows; no Spark job when nothing failed."""
    if not failures:
        return []
    return [
        {key: value if isinstance(value, int | float | str | None) else str(value) for key, value in row.items()}
        for row in (r.asDict() for r in df.orderBy(order).limit(EXAMPLES).collect())
    ]


def differs(left: str, right: str) -> Column:
    """Whether two totals differ by more than ``TOLERANCE`` (a missing side counts as 0)."""
    return F.abs(F.coalesce(F.col(left), F.lit(0)) - F.coalesce(F.col(right), F.lit(0))) > TOLERANCE


def compare_totals(left: DataFrame, right: DataFrame, keys: list[str], figures: list[str], label: str) -> CheckOutcome:
    """Full outer join on ``keys``; every ``figure`` must agree (``<figure>_<side>`` columns)."""
    joined = left.join(right, keys, "full_outer")
    bad = F.lit(False)
    for figure in figures:
        bad = bad | differs(f"{figure}_expected", f"{figure}_actual")
    checked, figures_of = tally(joined, mismatched=bad)
    failures = figures_of["mismatched"]
    return CheckOutcome(
        failures == 0,
        {
            f"{label}_checked": checked,
            f"{label}_mismatched": failures,
            "mismatches": examples(joined.filter(bad), keys[0], failures),
            "tolerance_kwh": TOLERANCE,
        },
    )
