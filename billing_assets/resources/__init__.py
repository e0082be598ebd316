"""Resources, and the one place that turns the settings into resource instances."""

import os

import dagster as dg
from dagster_deltalake import S3Config
from dagster_deltalake.config import ClientConfig

from billing_assets.resources.landing import LandingZone
from billing_assets.resources.source import SourceDatabase
from billing_assets.resources.spark import SparkResource, spark_config
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.settings import Settings, load_settings
from billing_assets.tables.warehouse import Warehouse


def _secret(name: str) -> dg.EnvVar | None:
    """A credential as a reference to its environment variable (resolved per run, never stored)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def _region() -> str | None:
    """The AWS region of the credentials' environment (``AWS_REGION``, else ``AWS_DEFAULT_REGION``)."""
    return os.environ.get("AWS_REGION", "").strip() or os.environ.get("AWS_DEFAULT_REGION", "").strip() or None


def build_warehouse(uri: str, endpoint: str | None) -> WarehouseResource:
    """The warehouse at ``uri``; an ``s3://`` one at ``endpoint`` (None: AWS) with the landing zone's credentials."""
    if not uri.startswith("s3://"):
        return WarehouseResource(uri=uri)
    storage = S3Config(
        access_key_id=_secret("AWS_ACCESS_KEY_ID"),
        secret_access_key=_secret("AWS_SECRET_ACCESS_KEY"),
        token=_secret("AWS_SESSION_TOKEN"),
        region=_region(),
        endpoint=endpoint,
    )
    # delta-rs refuses plain-HTTP endpoints unless told (a local MinIO or test server).
    client = ClientConfig(allow_http=True) if endpoint and endpoint.startswith("http://") else None
    return WarehouseResource(uri=uri, storage=storage, client=client)


def resolved(warehouse: WarehouseResource) -> Warehouse:
    """The warehouse that ``warehouse`` describes, credentials resolved, as a run sees it (outside a run)."""
    with dg.build_resources({"warehouse": warehouse}) as built:
        return built.warehouse.get_warehouse()


def resolved_warehouse(uri: str, endpoint: str | None) -> Warehouse:
    """The warehouse at ``uri`` configured as the pipeline's, its ``dg.EnvVar`` credentials resolved (outside a run)."""
    return resolved(build_warehouse(uri, endpoint))


def build_resources(
    landing_uri: str | None = None,
    warehouse_uri: str | None = None,
    spark_master: str | None = None,
    source_db: str | None = None,
    *,
    settings: Settings | None = None,
) -> dict[str, dg.ConfigurableResource]:
    """Resources from explicit values, else ``settings`` (default: the environment's ``load_settings()``)."""
    settings = load_settings() if settings is None else settings
    return {
        "spark": SparkResource(
            spark_config=spark_config(spark_master or settings.spark_master_or_local),
            log_level=settings.spark_log_level,
        ),
        "landing": LandingZone(
            uri=landing_uri or settings.landing_uri,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=_secret("AWS_ACCESS_KEY_ID"),
            secret_access_key=_secret("AWS_SECRET_ACCESS_KEY"),
            session_token=_secret("AWS_SESSION_TOKEN"),
            max_reading_kwh=settings.max_reading_kwh,
            piece_bytes=settings.landing_piece_bytes,
        ),
        "warehouse": build_warehouse(warehouse_uri or settings.warehouse_uri, settings.s3_endpoint_url),
        "source": SourceDatabase(path=source_db or settings.source_db),
    }
