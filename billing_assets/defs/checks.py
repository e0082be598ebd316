"""Asset checks that ride along with the materialisations they guard.

Each asset declares its checks with ``check_specs`` and returns their results from the same
run, so every sensor, automation, backfill and ``process`` run executes them. The billing
invariants are blocking with ERROR severity: a failure fails the run after the
materialisation and its figures are recorded, and nothing downstream in that run executes.

Dagster accepts check specs only for the assets an op outputs, so the invariants of the
``deduplicated_raw`` rows that ``raw_readings`` writes incrementally are checks on
``raw_readings`` named ``deduplicated_raw_*``; the repair asset ``deduplicated_raw`` runs the
same queries as its own checks.
"""

from collections.abc import Callable, Mapping
from datetime import date

import dagster as dg
from pyspark.sql import SparkSession

from billing_assets.domain.timestamps import hour_keys_between, parse_hour_key
from billing_assets.domain.watermark import HOUR
from billing_assets.partitions import BILLING_TZ
from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps import checks
from billing_assets.steps.checks import CheckOutcome
from billing_assets.steps.ingest import IngestReport
from billing_assets.tables.schemas import (
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    CUMULATIVE_USAGE,
    DEDUPLICATED_RAW,
    HALF_HOURLY_CONSUMPTION,
    HOURLY_USAGE,
    PRODUCT_DAILY_CONSUMPTION,
    RAW_READINGS,
)

#: Check name -> description, per asset.
INGESTION = {
    "records_conserved": (
        "Per ingestion hour: records read = inserted + duplicates + conflicts + quarantined, "
        "and the committed raw and quarantine rows agree with those figures."
    ),
    "deduplicated_raw_unique_record_id": (
        "No record_id of the deduplicated_raw hours this run touched appears twice, in those hours "
        "or within 7 days + 1 h 5 min of them."
    ),
    "deduplicated_raw_recording_hour": (
        "Every deduplicated_raw row this run touched has recording_hour = the UTC hour of interval_start."
    ),
}
DEDUPLICATED = {
    "unique_record_id": (
        "No record_id of the rebuilt hours appears twice, in those hours or within 7 days + 1 h 5 min of them."
    ),
    "recording_hour_matches_interval_start": "Every rebuilt row has recording_hour = the UTC hour of interval_start.",
}
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
HALF_HOURLY = {
    "half_hours_sum_to_hours": "Per UTC hour: the half-hourly totals add up to the deduplicated readings' total.",
}
PRODUCT_DAILY = {
    "products_plus_unmatched_sum_to_day": (
        "Per local day: product totals plus unmatched_readings equal the half-hourly total."
    ),
}
PRODUCT_HALF_HOURLY = {
    "sums_to_product_daily": "Per local day and product: the half-hourly product totals add up to the daily total.",
}


def blocking_specs(asset: str, checks: Mapping[str, str]) -> list[dg.AssetCheckSpec]:
    """Blocking check specs for ``asset``: a failure stops the run before anything downstream."""
    return [dg.AssetCheckSpec(name, asset=asset, description=text, blocking=True) for name, text in checks.items()]


def check_results(
    context: dg.AssetExecutionContext, asset: str, checks: Mapping[str, Callable[[], CheckOutcome]]
) -> list[dg.AssetCheckResult]:
    """Run the selected checks of ``asset`` (each a thunk, so unselected ones cost nothing) as ERROR results."""
    selected = context.selected_asset_check_keys
    results = []
    for name, evaluate in checks.items():
        if dg.AssetCheckKey(dg.AssetKey(asset), name) not in selected:
            continue
        passed, metadata = evaluate()
        results.append(
            dg.AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=metadata,
            )
        )
    return results


