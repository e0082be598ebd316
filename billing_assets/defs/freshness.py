"""Landing freshness: a WARN check on ``raw_readings``, run every 15 minutes by its own job.

It cannot ride along with a materialisation: what it looks for is a materialisation that
did not happen (a stopped sensor, a failing run, a daemon that is down).
"""

from datetime import UTC, datetime

import dagster as dg

from billing_assets.defs.ingestion import raw_readings
from billing_assets.partitions import ingestion_hours
from billing_assets.resources.landing import LandingZone
from billing_assets.settings import load_settings
from billing_assets.steps.freshness_checks import landing_freshness, newest_complete_hour


@dg.asset_check(
    asset=raw_readings,
    name="newest_landing_hour_ingested",
    description=(
        "The newest complete ingestion hour in the landing zone (wall clock past H + 1 h + 5 min) "
        "has been materialised in raw_readings."
    ),
)
def newest_landing_hour_ingested(context: dg.AssetCheckExecutionContext, landing: LandingZone) -> dg.AssetCheckResult:
    """One listing of the landing zone, and one event-log lookup for the newest complete hour."""
    now = datetime.now(UTC)
    listing, _ = landing.list_all()
    first = ingestion_hours.get_first_partition_key()
    newest = newest_complete_hour((hour for hour in listing if hour >= first), now)
    ingested = newest is not None and bool(
        context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=raw_readings.key, asset_partitions=[newest]), limit=1
        ).records
    )
    passed, metadata = landing_freshness(newest, ingested, now)
    # A late hour is a soft signal: the sensor may simply be catching up.
    return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata=metadata)


landing_freshness_job = dg.define_asset_job(
    "landing_freshness", selection=dg.AssetSelection.checks(newest_landing_hour_ingested)
)

landing_freshness_schedule = dg.ScheduleDefinition(
    name="landing_freshness_every_15_minutes",
    job=landing_freshness_job,
    cron_schedule="*/15 * * * *",
    # Follows the sensors: a UI started with them stopped does not warn about hours it was told not to ingest.
    default_status=dg.DefaultScheduleStatus.RUNNING
    if load_settings().sensors_running
    else dg.DefaultScheduleStatus.STOPPED,
    description="Warns when the newest complete landing hour has not been ingested.",
)
