"""Resources, and the one place that turns the environment into resource instances."""

import os

import dagster as dg
from dagster_deltalake import S3Config
from dagster_deltalake.config import ClientConfig

from billing_assets.resources.landing import LandingZone
from billing_assets.resources.source import SourceDatabase
from billing_assets.resources.spark import SparkResource, spark_config
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.settings import DEFAULT_LANDING_URI, DEFAULT_SOURCE_DB, DEFAULT_WAREHOUSE_URI, env
from billing_assets.tables.warehouse import Warehouse


def _secret(name: str) -> dg.EnvVar | None:
    """A credential as a reference to its environment variable (resolved per run, never stored)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_warehouse(uri: str) -> WarehouseResource:
    """The warehouse at ``uri``; an ``s3://`` one takes the same endpoint and credentials as the landing zone."""
    if not uri.startswith("s3://"):
        return WarehouseResource(uri=uri)
    endpoint = env("BILLING_S3_ENDPOINT_URL", "") or None
    storage = S3Config(
        access_key_id=_secret("AWS_ACCESS_KEY_ID"),
        secret_access_key=_secret("AWS_SECRET_ACCESS_KEY"),
        token=_secret("AWS_SESSION_TOKEN"),
        region=env("AWS_REGION", "") or env("AWS_DEFAULT_REGION", "") or None,
        endpoint=endpoint,
    )
    # delta-rs refuses plain-HTTP endpoints unless told (a local MinIO or test server).
    client = ClientConfig(allow_http=True) if endpoint and endpoint.startswith("http://") else None
    return WarehouseResource(uri=uri, storage=storage, client=client)


def resolved(warehouse: WarehouseResource) -> Warehouse:
    """The warehouse that ``warehouse`` describes, credentials resolved, as a run sees it (outside a run)."""
    with dg.build_resources({"warehouse": warehouse}) as built:
        return built.warehouse.get_warehouse()


def resolved_warehouse(uri: str) -> Warehouse:
    """The warehouse at ``uri`` configured as the pipeline's, its ``dg.EnvVar`` credentials resolved (outside a run)."""
    return resolved(build_warehouse(uri))


def build_resources(
    landing_uri: str | None = None,
    warehouse_uri: str | None = None,
    spark_master: str | None = None,
    source_db: str | None = None,
) -> dict[str, dg.ConfigurableResource]:
    """Resources from explicit values, else ``BILLING_*`` environment variables, else defaults."""
    return {
        "spark": SparkResource(spark_config=spark_config(spark_master or env("BILLING_SPARK_MASTER", "local[*]"))),
        "landing": LandingZone(
            uri=landing_uri or env("BILLING_LANDING_URI", DEFAULT_LANDING_URI),
            endpoint_url=env("BILLING_S3_ENDPOINT_URL", "") or None,
            access_key_id=_secret("AWS_ACCESS_KEY_ID"),
            secret_access_key=_secret("AWS_SECRET_ACCESS_KEY"),
            session_token=_secret("AWS_SESSION_TOKEN"),
        ),
        "warehouse": build_warehouse(warehouse_uri or env("BILLING_WAREHOUSE_URI", DEFAULT_WAREHOUSE_URI)),
        "source": SourceDatabase(path=source_db or env("BILLING_SOURCE_DB", DEFAULT_SOURCE_DB)),
    }
