"""Gold assets for analysts: consumption by half hour and by product, unmatched readings, active agreements."""

from collections.abc import Callable
from functools import partial

import dagster as dg
from pyspark.sql import SparkSession

from billing_assets.automation import COVERAGE_CHANGED, READINGS_OR_THEIR_COVERAGE_CHANGED
from billing_assets.defs.checks import blocking_specs, check_results
from billing_assets.defs.metadata import materialized, table_metadata
from billing_assets.defs.window import window_asset
from billing_assets.partitions import TO_HOURS_SO_FAR, local_days, run_window
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.steps import gold_checks
from billing_assets.steps.gold import build_active_agreements, build_consumption_gold
from billing_assets.steps.invariants import CheckOutcome
from billing_assets.tables.schemas import (
    ACTIVE_AGREEMENTS,
    AGREEMENT_DAYS,
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    HALF_HOURLY_CONSUMPTION,
    PRODUCT_DAILY_CONSUMPTION,
    UNMATCHED_READINGS,
    TableSpec,
)
from billing_assets.tables.warehouse import Warehouse

# Today's partition depends on hours that have not happened yet.
READINGS = dg.AssetDep("deduplicated_raw", partition_mapping=TO_HOURS_SO_FAR)

#: The readings-based gold tables: description, dependencies and check name -> description.
_READINGS_GOLD = {
    HALF_HOURLY_CONSUMPTION: (
        "One row per half hour (UTC interval_start, local settlement date and period 1..46/48/50): "
        "meterpoints with readings and their total consumption, every reading included.",
        [READINGS],
        {
            "half_hours_sum_to_hours": (
                "Per recording hour: the half-hourly totals add up to the deduplicated readings' total."
            )
        },
    ),
    PRODUCT_DAILY_CONSUMPTION: (
        "One row per product display name per local day: meterpoints with readings and their consumption.",
        [READINGS, AGREEMENT_DAYS.name],
        {
            "products_plus_unmatched_sum_to_day": (
                "Per local day: product totals plus unmatched_readings equal the half-hourly total."
            )
        },
    ),
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT: (
        "One row per half hour per product display name: meterpoints, total and average consumption.",
        [READINGS, AGREEMENT_DAYS.name],
        {
            "sums_to_product_daily": (
                "Per local day and product: the half-hourly product totals add up to the daily total."
            )
        },
    ),
    UNMATCHED_READINGS: (
        "One row per reading no agreement covers on its local day "
        "(reason no_agreement, unknown_product or product_without_name).",
        [READINGS, AGREEMENT_DAYS.name],
        {},
    ),
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            spec.name,
            description=text,
            deps=deps,
            group_name="gold",
            kinds={"spark", "delta"},
            automation_condition=READINGS_OR_THEIR_COVERAGE_CHANGED,
            metadata=table_metadata(spec),
        )
        for spec, (text, deps, _) in _READINGS_GOLD.items()
    ],
    partitions_def=local_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[check for spec, (*_, checks) in _READINGS_GOLD.items() for check in blocking_specs(spec.name, checks)],
    pool="consumption_gold",
    can_subset=False,
)
def consumption_gold(context: dg.AssetExecutionContext, spark: SparkResource, warehouse: WarehouseResource):
    """One Spark pass over the run's local days writes all readings-based gold tables."""
    yield from _consumption_gold(context, spark.spark_session, warehouse.get_warehouse())


def _consumption_gold(context: dg.AssetExecutionContext, session: SparkSession, warehouse: Warehouse):
    window = run_window(context.partition_time_window)
    report = build_consumption_gold(session, warehouse, window)
    version = report.readings_version
    checks: dict[TableSpec, dict[str, Callable[[], CheckOutcome]]] = {
        HALF_HOURLY_CONSUMPTION: {
            "half_hours_sum_to_hours": partial(gold_checks.half_hours_sum_to_hours, session, warehouse, window, version)
        },
        PRODUCT_DAILY_CONSUMPTION: {
            "products_plus_unmatched_sum_to_day": partial(
                gold_checks.products_plus_unmatched_sum_to_day, session, warehouse, window
            )
        },
        AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT: {
            "sums_to_product_daily": partial(gold_checks.product_half_hours_sum_to_days, session, warehouse, window)
        },
    }
    if not report.days_with_data:
        # No readings and no gold rows in the run's days: nothing was computed, so nothing to check.
        nothing = CheckOutcome(True, {"days_with_data": 0})
        checks = {spec: dict.fromkeys(by_name, lambda: nothing) for spec, by_name in checks.items()}
    for spec in _READINGS_GOLD:
        yield materialized(
            warehouse,
            spec,
            report.rows[spec.name],
            len(context.partition_keys),
            window.days,
            details={
                "days": f"{window.days.first} .. {window.days.last}",
                "readings": report.readings,
                "readings_matched": report.matched,
                "readings_unmatched": report.unmatched,
                "days_with_data": report.days_with_data,
            },
            checks=check_results(context, spec.name, checks.get(spec, {})),
            asset_key=spec.name,
        )


active_agreements = window_asset(
    ACTIVE_AGREEMENTS,
    build_active_agreements,
    partitions_def=local_days,
    deps=[AGREEMENT_DAYS.name],
    automation_condition=COVERAGE_CHANGED,
    group_name="gold",
    description="One row per agreement active on a day (valid_from < day < valid_to), with its product.",
)
