"""Temporary S3 credentials (key, secret and session token) work for the landing zone and the warehouse.

The S3 server checks credentials here (moto with authentication switched on): temporary
credentials come from its STS, and a request signed without their session token is refused,
as on AWS.
"""

import json
import urllib.request
from collections.abc import Iterator

import boto3
import dagster as dg
import pytest
import s3fs
from pyspark.sql import SparkSession

from billing_assets.landing.files import read_landing_file
from billing_assets.resources import build_resources, resolved_warehouse
from billing_assets.resources.landing import LandingZone
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.settings import load_settings
from billing_assets.tables.delta_io import read_table, replace_partitions
from billing_assets.tables.schemas import HOURLY_USAGE
from billing_assets.tables.selection import partitions
from billing_assets_tests.tables.test_delta_write import usage

HOUR = "2026-03-10-08"
READING = b'{"record_id": "r1", "meterpoint_id": "m1", "interval_start": "2026-03-10T08:00:00Z", "consumption": 0.5}\n'


def set_authentication(server: str, unchecked_requests: str) -> None:
    """Let the server answer that many more requests unchecked ("inf": never check)."""
    request = urllib.request.Request(
        f"{server}/moto-api/reset-auth",
        data=unchecked_requests.encode(),
        headers={"Content-Type": "application/octet-stream"},  # not a form: the server reads the raw body
        method="POST",
    )
    urllib.request.urlopen(request).close()


@pytest.fixture
def temporary_credentials(
    s3_server: str, s3_landing: LandingZone, s3_warehouse: WarehouseResource, monkeypatch
) -> Iterator[dict[str, str]]:
    """A landed file, then STS credentials of a role allowed all of S3 in the environment; the server checks them."""
    s3fs.S3FileSystem(**s3_landing.storage_options(), skip_instance_cache=True).pipe(
        f"{s3_landing.uri}/ingestion_hour={HOUR}/a.json", READING
    )
    clients = {"endpoint_url": s3_server, "region_name": "us-east-1"}
    clients |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    iam, sts = boto3.client("iam", **clients), boto3.client("sts", **clients)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="billing-runs", AssumeRolePolicyDocument=json.dumps(policy))["Role"]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_role_policy(RoleName="billing-runs", PolicyName="s3", PolicyDocument=json.dumps(allow))
    credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="billing")["Credentials"]
    environment = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_REGION": "us-east-1",
        "BILLING_S3_ENDPOINT_URL": s3_server,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    set_authentication(s3_server, "0")
    try:
        yield environment
    finally:
        set_authentication(s3_server, "inf")


def test_the_landing_zone_works_with_temporary_credentials(temporary_credentials, s3_landing: LandingZone) -> None:
    configured = build_resources(landing_uri=s3_landing.uri)["landing"]
    with dg.build_resources({"landing": configured}) as built:
        landing = built.landing
        [landed] = landing.list_files(HOUR)
        assert read_landing_file(landed.uri, landing.uri, landing.storage_options()) == READING
    assert isinstance(configured.session_token, dg.EnvVar)  # resolved per run, never stored
    # The server does check: the same key and secret without the token are refused.
    without_token = LandingZone(
        uri=s3_landing.uri,
        endpoint_url=s3_landing.endpoint_url,
        access_key_id=temporary_credentials["AWS_ACCESS_KEY_ID"],
        secret_access_key=temporary_credentials["AWS_SECRET_ACCESS_KEY"],
    )
    with pytest.raises(PermissionError):
        without_token.list_files(HOUR)


def test_the_warehouse_writes_and_reads_with_temporary_credentials(
    temporary_credentials, s3_warehouse: WarehouseResource, spark: SparkSession
) -> None:
    """delta-rs commits, and the executors' pyarrow writes and reads the files, all with the token."""
    warehouse = resolved_warehouse(s3_warehouse.uri, load_settings().s3_endpoint_url)
    replace_partitions(
        usage(spark, [("m1", "2026-01-01-00", 1.5)]), warehouse.open(HOURLY_USAGE), partitions(["2026-01-01-00"])
    )
    rows = read_table(spark, warehouse.open(HOURLY_USAGE)).collect()
    assert [(row.meterpoint_id, row.consumption) for row in rows] == [("m1", 1.5)]
