"""A damaged Delta log stops the table being used: real local Spark, real Delta tables on tmp_path.

Each kind of damage here once passed silently: delta-rs reports a gap between commit files,
but a missing newest commit just makes the table look older, and a commit cut at a line
boundary is still valid JSON.
"""

import re
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from billing_assets.tables import log_check
from billing_assets.tables.delta_io import open_table, replace_partitions
from billing_assets.tables.log_check import DamagedTableLog
from billing_assets.tables.schemas import HOURLY_USAGE
from billing_assets.tables.selection import partitions
from billing_assets_tests.tables.test_delta_write import live, usage

HOURS = ["2026-01-01-00", "2026-01-01-01", "2026-01-01-02", "2026-01-01-03"]


@pytest.fixture(autouse=True)
def forget_verified_tables():
    """Each test damages a table the process may already have checked."""
    log_check._verified.clear()
    yield
    log_check._verified.clear()


def build(spark: SparkSession, uri: Path) -> None:
    """hourly_usage at version 4: created (0), one commit per hour (1-3), the first hour rewritten (4)."""
    for hour in HOURS[:3]:
        replace_partitions(
            usage(spark, [("m1", hour, 1.0), ("m2", hour, 2.0)]), open_table(str(uri), HOURLY_USAGE), partitions([hour])
        )
    replace_partitions(
        usage(spark, [("m1", HOURS[0], 5.0)]), open_table(str(uri), HOURLY_USAGE), partitions([HOURS[0]])
    )
    assert DeltaTable(str(uri)).version() == 4


def commit(uri: Path, version: int) -> Path:
    return uri / "_delta_log" / f"{version:020d}.json"


def refused(uri: Path, message: str) -> None:
    """Opening (so reading or writing) the table fails with ``message``, and nothing changes."""
    before = sorted(p.name for p in (uri / "_delta_log").iterdir())
    with pytest.raises(DamagedTableLog, match=message) as caught:
        open_table(str(uri), HOURLY_USAGE)
    assert "table hourly_usage" in str(caught.value)
    assert "Recovering a damaged table" in str(caught.value)
    assert sorted(p.name for p in (uri / "_delta_log").iterdir()) == before


