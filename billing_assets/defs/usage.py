"""Usage assets: ``hourly_usage`` per recording hour and ``cumulative_usage`` per billing month."""

import dagster as dg

from billing_assets.automation import UPSTREAM_CHANGED
from billing_assets.partitions import BILLING_TZ, billing_months, hour_range, month_range, recording_hours
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps.usage import build_cumulative_usage, build_hourly_usage
from billing_assets.tables.schemas import CUMULATIVE_USAGE, HOURLY_USAGE


@dg.asset(
    deps=["deduplicated_raw"],
    partitions_def=recording_hours,
    pool=HOURLY_USAGE.name,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=UPSTREAM_CHANGED,
    group_name="usage",
    kinds={"spark", "delta"},
    description="One row per meterpoint per UTC hour: total consumption and number of readings.",
    metadata={"table": HOURLY_USAGE.name, "partition_column": HOURLY_USAGE.partition_by},
)
def hourly_usage(context: dg.AssetExecutionContext, spark: SparkResource, warehouse: Warehouse) -> dg.MaterializeResult:
    """Replace the run's recording hours with fresh totals from deduplicated_raw."""
    first, last = hour_range(context.partition_time_window)
    result = build_hourly_usage(spark.spark_session, warehouse, first, last)
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(result.rows),
            "recording_hours": f"{first} .. {last}",
            "delta_version": dg.MetadataValue.int(result.version),
        }
    )


@dg.asset(
    deps=[hourly_usage],
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
    metadata={"table": CUMULATIVE_USAGE.name, "partition_column": CUMULATIVE_USAGE.partition_by},
)
def cumulative_usage(
    context: dg.AssetExecutionContext, spark: SparkResource, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Replace the run's billing months with running totals from hourly_usage."""
    window = context.partition_time_window
    first_hour, last_hour = hour_range(window)
    first_month, last_month = month_range(window)
    result = build_cumulative_usage(
        spark.spark_session, warehouse, first_hour, last_hour, first_month, last_month, BILLING_TZ
    )
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(result.rows),
            "billing_months": f"{first_month} .. {last_month}",
            "delta_version": dg.MetadataValue.int(result.version),
        }
    )
