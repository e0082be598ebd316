"""Executors write Parquet, the driver commits once: real local Spark, real Delta tables on tmp_path."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError
from pyspark.sql import DataFrame, SparkSession

from billing_assets.tables.delta_io import (
    PartitionSpillError,
    TableSchemaMismatch,
    open_table,
    read_table,
    replace_partitions,
)
from billing_assets.tables.schemas import AGREEMENT, AGREEMENT_DAYS, HALF_HOURLY_CONSUMPTION, HOURLY_USAGE
from billing_assets.tables.selection import partition_range, partitions


def usage(spark: SparkSession, rows: list[tuple[str, str, float]]) -> DataFrame:
    """hourly_usage rows (meterpoint, hour key, consumption)."""
    data = [(mp, datetime.strptime(hour, "%Y-%m-%d-%H").replace(tzinfo=UTC), x, 1, hour) for mp, hour, x in rows]
    return spark.createDataFrame(
        data,
        "meterpoint_id string, usage_hour timestamp, consumption double, reading_count long, recording_hour string",
    )


def live(uri: Path) -> list[tuple]:
    table = DeltaTable(str(uri)).to_pyarrow_table()
    return sorted(tuple(row.values()) for row in table.to_pylist())


def orphans(uri: Path) -> set[str]:
    """Parquet files on disk that no version of the log ever added."""
    logged = set()
    for entry in (uri / "_delta_log").glob("*.json"):
        for line in entry.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                logged.add(action["add"]["path"])
    return {p.relative_to(uri).as_posix() for p in uri.rglob("*.parquet")} - logged


def test_replaces_only_the_selected_hours_and_is_idempotent(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    table = open_table(str(uri), HOURLY_USAGE)
    rows = [("m1", "2026-01-01-00", 1.0), ("m2", "2026-01-01-00", 2.0), ("m1", "2026-01-01-01", 3.0)]
    first = replace_partitions(usage(spark, rows), table, partitions(["2026-01-01-00", "2026-01-01-01"]))
    table = open_table(str(uri), HOURLY_USAGE)
    second = replace_partitions(usage(spark, rows[2:]), table, partitions(["2026-01-01-01"]))
    assert second == first + 1
    again = open_table(str(uri), HOURLY_USAGE)
    replace_partitions(usage(spark, rows[2:]), again, partitions(["2026-01-01-01"]))
    assert sorted((r[0], r[4], r[2]) for r in live(uri)) == sorted(rows)
    # One live file per hour, in the Hive folder, without the partition column.
    files = sorted(Path(f).relative_to(uri).as_posix() for f in DeltaTable(str(uri)).file_uris())
    assert [f.split("/")[0] for f in files] == ["recording_hour=2026-01-01-00", "recording_hour=2026-01-01-01"]
    assert "recording_hour" not in pa.parquet.read_schema(uri / files[0]).names
    stats = pa.table(DeltaTable(str(uri)).get_add_actions(flatten=True)).to_pylist()
    first_hour = next(s for s in stats if s["partition.recording_hour"] == "2026-01-01-00")
    assert first_hour["num_records"] == 2
    assert first_hour["min.consumption"] == 1.0 and first_hour["max.consumption"] == 2.0
    assert first_hour["min.usage_hour"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert first_hour["null_count.meterpoint_id"] == 0
    assert not orphans(uri)


def test_rows_outside_the_selection_are_refused_before_anything_is_written(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    table = open_table(str(uri), HOURLY_USAGE)
    replace_partitions(usage(spark, [("m1", "2026-01-01-05", 9.0)]), table, partitions(["2026-01-01-05"]))
    before = live(uri)
    spill = usage(spark, [("m1", "2026-01-01-00", 1.0), ("m1", "2026-01-01-05", 1.0)])
    with pytest.raises(PartitionSpillError, match="1 row.*'2026-01-01-05'"):
        replace_partitions(spill, open_table(str(uri), HOURLY_USAGE), partition_range("2026-01-01-00", "2026-01-01-04"))
    assert live(uri) == before
    assert not orphans(uri)
    assert not (uri / "recording_hour=2026-01-01-00").exists() or not any(
        (uri / "recording_hour=2026-01-01-00").iterdir()
    )


def test_hostile_partition_values_never_reach_a_path(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    table = open_table(str(uri), HOURLY_USAGE)
    with pytest.raises(ValueError, match="not a valid hour"):
        replace_partitions(usage(spark, []), table, partitions(["2026-01-01-00' OR '1'='1"]))
    hostile = usage(spark, [("m1", "2026-01-01-00", 1.0)]).selectExpr(
        "meterpoint_id", "usage_hour", "consumption", "reading_count", "'2026-01-01-00/../../escaped' AS recording_hour"
    )
    with pytest.raises(PartitionSpillError, match="escaped"):
        replace_partitions(hostile, table, partition_range("2026-01-01-00", "2026-01-01-23"))
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.rglob("*escaped*"))
    assert DeltaTable(str(uri)).version() == 0


def test_an_empty_result_removes_the_selected_partitions(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    rows = [("m1", f"2026-01-01-0{h}", float(h)) for h in range(4)]
    replace_partitions(
        usage(spark, rows), open_table(str(uri), HOURLY_USAGE), partition_range("2026-01-01-00", "2026-01-01-03")
    )
    replace_partitions(
        usage(spark, []), open_table(str(uri), HOURLY_USAGE), partition_range("2026-01-01-01", "2026-01-01-02")
    )
    assert [r[4] for r in live(uri)] == ["2026-01-01-00", "2026-01-01-03"]


def test_date_partitions_match_what_delta_rs_wrote(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "half_hourly_consumption"
    spec = HALF_HOURLY_CONSUMPTION
    old = pa.table(
        {
            "interval_start": pa.array(
                [datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)],
                spec.schema.field("interval_start").type,
            ),
            "settlement_period": pa.array([1, 1], pa.int32()),
            "meterpoint_count": [1, 1],
            "consumption": [1.0, 2.0],
            "settlement_date": pa.array([date(2026, 3, 1), date(2026, 3, 2)], pa.date32()),
        }
    )
    # What the previous write path (write_deltalake with a predicate) left in the table.
    write_deltalake(str(uri), old, partition_by=["settlement_date"])
    new = spark.createDataFrame(
        [(datetime(2026, 3, 2, 0, 30, tzinfo=UTC), 2, 3, 5.0, date(2026, 3, 2))],
        "interval_start timestamp, settlement_period int, meterpoint_count long, consumption double, "
        "settlement_date date",
    )
    table = open_table(str(uri), spec)
    replace_partitions(new, table, partitions(["2026-03-02"]))
    folders = sorted({p.parent.name for p in uri.rglob("*.parquet")})
    assert folders == ["settlement_date=2026-03-01", "settlement_date=2026-03-02"]
    assert [(r[3], r[4]) for r in live(uri)] == [(1.0, date(2026, 3, 1)), (5.0, date(2026, 3, 2))]
    back = read_table(spark, open_table(str(uri), spec), [("settlement_date", "=", "2026-03-02")]).collect()
    assert [(r["settlement_period"], r["settlement_date"]) for r in back] == [(2, date(2026, 3, 2))]


def test_unpartitioned_tables_are_replaced_whole(spark: SparkSession, tmp_path: Path) -> None:
    spec = AGREEMENT.history
    uri = tmp_path / spec.name
    frame = spark.createDataFrame(
        [(1, date(2026, 1, 1), None, 7, "m1", "a1", date(2026, 1, 1), None, True, "h")],
        "agreement_id long, agreement_valid_from date, agreement_valid_to date, product_id long, "
        "meterpoint_id string, account_id string, valid_from_date date, valid_to_date date, is_current boolean, "
        "row_hash string",
    )
    replace_partitions(frame, open_table(str(uri), spec), None)
    replace_partitions(frame, open_table(str(uri), spec), None)
    assert len(live(uri)) == 1
    with pytest.raises(ValueError, match="not partitioned"):
        replace_partitions(frame, open_table(str(uri), spec), partitions(["2026-01-01"]))
    with pytest.raises(ValueError, match="name the partitions"):
        replace_partitions(usage(spark, []), open_table(str(tmp_path / "h"), HOURLY_USAGE), None)


def test_a_concurrent_writer_to_the_same_new_partition_fails_the_commit_and_leaves_no_files(
    spark: SparkSession, tmp_path: Path
) -> None:
    uri = tmp_path / "hourly_usage"
    open_table(str(uri), HOURLY_USAGE)
    # Both pinned at the same version, at which the hour does not exist yet: the second commit
    # must not add a second copy of the hour next to the first.
    first, second = open_table(str(uri), HOURLY_USAGE), open_table(str(uri), HOURLY_USAGE)
    replace_partitions(usage(spark, [("m1", "2026-01-01-00", 1.0)]), first, partitions(["2026-01-01-00"]))
    with pytest.raises(CommitFailedError):
        replace_partitions(usage(spark, [("m2", "2026-01-01-00", 2.0)]), second, partitions(["2026-01-01-00"]))
    assert [r[0] for r in live(uri)] == ["m1"]
    assert not orphans(uri)
    # And when the hour exists, a stale writer replacing it loses too.
    stale = open_table(str(uri), HOURLY_USAGE)
    replace_partitions(
        usage(spark, [("m3", "2026-01-01-00", 3.0)]), open_table(str(uri), HOURLY_USAGE), partitions(["2026-01-01-00"])
    )
    with pytest.raises(CommitFailedError):
        replace_partitions(usage(spark, [("m4", "2026-01-01-00", 4.0)]), stale, partitions(["2026-01-01-00"]))
    assert [r[0] for r in live(uri)] == ["m3"]
    assert not orphans(uri)


def test_a_table_built_with_other_columns_is_refused_before_anything_is_written(tmp_path) -> None:
    uri = tmp_path / "agreement_days"
    integer_ids = [pa.field(f.name, pa.int64()) if f.name == "agreement_id" else f for f in AGREEMENT_DAYS.schema]
    DeltaTable.create(str(uri), schema=pa.schema(integer_ids[:-2] + integer_ids[-1:]), partition_by=["date"])
    expected = (
        r"table agreement_days was built by an older version "
        r"\(agreement_id: int64 here, string expected; unmatched_reason missing\)"
    )
    with pytest.raises(TableSchemaMismatch, match=expected):
        open_table(str(uri), AGREEMENT_DAYS)
    assert DeltaTable(str(uri)).version() == 0
