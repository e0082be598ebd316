"""The code location: a short assembly of the domain modules."""

import dagster as dg

from billing_assets.automation import automation_sensor
from billing_assets.defs.dimensions import agreement_days, source_dimensions
from billing_assets.defs.freshness import (
    landing_freshness_job,
    landing_freshness_schedule,
    newest_landing_hour_ingested,
)
from billing_assets.defs.gold import active_agreements, consumption_gold
from billing_assets.defs.ingestion import deduplicated_raw, raw_readings
from billing_assets.defs.sensors import ingest_landing_job, landing_sensor
from billing_assets.defs.statements import settle_statements
from billing_assets.defs.usage import cumulative_usage, hourly_usage
from billing_assets.resources import build_resources

ASSETS = [
    raw_readings,
    deduplicated_raw,
    hourly_usage,
    cumulative_usage,
    source_dimensions,
    agreement_days,
    consumption_gold,
    active_agreements,
    settle_statements,
]


@dg.definitions
def defs() -> dg.Definitions:
    """Definitions for the environment described by the ``BILLING_*`` variables."""
    return dg.Definitions(
        assets=ASSETS,
        resources=build_resources(),
        asset_checks=[newest_landing_hour_ingested],
        sensors=[landing_sensor, automation_sensor],
        schedules=[landing_freshness_schedule],
        jobs=[ingest_landing_job, landing_freshness_job],
        # One process and one Spark session per run: a JVM per step would cost ~5 s each.
        executor=dg.in_process_executor,
    )
