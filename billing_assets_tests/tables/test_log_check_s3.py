"""The Delta log check on S3 (a real S3-compatible server): the same damage is named as on local disk."""

import re

import pytest
import s3fs
from pyspark.sql import SparkSession

from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.tables import log_check
from billing_assets.tables.delta_io import replace_partitions
from billing_assets.tables.log_check import DamagedTableLog
from billing_assets.tables.schemas import HOURLY_USAGE
from billing_assets.tables.selection import partitions
from billing_assets.tables.warehouse import Warehouse
from billing_assets_tests.conftest import S3Requests
from billing_assets_tests.tables.test_delta_write import usage

HOURS = ["2026-01-01-00", "2026-01-01-01"]


@pytest.fixture
def warehouse(s3_warehouse: WarehouseResource) -> Warehouse:
    """The warehouse on S3 that the ``s3_warehouse`` resource describes."""
    return s3_warehouse.get_warehouse()


def store(warehouse: Warehouse) -> s3fs.S3FileSystem:
    options = warehouse.storage.options
    return s3fs.S3FileSystem(
        key=options["access_key_id"],
        secret=options["secret_access_key"],
        client_kwargs={"endpoint_url": options["endpoint"], "region_name": options["region"]},
        skip_instance_cache=True,
    )


@pytest.fixture
def table_uri(spark: SparkSession, warehouse: Warehouse) -> str:
    """hourly_usage on S3 at version 2, found whole by this process."""
    for hour in HOURS:
        replace_partitions(usage(spark, [("m1", hour, 1.0)]), warehouse.open(HOURLY_USAGE), partitions([hour]))
    assert warehouse.open(HOURLY_USAGE).delta.version() == 2
    return warehouse.uri(HOURLY_USAGE)


def test_the_mark_is_one_put(spark: SparkSession, warehouse: Warehouse, table_uri: str, s3_server_log) -> None:
    """S3 replaces an object whole: one PUT (no multipart upload) is all a reader can ever see."""
    requests = S3Requests(s3_server_log)
    replace_partitions(usage(spark, [("m2", HOURS[0], 2.0)]), warehouse.open(HOURLY_USAGE), partitions(HOURS[:1]))
    writes = [(method, status) for method, path, status in requests.since() if path.endswith(log_check.HIGH_WATER_MARK)]
    assert [write for write in writes if write[0] != "GET" and write[0] != "HEAD"] == [("PUT", 200)]
    assert store(warehouse).cat_file(f"{table_uri}/_delta_log/{log_check.HIGH_WATER_MARK}") == b"3\n"


def test_a_data_file_deleted_after_the_table_was_found_whole_is_named(warehouse: Warehouse, table_uri: str) -> None:
    [gone] = warehouse.open(HOURLY_USAGE).delta.file_uris(partition_filters=[("recording_hour", "=", HOURS[1])])
    store(warehouse).rm_file(gone)
    with pytest.raises(DamagedTableLog, match=r"version 2 names 1 data file\(s\) that do not exist"):
        warehouse.open(HOURLY_USAGE)


@pytest.mark.parametrize("content", [b"", b"two\n"], ids=["empty", "not_a_number"])
def test_an_unreadable_mark_is_named(content: bytes, warehouse: Warehouse, table_uri: str) -> None:
    mark = f"{table_uri}/_delta_log/{log_check.HIGH_WATER_MARK}"
    store(warehouse).pipe_file(mark, content)
    with pytest.raises(DamagedTableLog, match=re.escape(f"{mark.removeprefix('s3://')} is unreadable")):
        warehouse.open(HOURLY_USAGE)
