"""The landing sensor: incremental raw_readings runs for complete hours with new or changed files."""

from datetime import UTC, datetime

import dagster as dg

from billing_assets.automation import DEFAULT_SENSOR_STATUS, SENSOR_INTERVAL_SECONDS
from billing_assets.defs.ingestion import raw_readings
from billing_assets.landing.watch import plan_ingestion
from billing_assets.partitions import ingestion_hours, run_partitions
from billing_assets.resources.landing import LandingZone

ingest_landing_job = dg.define_asset_job("ingest_landing", selection=[raw_readings])


@dg.sensor(
    job=ingest_landing_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DEFAULT_SENSOR_STATUS,
    description="Requests raw_readings for complete ingestion hours whose files are new or changed.",
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    """One listing of the landing zone per tick; the cursor remembers each hour's file set."""
    listing, rejected = landing.list_all()
    if rejected:
        context.log.warning(f"ignoring landing folders that are not ingestion_hour=YYYY-MM-DD-HH: {rejected[:20]}")
    plan = plan_ingestion(listing, context.cursor, datetime.now(UTC), ingestion_hours.get_first_partition_key())
    if not plan.requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(plan.skip_reason(rejected)), cursor=plan.cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=r.run_key, **run_partitions(r.first, r.last)) for r in plan.requests],
        cursor=plan.cursor,
    )
