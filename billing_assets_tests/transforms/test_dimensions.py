"""Type-2 history as a pure DataFrame transform: versions from daily snapshots."""

import re
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from billing_assets.tables.schemas import METERPOINT
from billing_assets.transforms.dimensions import scd2_history

D1, D2, D3, D4 = (date(2026, 3, day) for day in (1, 2, 3, 4))


def snapshots(spark: SparkSession, rows: list[tuple[str, str, date]]):
    """Meterpoint snapshot rows ``(meterpoint_id, region, snapshot_date)``."""
    return spark.createDataFrame(rows, from_arrow_schema(METERPOINT.snapshots.schema))


def versions(spark: SparkSession, rows: list[tuple[str, str, date]]) -> list[tuple]:
    history = scd2_history(snapshots(spark, rows), METERPOINT)
    return sorted(
        (r["meterpoint_id"], r["region"], r["valid_from_date"], r["valid_to_date"], r["is_current"])
        for r in history.collect()
    )


def test_a_version_runs_from_the_first_load_seen_to_the_first_load_changed_or_missing(spark):
    rows = [
        ("1", "north", D1),
        ("1", "north", D2),
        ("1", "south", D3),  # changed
        ("1", "south", D4),
        ("2", "east", D1),  # deleted on D2, re-added on D3
        ("2", "east", D3),
        ("3", "west", D4),  # new on the last load
    ]
    assert versions(spark, rows) == [
        ("1", "north", D1, D3, False),
        ("1", "south", D3, None, True),
        ("2", "east", D1, D2, False),
        ("2", "east", D3, D4, False),
        ("3", "west", D4, None, True),
    ]


def test_the_history_plan_has_no_window_over_a_single_partition(spark):
    """A window without ``partitionBy`` moves every row to one task (Spark warns about it at run time)."""
    history = scd2_history(snapshots(spark, [("1", "north", D1), ("1", "north", D2)]), METERPOINT)
    plan = history._jdf.queryExecution().executedPlan().toString()
    assert re.search(r"\bWindow \[", plan), plan  # the history does use windows, partitioned by the source key
    # A window without partition keys makes Spark gather every row into one task first.
    assert "Exchange SinglePartition" not in plan, plan
