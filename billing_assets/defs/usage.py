"""Usage assets: ``hourly_usage`` per recording hour and ``cumulative_usage`` per billing month."""

import dagster as dg

from billing_assets.automation import REFRESH, UPSTREAM_CHANGED_SPAN
from billing_assets.defs.window import OneOf, window_asset
from billing_assets.partitions import TO_HOURS_SO_FAR, billing_months, recording_hours
from billing_assets.steps import usage_checks
from billing_assets.steps.usage import build_cumulative_usage, build_hourly_usage
from billing_assets.tables.schemas import CUMULATIVE_USAGE, HOURLY_USAGE

hourly_usage = window_asset(
    HOURLY_USAGE,
    build_hourly_usage,
    partitions_def=recording_hours,
    deps=["deduplicated_raw"],
    automation_condition=UPSTREAM_CHANGED_SPAN,
    group_name="usage",
    description=(
        "One row per meterpoint per recording hour (a local clock hour, keyed by the UTC instant it starts): "
        "total consumption and number of readings."
    ),
    checks={
        "matches_deduplicated_readings": (
            "Per recording hour: total consumption and reading count equal those of the deduplicated readings.",
            usage_checks.hourly_matches_readings,
        ),
    },
)

cumulative_usage = window_asset(
    CUMULATIVE_USAGE,
    build_cumulative_usage,
    partitions_def=billing_months,
    deps=[dg.AssetDep(hourly_usage, partition_mapping=TO_HOURS_SO_FAR)],
    automation_condition=REFRESH,
    group_name="usage",
    description=(
        "One row per meterpoint per hour of a billing month (local calendar month): the running "
        "total of consumption since the month began. A late reading recomputes its whole month in one run."
    ),
    checks={
        usage_checks.NEVER_DECREASES: (
            "A meterpoint's running total never decreases within a billing month.",
            OneOf(usage_checks.cumulative_invariants, usage_checks.NEVER_DECREASES),
        ),
        usage_checks.MONTH_TO_DATE_SUM: (
            "Each running total equals the month-to-date sum of hourly_usage; no hourly row is left out.",
            OneOf(usage_checks.cumulative_invariants, usage_checks.MONTH_TO_DATE_SUM),
        ),
    },
)
