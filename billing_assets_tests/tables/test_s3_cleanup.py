"""A refused write on S3 leaves no object behind, folder markers included (a real S3-compatible server).

pyarrow's ``S3FileSystem.delete_file`` writes an empty ``folder/`` object when the file it
deletes was the last one under that prefix, so the clean-up of a refused attempt used to
leave one 0-byte marker per partition it had written alone.
"""

import boto3
import pytest
from deltalake.exceptions import CommitFailedError
from pyspark.sql import SparkSession

from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.tables.delta_io import PartitionSpillError, read_table, replace_partitions
from billing_assets.tables.schemas import HOURLY_USAGE
from billing_assets.tables.selection import partitions
from billing_assets.tables.warehouse import Warehouse
from billing_assets_tests.tables.test_delta_write import usage

HOURS = ["2026-01-01-00", "2026-01-01-01", "2026-01-01-02"]


@pytest.fixture
def warehouse(s3_warehouse: WarehouseResource) -> Warehouse:
    """The warehouse on S3 that the ``s3_warehouse`` resource describes."""
    return s3_warehouse.get_warehouse()


def objects(warehouse: Warehouse, uri: str) -> dict[str, int]:
    """Every object under ``uri`` as the store holds it (key: size), markers included."""
    options = warehouse.storage.options
    client = boto3.client(
        "s3",
        endpoint_url=options["endpoint"],
        aws_access_key_id=options["access_key_id"],
        aws_secret_access_key=options["secret_access_key"],
        region_name=options["region"],
    )
    bucket, prefix = uri.removeprefix("s3://").split("/", 1)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}


def no_markers(found: dict[str, int]) -> None:
    markers = sorted(key for key, size in found.items() if key.endswith("/") or size == 0)
    assert not markers, f"{len(markers)} folder marker(s) or empty object(s), e.g. {markers[:3]}"


def test_the_loser_of_a_commit_conflict_leaves_no_folder_marker(spark: SparkSession, warehouse: Warehouse) -> None:
    first, second = warehouse.open(HOURLY_USAGE), warehouse.open(HOURLY_USAGE)
    replace_partitions(usage(spark, [("m1", HOURS[0], 1.0)]), first, partitions(HOURS[:1]))
    # The loser also wrote two hours nobody else did: their folders held only its files.
    rows = [("m2", hour, 2.0) for hour in HOURS]
    with pytest.raises(CommitFailedError):
        replace_partitions(usage(spark, rows), second, partitions(HOURS))
    table = warehouse.open(HOURLY_USAGE)
    found = objects(warehouse, table.uri)
    no_markers(found)
    data = [key for key in found if key.endswith(".parquet")]
    assert len(data) == 1 == len(table.delta.file_uris())  # only the winner's file
    assert not any(f"recording_hour={hour}" in key for key in found for hour in HOURS[1:])
    assert [row.meterpoint_id for row in read_table(spark, table).collect()] == ["m1"]


def test_a_write_refused_before_its_commit_leaves_no_folder_marker(spark: SparkSession, warehouse: Warehouse) -> None:
    table = warehouse.open(HOURLY_USAGE)
    rows = [("m1", HOURS[0], 1.0), ("m1", HOURS[2], 1.0)]  # the second hour is not being replaced
    with pytest.raises(PartitionSpillError):
        replace_partitions(usage(spark, rows), table, partitions(HOURS[:1]))
    found = objects(warehouse, table.uri)
    no_markers(found)
    assert not [key for key in found if "/_delta_log/" not in key]  # the allowed hour's file went too