def ingestion_check_results(
    context: dg.AssetExecutionContext, spark: SparkSession, warehouse: Warehouse, report: IngestReport
) -> list[dg.AssetCheckResult]:
    """Conservation of the run's ingestion hours, and the deduplicated_raw hours it touched."""
    hours = report.touched_hours
    return check_results(
        context,
        RAW_READINGS.name,
        {
            "records_conserved": lambda: checks.records_conserved(spark, warehouse, report.counts, report.versions),
            "deduplicated_raw_unique_record_id": lambda: checks.unique_record_ids(spark, warehouse, hours),
            "deduplicated_raw_recording_hour": lambda: checks.recording_hours_match(spark, warehouse, hours),
        },
    )


def deduplicated_check_results(
    context: dg.AssetExecutionContext, spark: SparkSession, warehouse: Warehouse, first_hour: str, last_hour: str
) -> list[dg.AssetCheckResult]:
    """The deduplication invariants over the rebuilt recording hours."""
    hours = hour_keys_between(parse_hour_key(first_hour), parse_hour_key(last_hour) + HOUR)
    return check_results(
        context,
        DEDUPLICATED_RAW.name,
        {
            "unique_record_id": lambda: checks.unique_record_ids(spark, warehouse, hours),
            "recording_hour_matches_interval_start": lambda: checks.recording_hours_match(spark, warehouse, hours),
        },
    )


def hourly_check_results(
    context: dg.AssetExecutionContext,
    spark: SparkSession,
    warehouse: Warehouse,
    first_hour: str,
    last_hour: str,
    readings_version: int | None,
) -> list[dg.AssetCheckResult]:
    """hourly_usage of the run's hours against the readings it was computed from."""
    return check_results(
        context,
        HOURLY_USAGE.name,
        {
            "matches_deduplicated_readings": lambda: checks.hourly_matches_readings(
                spark, warehouse, first_hour, last_hour, readings_version
            )
        },
    )


def cumulative_check_results(
    context: dg.AssetExecutionContext,
    spark: SparkSession,
    warehouse: Warehouse,
    hours: tuple[str, str],
    months: tuple[str, str],
    hourly_version: int | None,
) -> list[dg.AssetCheckResult]:
    """cumulative_usage of the run's billing months against the hourly_usage it was computed from."""
    return check_results(
        context,
        CUMULATIVE_USAGE.name,
        {
            "never_decreases_within_month": lambda: checks.cumulative_never_decreases(spark, warehouse, *months),
            "equals_month_to_date_hourly_sum": lambda: checks.cumulative_matches_hourly(
                spark, warehouse, *hours, *months, BILLING_TZ, hourly_version
            ),
        },
    )


def gold_check_results(
    context: dg.AssetExecutionContext,
    spark: SparkSession,
    warehouse: Warehouse,
    asset: str,
    days: tuple[date, date],
    hours: tuple[str, str],
    readings_version: int | None,
) -> list[dg.AssetCheckResult]:
    """The reconciliation of one readings-based gold table over the run's days."""
    by_asset: dict[str, dict[str, Callable[[], CheckOutcome]]] = {
        HALF_HOURLY_CONSUMPTION.name: {
            "half_hours_sum_to_hours": lambda: checks.half_hours_sum_to_hours(
                spark, warehouse, *days, *hours, readings_version
            )
        },
        PRODUCT_DAILY_CONSUMPTION.name: {
            "products_plus_unmatched_sum_to_day": lambda: checks.products_plus_unmatched_sum_to_day(
                spark, warehouse, *days
            )
        },
        AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT.name: {
            "sums_to_product_daily": lambda: checks.product_half_hours_sum_to_days(spark, warehouse, *days)
        },
    }
    return check_results(context, asset, by_asset.get(asset, {}))


#: Check specs of the readings-based gold tables, by asset.
GOLD = {
    HALF_HOURLY_CONSUMPTION.name: HALF_HOURLY,
    PRODUCT_DAILY_CONSUMPTION.name: PRODUCT_DAILY,
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT.name: PRODUCT_HALF_HOURLY,
}
