"""Usage assets: ``hourly_usage`` per recording hour and ``cumulative_usage`` per billing month."""

import dagster as dg

from billing_assets.automation import UPSTREAM_CHANGED
from billing_assets.defs.checks import (
    CUMULATIVE,
    HOURLY,
    blocking_specs,
    cumulative_check_results,
    hourly_check_results,
)
from billing_assets.defs.metadata import table_metadata, written_metadata
from billing_assets.partitions import (
    BILLING_TZ,
    TO_HOURS_SO_FAR,
    billing_months,
    hour_range,
    month_range,
    recording_hours,
)
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps.recompute import between
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
    metadata=table_metadata(HOURLY_USAGE),
    check_specs=blocking_specs(HOURLY_USAGE.name, HOURLY),
)
def hourly_usage(context: dg.AssetExecutionContext, spark: SparkResource, warehouse: Warehouse) -> dg.MaterializeResult:
    """Replace the run's recording hours with fresh totals from deduplicated_raw."""
    first, last = hour_range(context.partition_time_window)
    result = build_hourly_usage(spark.spark_session, warehouse, first, last)
    return dg.MaterializeResult(
        metadata={
            **written_metadata(
                spark.spark_session,
                warehouse,
                HOURLY_USAGE,
                result.rows,
                len(context.partition_keys),
                between(HOURLY_USAGE.partition_by, first, last),
                result.version,
            ),
            "recording_hours": f"{first} .. {last}",
        },
        check_results=hourly_check_results(context, spark.spark_session, warehouse, first, last, result.source_version),
    )


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
    window = context.partition_time_window
    first_hour, last_hour = hour_range(window)
    first_month, last_month = month_range(window)
    result = build_cumulative_usage(
        spark.spark_session, warehouse, first_hour, last_hour, first_month, last_month, BILLING_TZ
    )
    return dg.MaterializeResult(
        metadata={
            **written_metadata(
                spark.spark_session,
                warehouse,
                CUMULATIVE_USAGE,
                result.rows,
                len(context.partition_keys),
                between(CUMULATIVE_USAGE.partition_by, first_month, last_month),
                result.version,
            ),
            "billing_months": f"{first_month} .. {last_month}",
        },
        check_results=cumulative_check_results(
            context,
            spark.spark_session,
            warehouse,
            (first_hour, last_hour),
            (first_month, last_month),
            result.source_version,
        ),
    )
