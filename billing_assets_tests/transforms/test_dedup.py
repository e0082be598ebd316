"""Deduplication as a pure DataFrame plan: first arrival wins, and the plan depends on the set of rows only."""

from datetime import UTC, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from billing_assets.tables.schemas import DEDUPLICATED_RAW
from billing_assets.transforms.dedup import first_arrivals, plan_dedup

AT = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)


def rows(spark: SparkSession, *records: tuple) -> DataFrame:
    """Deduplicated-table rows from ``(record_id, meterpoint, consumption, ingestion_hour, file, line)``."""
    data = [(rid, meter, AT, kwh, hour, file, line, "2026-03-10-07") for rid, meter, kwh, hour, file, line in records]
    return spark.createDataFrame(data, from_arrow_schema(DEDUPLICATED_RAW.schema))


def outcome(plan) -> tuple[dict, list, list]:
    status = {(x["record_id"], x["ingestion_hour"], x["line_number"]): x["status"] for x in plan.classified.collect()}
    rewrite = sorted((x["record_id"], x["ingestion_hour"], x["line_number"]) for x in plan.rewrite.collect())
    return status, plan.changed_hours, rewrite


def test_first_arrival_wins_a_later_copy_is_a_duplicate_and_another_payload_a_conflict(spark) -> None:
    batch = rows(
        spark,
        ("r1", "m1", 1.0, "2026-03-10-09", "a.json", 2),
        ("r1", "m1", 1.0, "2026-03-10-08", "a.json", 5),  # earlier hour: the winner
        ("r2", "m1", 2.0, "2026-03-10-08", "a.json", 1),
        ("r2", "m1", 9.9, "2026-03-10-08", "b.json", 1),  # same hour, later file, other payload
    )
    plan = plan_dedup(batch, rows(spark))
    try:
        status, changed, rewrite = outcome(plan)
        assert status[("r1", "2026-03-10-09", 2)] == "duplicate"
        assert status[("r1", "2026-03-10-08", 5)] == "inserted"
        conflicts = [x for x in plan.classified.collect() if x["status"] == "conflict"]
        assert [(x["record_id"], x["source_file"], x["winner"]["source_file"]) for x in conflicts] == [
            ("r2", "b.json", "a.json")
        ]
        assert changed == ["2026-03-10-07"]
        assert rewrite == [("r1", "2026-03-10-08", 5), ("r2", "2026-03-10-08", 1)]
    finally:
        plan.release()


def test_a_batch_already_in_the_table_changes_nothing(spark) -> None:
    table = rows(spark, ("r1", "m1", 1.0, "2026-03-10-08", "a.json", 1))
    plan = plan_dedup(rows(spark, ("r1", "m1", 1.0, "2026-03-10-08", "a.json", 1)), table)
    try:
        status, changed, _ = outcome(plan)
        assert changed == [] and plan.touched_hours == ["2026-03-10-07"]
        assert status == {("r1", "2026-03-10-08", 1): "inserted"}  # a re-run of the same file ranks itself first
    finally:
        plan.release()


@pytest.mark.parametrize("late_first", [True, False])
def test_an_earlier_arrival_backfilled_later_replaces_the_table_copy(spark, late_first) -> None:
    early, late = ("r1", "m1", 1.0, "2026-03-10-08", "a.json", 1), ("r1", "m1", 1.0, "2026-03-10-09", "a.json", 1)
    table, batch = (late, early) if late_first else (early, late)
    plan = plan_dedup(rows(spark, batch), rows(spark, table))
    try:
        _, changed, rewrite = outcome(plan)
        # Whatever order the hours were processed in, the table ends with the 08:00 arrival.
        assert rewrite == ([("r1", "2026-03-10-08", 1)] if late_first else [])
        assert changed == (["2026-03-10-07"] if late_first else [])
    finally:
        plan.release()


def test_first_arrivals_keeps_one_row_per_record(spark) -> None:
    kept = first_arrivals(
        rows(
            spark,
            ("r1", "m1", 1.0, "2026-03-10-08", "b.json", 1),
            ("r1", "m1", 1.0, "2026-03-10-08", "a.json", 7),
            ("r2", "m2", 2.0, "2026-03-10-09", "a.json", 1),
        )
    ).collect()
    assert sorted((x["record_id"], x["source_file"], x["line_number"]) for x in kept) == [
        ("r1", "a.json", 7),
        ("r2", "a.json", 1),
    ]
