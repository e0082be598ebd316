"""Resources, and the one place that turns the environment into resource instances."""

import os

import dagster as dg

from billing_assets.resources.landing import LandingZone
from billing_assets.resources.source import SourceDatabase
from billing_assets.resources.spark import SparkResource, spark_config
from billing_assets.resources.warehouse import Warehouse
from billing_assets.settings import DEFAULT_LANDING_URI, DEFAULT_SOURCE_DB, DEFAULT_WAREHOUSE_URI, env


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
            # Credentials stay in the environment: resolved per run, never stored in config.
            access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID") if os.environ.get("AWS_ACCESS_KEY_ID") else None,
            secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY") if os.environ.get("AWS_SECRET_ACCESS_KEY") else None,
        ),
        "warehouse": Warehouse(uri=warehouse_uri or env("BILLING_WAREHOUSE_URI", DEFAULT_WAREHOUSE_URI)),
        "source": SourceDatabase(path=source_db or env("BILLING_SOURCE_DB", DEFAULT_SOURCE_DB)),
    }
