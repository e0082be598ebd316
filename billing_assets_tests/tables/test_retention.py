"""Old versions outlive delta-rs' log clean-up once ``keep_versions`` set the retention (no Spark).

The clean-up judges a commit file's age by its modification time, so ageing the files with
``os.utime`` stands in for two months passing.
"""

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from billing_assets.tables.retention import keep_versions, retention_days
from billing_assets.tables.schemas import HOURLY_USAGE
from billing_assets.tables.warehouse import Warehouse

SIXTY_DAYS = 60 * 24 * 3600


def one_hour(hour: int) -> pa.Table:
    instant = datetime(2026, 2, 1, hour, tzinfo=UTC)
    row = {"meterpoint_id": "mp1", "usage_hour": instant, "consumption": 1.0, "reading_count": 1}
    return pa.Table.from_pylist(
        [{**row, "recording_hour": instant.strftime("%Y-%m-%d-%H")}], schema=HOURLY_USAGE.schema
    )


def two_months_of_commits(uri: str) -> None:
    """Three commits, aged 60 days, then enough new ones for a checkpoint (every 5 here)."""
    for hour in range(3):
        write_deltalake(uri, one_hour(hour), mode="append")
    old = time.time() - SIXTY_DAYS
    for name in os.listdir(f"{uri}/_delta_log"):
        os.utime(f"{uri}/_delta_log/{name}", (old, old))
    for hour in range(3, 10):
        write_deltalake(uri, one_hour(hour), mode="append")


@pytest.mark.parametrize("kept", [False, True], ids=["default retention", "kept for 425 days"])
def test_a_two_month_old_version_survives_the_log_clean_up_only_when_kept(tmp_path: Path, kept: bool) -> None:
    warehouse = Warehouse(str(tmp_path / "warehouse"))
    table = warehouse.open(HOURLY_USAGE)  # version 0: the empty table
    table.delta.alter.set_table_properties({"delta.checkpointInterval": "5"})
    if kept:
        assert keep_versions(warehouse.open(HOURLY_USAGE), 425)

    two_months_of_commits(warehouse.uri(HOURLY_USAGE))

    if kept:
        assert DeltaTable(warehouse.uri(HOURLY_USAGE), version=0).to_pyarrow_table().num_rows == 0
    else:
        with pytest.raises(TableNotFoundError):
            DeltaTable(warehouse.uri(HOURLY_USAGE), version=0)
    warehouse.open(HOURLY_USAGE)  # the log is whole either way: the clean-up is not damage


def test_keep_versions_commits_once_and_never_shortens(tmp_path: Path) -> None:
    warehouse = Warehouse(str(tmp_path / "warehouse"))
    table = warehouse.open(HOURLY_USAGE)
    table.delta.alter.set_table_properties({"delta.deletedFileRetentionDuration": "interval 900 days"})
    table = warehouse.open(HOURLY_USAGE)

    assert keep_versions(table, 425)
    version = DeltaTable(warehouse.uri(HOURLY_USAGE)).version()
    assert not keep_versions(warehouse.open(HOURLY_USAGE), 425)
    assert DeltaTable(warehouse.uri(HOURLY_USAGE)).version() == version

    configuration = DeltaTable(warehouse.uri(HOURLY_USAGE)).metadata().configuration
    assert retention_days(configuration, "delta.logRetentionDuration") == 425
    assert retention_days(configuration, "delta.deletedFileRetentionDuration") == 900
