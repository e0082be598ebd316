"""The warehouse on S3 (a real S3-compatible server process): the same tables as on local disk.

Spark here cannot read or write S3 itself, so these runs exercise the executor-side pyarrow
reads and writes and delta-rs' commits against the server, with the landing zone there too.
"""

import uuid
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake.exceptions import CommitFailedError
from pyspark.sql import Row

from billing_assets.resources.landing import LandingZone
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.tables.delta_io import read_table, replace_partitions
from billing_assets.tables.schemas import ALL_TABLES, HOURLY_USAGE
from billing_assets.tables.selection import partitions
from billing_assets_tests.conftest import Pipeline, S3Requests, upload
from billing_assets_tests.defs.scenario import H1, H2, land_scenario
from billing_assets_tests.defs.test_gold import MARCH, OCTOBER, land_readings, write_source
from billing_assets_tests.tables.test_delta_write import usage

HOURS = (H1, H2, MARCH, OCTOBER)


def land_everything(pipeline: Pipeline) -> None:
    """The hand-computed scenario, the gold scenario's readings and its source database."""
    land_scenario(pipeline)
    land_readings(pipeline)
    write_source(pipeline.source_db)


def materialize_everything(pipeline: Pipeline) -> None:
    """Every asset over the scenarios' partitions, as the UI's runs would."""
    pipeline.materialize("dim_agreement", "2026-03-30")
    for hour in HOURS:
        pipeline.materialize("raw_readings", hour)
    pipeline.materialize("hourly_usage", "2026-03-07-07+0000", "2026-03-10-10+0000")
    pipeline.materialize("cumulative_usage", "2026-03")
    for first, last in (("2026-03-27", "2026-03-29"), ("2026-10-25", "2026-10-25")):
        pipeline.materialize("half_hourly_consumption", first, last)
    pipeline.materialize("active_agreements", "2026-03-27", "2026-03-29")


@pytest.fixture
def on_s3(tmp_path, spark, s3_landing: LandingZone, s3_warehouse: WarehouseResource) -> tuple[Pipeline, Pipeline]:
    """The same input on local disk and, landing zone and warehouse both, on S3; every asset built in each."""
    (tmp_path / "local").mkdir()
    local = Pipeline(tmp_path / "local", spark)
    land_everything(local)
    materialize_everything(local)
    (tmp_path / "remote").mkdir()
    remote = Pipeline(tmp_path / "remote", spark, landing=s3_landing, warehouse=s3_warehouse)
    write_source(remote.source_db)
    upload(s3_landing, local.landing)
    materialize_everything(remote)
    return local, remote


def test_every_table_on_s3_equals_local_row_by_row_and_a_rerun_changes_nothing(on_s3, s3_warehouse) -> None:
    local, remote = on_s3
    expected = local.snapshot()
    assert all(expected[name] for name in ("raw_readings", "cumulative_usage", "agreement_days", "active_agreements"))
    assert remote.snapshot() == expected

    keys = object_keys(s3_warehouse, s3_warehouse.uri)
    assert len(keys) > 50 and not remote.warehouse.exists()  # the tables are on S3, none on local disk
    assert {key.split("/")[2] for key in keys} <= {spec.name for spec in ALL_TABLES}
    assert not any(key.endswith("/") for key in keys)  # no folder marker objects

    materialize_everything(remote)
    assert remote.snapshot() == expected


def object_keys(warehouse: WarehouseResource, uri: str) -> list[str]:
    """Every object key below ``uri`` (implied folders left out)."""
    fs, root = warehouse.get_warehouse().storage.filesystem(uri)
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    return [info.path for info in fs.get_file_info(selector) if info.type == pafs.FileType.File]


def test_a_commit_conflict_on_s3_is_refused_and_leaves_no_orphan_file(spark, s3_warehouse) -> None:
    first, second = s3_warehouse.get_warehouse().open(HOURLY_USAGE), s3_warehouse.get_warehouse().open(HOURLY_USAGE)
    hour = ["2026-01-01-00"]
    replace_partitions(usage(spark, [("m1", hour[0], 1.0)]), first, partitions(hour))
    with pytest.raises(CommitFailedError):
        replace_partitions(usage(spark, [("m2", hour[0], 2.0)]), second, partitions(hour))
    table = s3_warehouse.get_warehouse().open(HOURLY_USAGE)
    data = [key for key in object_keys(s3_warehouse, table.uri) if key.endswith(".parquet")]
    assert len(data) == 1 == len(table.delta.file_uris())  # the loser's file was deleted, not left behind
    assert read_table(spark, table).select("meterpoint_id").collect() == [Row(meterpoint_id="m1")]


def test_a_data_file_costs_one_request_to_write_and_two_to_read(spark, s3_warehouse, s3_server_log: Path) -> None:
    """S3 bills and waits by the request: a file is one PUT (no multipart upload), a read one HEAD and one GET.

    However large the file: a stream read of a whole object asks for it 256 KiB at a time.
    """
    small, large = "2026-01-01-00", "2026-01-01-01"
    rows = [("m1", small, 1.0)] + [(uuid.uuid4().hex, large, float(i)) for i in range(60_000)]
    table = s3_warehouse.get_warehouse().open(HOURLY_USAGE)
    requests = S3Requests(s3_server_log)
    replace_partitions(usage(spark, rows), table, partitions([small, large]))
    written = Counter(method for method, path, _ in requests.since() if path.endswith(".parquet"))
    assert written == {"PUT": 2}

    table = s3_warehouse.get_warehouse().open(HOURLY_USAGE)
    assert max(pa.table(table.delta.get_add_actions(flatten=True))["size_bytes"].to_pylist()) > 1 << 20
    requests = S3Requests(s3_server_log)
    assert read_table(spark, table).count() == len(rows)
    read = Counter(method for method, path, _ in requests.since() if path.endswith(".parquet"))
    assert read == {"HEAD": 2, "GET": 2}
