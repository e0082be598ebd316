"""Usage assets: ``hourly_usage`` per recording hour and ``cumulative_usage`` per billing month."""

import dagster as dg

from billing_assets.automation import UPSTREAM_CHANGED, UPSTREAM_CHANGED_SPAN
from billing_assets.defs.checks import blocking_specs
from billing_assets.defs.metadata import replaced, table_metadata
from billing_assets.partitions import TO_HOURS_SO_FAR, billing_months, recording_hours
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps import usage_checks
from billing_assets.steps.usage import build_cumulative_usage, build_hourly_usage
from billing_assets.tables.schemas import CUMULATIVE_USAGE, HOURLY_USAGE

#: Check name -> description, per asset.
HOURLY = {
    "matches_deduplicated_readings": (
        "Per recording hour: total consumption and reading count equal those of the deduplicated readings."
    ),
}
CUMULATIVE = {
    "never_decreases_within_month": "A meterpoint's running total never decreases within a billing month.",
    "equals_month_to_date_hourly_sum": (
        "Each running total equals the month-to-date sum of hourly_usage; no hourly row is left out."
    ),
}


@dg.asset(
    deps=["deduplicated_raw"],
    partitions_def=recording_hours,
    pool=HOURLY_USAGE.name,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=UPSTREAM_CHANGED_SPAN,
    group_name="usage",
    kinds={"spark", "delta"},
    description="One row per meterpoint per UTC hour: total consumption and number of readings.",
    metadata=table_metadata(HOURLY_USAGE),
    check_specs=blocking_specs(HOURLY_USAGE.name, HOURLY),
)
def hourly_usage(context: dg.AssetExecutionContext, spark: SparkResource, warehouse: Warehouse) -> dg.MaterializeResult:
    """Replace the run's recording hours with fresh totals from deduplicated_raw."""
    checks = {"matches_deduplicated_readings": usage_checks.hourly_matches_readings}
    return replaced(context, spark, warehouse, HOURLY_USAGE, build_hourly_usage, checks)


@dg.asset(
    deps=[dg.AssetDep(hourly_usage, partition_mapping=TO_HOURS_SO_FAR)],
    partitions_def=billing_months,
    pool=CUMULATIVE_USAGE.name,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=UPSTREAM_CHANGED,
    group_name="usage",
    kinds={"spark", "delta"},
    description=(
        "One row per meterpoint per hour of a billing month (local calendar month): the running "
        "total of consumption since the month began. A late reading recomputes its whole month in one run."
    ),
    metadata=table_metadata(CUMULATIVE_USAGE),
    check_specs=blocking_specs(CUMULATIVE_USAGE.name, CUMULATIVE),
)
def cumulative_usage(
    context: dg.AssetExecutionContext, spark: SparkResource, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Replace the run's billing months with running totals from hourly_usage."""
    checks = {
        "never_decreases_within_month": usage_checks.cumulative_never_decreases,
        "equals_month_to_date_hourly_sum": usage_checks.cumulative_matches_hourly,
    }
    return replaced(context, spark, warehouse, CUMULATIVE_USAGE, build_cumulative_usage, checks)