def test_a_whole_log_opens_and_writes(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    assert open_table(str(uri), HOURLY_USAGE).delta.version() == 4
    assert (uri / "_delta_log" / log_check.HIGH_WATER_MARK).read_text() == "4\n"


def test_a_missing_commit_in_the_middle_is_named(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    commit(uri, 1).unlink()
    refused(uri, re.escape("Delta log version 1 is missing"))


def test_a_missing_newest_commit_is_named(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    commit(uri, 4).unlink()
    # delta-rs alone would open version 3, with the first hour's old rows back.
    assert DeltaTable(str(uri)).version() == 3
    refused(uri, re.escape("Delta log version 4 is missing"))


def test_a_missing_first_commit_is_named(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    commit(uri, 0).unlink()
    refused(uri, re.escape("Delta log version 0 is missing"))


@pytest.mark.parametrize("keep", ["all but the last line", "the first line only"])
def test_a_commit_cut_at_a_line_boundary_is_named(keep: str, spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    lines = commit(uri, 4).read_text().splitlines(keepends=True)
    assert len(lines) >= 3  # commitInfo, a remove and an add at least
    commit(uri, 4).write_text("".join(lines[:-1] if keep.startswith("all") else lines[:1]))
    refused(uri, r"Delta log version 4 is damaged .*it states 1 add, 1 remove, 1 txn action\(s\) but holds")


def test_a_commit_cut_inside_a_line_is_named(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    text = commit(uri, 2).read_text()
    commit(uri, 2).write_text(text[: len(text) - 40])
    refused(uri, r"Delta log version 2 is damaged .*is not JSON")


def test_a_commit_without_commit_info_is_named(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    lines = commit(uri, 3).read_text().splitlines(keepends=True)
    commit(uri, 3).write_text("".join(line for line in lines if '"commitInfo"' not in line))
    refused(uri, r"Delta log version 3 is damaged .*no commitInfo")


def test_a_missing_data_file_is_named(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    [gone] = DeltaTable(str(uri)).file_uris(partition_filters=[("recording_hour", "=", HOURS[1])])
    Path(gone.removeprefix("file://")).unlink()
    refused(uri, r"version 4 names 1 data file\(s\) that do not exist, e\.g\. .*recording_hour=2026-01-01-01/")


def test_a_log_emptied_of_commits_is_not_a_new_table(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    for version in range(5):
        commit(uri, version).unlink()
    refused(uri, re.escape("no commit file left (version 0 is missing)"))


def test_checkpoints_compaction_and_vacuum_keep_a_log_whole(spark: SparkSession, tmp_path: Path) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    rows = live(uri)
    delta = DeltaTable(str(uri))
    delta.optimize.compact()
    delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    delta.create_checkpoint()
    delta.cleanup_metadata()
    table = open_table(str(uri), HOURLY_USAGE)
    assert live(uri) == rows
    # After the checkpoint, commit files before it may go; the log is whole from the checkpoint.
    checkpoint = table.delta.version()
    for version in range(checkpoint):
        commit(uri, version).unlink(missing_ok=True)
    replace_partitions(
        usage(spark, [("m3", HOURS[3], 3.0)]), open_table(str(uri), HOURLY_USAGE), partitions([HOURS[3]])
    )
    assert len(live(uri)) == len(rows) + 1


def test_damage_after_a_table_was_found_whole_is_still_seen(spark: SparkSession, tmp_path: Path) -> None:
    """The check is remembered per process, but only for the commit files it read."""
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    open_table(str(uri), HOURLY_USAGE)
    assert str(uri) in log_check._verified
    lines = commit(uri, 4).read_text().splitlines(keepends=True)
    commit(uri, 4).write_text("".join(lines[:-1]))
    refused(uri, "Delta log version 4 is damaged")


def test_a_data_file_deleted_after_the_table_was_found_whole_is_named(spark: SparkSession, tmp_path: Path) -> None:
    """Every open looks at the files as they are now, not as an earlier open in this process found them."""
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    assert open_table(str(uri), HOURLY_USAGE).delta.version() == 4  # found whole in this process
    [gone] = DeltaTable(str(uri)).file_uris(partition_filters=[("recording_hour", "=", HOURS[2])])
    Path(gone.removeprefix("file://")).unlink()
    refused(uri, r"version 4 names 1 data file\(s\) that do not exist, e\.g\. .*recording_hour=2026-01-01-02/")


def mark(uri: Path) -> Path:
    return uri / "_delta_log" / log_check.HIGH_WATER_MARK


@pytest.mark.parametrize(
    ("content", "shown"),
    [(b"", "it is empty"), (b"4x\n", "'4x'"), (b"\xff\xfe", "'\ufffd\ufffd'"), ("４\n".encode(), r"'４'")],
    ids=["empty", "not_a_number", "not_text", "not_ascii_digits"],
)
def test_an_unreadable_high_water_mark_is_damage_not_a_missing_mark(
    content: bytes, shown: str, spark: SparkSession, tmp_path: Path
) -> None:
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    mark(uri).write_bytes(content)
    refused(uri, rf"high-water mark .*{log_check.HIGH_WATER_MARK} is unreadable \({shown}")


def test_a_lost_newest_commit_with_an_empty_mark_is_not_passed(spark: SparkSession, tmp_path: Path) -> None:
    """An empty mark (as a write cut short would leave) must not hide a lost newest commit."""
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    commit(uri, 4).unlink()
    mark(uri).write_bytes(b"")
    assert DeltaTable(str(uri)).version() == 3  # what a run would silently build on
    refused(uri, "high-water mark .* is unreadable")


def test_the_high_water_mark_is_replaced_whole_never_rewritten_in_place(spark: SparkSession, tmp_path: Path) -> None:
    """A reader sees the old mark or the new one: the new one is written aside and renamed over it."""
    uri = tmp_path / "hourly_usage"
    build(spark, uri)
    before = mark(uri).stat().st_ino
    log_check.record_commit(str(uri), 5)
    assert mark(uri).read_text() == "5\n"
    assert mark(uri).stat().st_ino != before  # a new file took the name; the old one was never truncated
    assert sorted(p.name for p in (uri / "_delta_log").iterdir() if not p.name.endswith(".json")) == [
        log_check.HIGH_WATER_MARK
    ]  # no temporary file left behind
    log_check.record_commit(str(uri), 3)  # never lowered
    assert mark(uri).read_text() == "5\n"
