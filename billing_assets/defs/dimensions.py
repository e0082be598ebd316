"""Dimension assets: the SQLite source loaded daily as type-2 history, and agreement coverage by day."""

import dagster as dg

from billing_assets.automation import DAILY_SOURCE_LOAD
from billing_assets.defs.announced import AGREEMENT_COVERAGE
from billing_assets.defs.metadata import materialized, table_metadata
from billing_assets.defs.window import window_asset
from billing_assets.partitions import all_days, local_days, run_window
from billing_assets.resources.source import SourceDatabase
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.steps.dimensions import load_dimensions, rebuild_agreement_days
from billing_assets.tables.delta_io import partition_digests
from billing_assets.tables.schemas import AGREEMENT, AGREEMENT_DAYS, METERPOINT, PRODUCT

AGREEMENT_DAYS_KEY = dg.AssetKey(AGREEMENT_DAYS.name)
SOURCE_CHECKS = {
    "overlapping_agreements": "Two agreements of one meterpoint overlap in time (the later-starting one is used).",
    "unknown_product": "Agreements whose product_id is not in the product table (their readings stay unmatched).",
    "product_without_name": "Agreements whose product has no display_name (their readings stay unmatched).",
    "unknown_meterpoint": "Agreements whose meterpoint_id is not in the meterpoint table.",
    "zero_length_agreements": "Agreements whose valid_to is not after valid_from (they cover nothing).",
}
_DIM_DESCRIPTIONS = {
    AGREEMENT: "One row per version of an agreement (account, meterpoint, product, validity); type-2 history.",
    PRODUCT: "One row per version of a product (product_id, display_name, is_variable); type-2 history.",
    METERPOINT: "One row per version of a meterpoint (meterpoint_id, region); type-2 history.",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dim.history.name,
            description=_DIM_DESCRIPTIONS[dim],
            group_name="dimensions",
            kinds={"sqlite", "spark", "delta"},
            metadata={**table_metadata(dim.history), "snapshots_table": dim.snapshots.name},
            automation_condition=DAILY_SOURCE_LOAD,
        )
        for dim in (AGREEMENT, PRODUCT, METERPOINT)
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset=AGREEMENT.history.name, description=text) for name, text in SOURCE_CHECKS.items()
    ],
    partitions_def=local_days,
    pool=AGREEMENT_DAYS.name,
    can_subset=False,
)
def source_dimensions(
    context: dg.AssetExecutionContext, spark: SparkResource, warehouse: WarehouseResource, source: SourceDatabase
):
    """Snapshot the source database for the load day and rebuild the dimension history from all snapshots."""
    load_day = run_window(context.partition_time_window).first_day
    first_day, last_day = all_days()
    report = load_dimensions(spark.spark_session, warehouse.get_warehouse(), source.path, load_day, first_day, last_day)
    # Only after the Delta commit: gold automation trusts these events.
    digests = partition_digests(warehouse.get_warehouse().open(AGREEMENT_DAYS), report.changed_days)
    for day in report.changed_days:
        context.log_event(
            dg.AssetMaterialization(
                AGREEMENT_DAYS_KEY, partition=day, metadata=AGREEMENT_COVERAGE.metadata(day, digests[day])
            )
        )
    for dim in (AGREEMENT, PRODUCT, METERPOINT):
        # The history is rebuilt whole from all snapshots on every load.
        yield materialized(
            warehouse.get_warehouse(),
            dim.history,
            report.rows[dim.history.name],
            1,
            None,
            details={"snapshot_taken": report.snapshot_taken, "coverage_days_changed": len(report.changed_days)},
            asset_key=dim.history.name,
        )
    for name, ids in report.problems.items():
        # Source problems are surfaced, not fatal: the pipeline has a defined rule for each.
        yield dg.AssetCheckResult(
            asset_key=AGREEMENT.history.name,
            check_name=name,
            passed=not ids,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"agreements": len(ids), "agreement_ids": dg.MetadataValue.json(ids[:50])},
        )


agreement_days = window_asset(
    AGREEMENT_DAYS,
    rebuild_agreement_days,
    partitions_def=local_days,
    # Each day's coverage follows from the latest load of the dimensions.
    deps=[
        dg.AssetDep(AGREEMENT.history.name, partition_mapping=dg.LastPartitionMapping()),
        dg.AssetDep(PRODUCT.history.name, partition_mapping=dg.LastPartitionMapping()),
    ],
    group_name="dimensions",
    description=(
        "One row per agreement per local day it covers readings on or is active on, with its product. "
        "Dimension loads rewrite exactly the days whose coverage changed and record them; "
        "materialising it directly rebuilds days from the current dimensions."
    ),
)
