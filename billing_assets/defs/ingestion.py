"""Ingestion assets: ``raw_readings`` (per ingestion hour) and ``deduplicated_raw`` (per recording hour)."""

from dataclasses import asdict

import dagster as dg

from billing_assets.defs.checks import (
    DEDUPLICATED,
    INGESTION,
    blocking_specs,
    check_results,
    deduplicated_check_results,
    ingestion_check_results,
)
from billing_assets.defs.metadata import landing_kinds, table_metadata, written_metadata
from billing_assets.partitions import BILLING_TZ, hour_range, ingestion_hours, recording_hours, recording_partition_key
from billing_assets.resources.landing import LandingZone
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import Warehouse
from billing_assets.steps.checks import CheckOutcome
from billing_assets.steps.ingest import OUTCOMES, IngestReport, ingest, quiet_hours_report, rebuild_deduplicated
from billing_assets.steps.recompute import between
from billing_assets.tables.schemas import DEDUPLICATED_RAW, RAW_READINGS

DEDUPLICATED_KEY = dg.AssetKey("deduplicated_raw")


@dg.asset(
    partitions_def=ingestion_hours,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DEDUPLICATED_RAW.name,
    group_name="raw",
    kinds={"spark", "delta", *landing_kinds()},
    description=(
        "One row per parsed reading of an ingestion hour's landing files (duplicates included). "
        "Rejected records go to quarantined_readings; accepted ones are merged into deduplicated_raw."
    ),
    metadata=table_metadata(RAW_READINGS),
    check_specs=blocking_specs(RAW_READINGS.name, INGESTION),
)
def raw_readings(
    context: dg.AssetExecutionContext, spark: SparkResource, landing: LandingZone, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Parse, validate, watermark and deduplicate the landing files of the run's ingestion hours."""
    hour_keys = context.partition_keys
    files = landing.files_of(hour_keys)
    context.log.info(f"{len(files)} landing files in {len(hour_keys)} ingestion hour(s)")
    report = quiet_hours_report(warehouse, hour_keys, files)
    if report is not None:
        return _quiet_result(context, report)
    report = ingest(spark.spark_session, warehouse, hour_keys, files, BILLING_TZ, landing.storage_options())

    # Only after the Delta commit: downstream automation trusts these events.
    for table_key in report.touched_hours:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=DEDUPLICATED_KEY,
                partition=recording_partition_key(table_key),
                metadata={"recording_hour": table_key, "source_ingestion_hours": ", ".join(hour_keys)},
            )
        )

    totals = {
        name: sum(getattr(c, name) for c in report.counts.values())
        for name in ("read", "inserted", "duplicates", "conflicts", "quarantined")
    }
    return dg.MaterializeResult(
        metadata={
            # The raw table keeps every reading that parsed, duplicates and conflicts included.
            **written_metadata(
                spark.spark_session,
                warehouse,
                RAW_READINGS,
                totals["read"] - totals["quarantined"],
                len(hour_keys),
                [(RAW_READINGS.partition_by, "in", list(hour_keys))],
                report.versions[RAW_READINGS.name],
            ),
            # A range run reports the figures of the whole run on every hour it covers;
            # per_ingestion_hour splits them by hour.
            "ingestion_hours_in_run": f"{hour_keys[0]} .. {hour_keys[-1]} ({len(hour_keys)})",
            **{f"records_{name}": dg.MetadataValue.int(value) for name, value in totals.items()},
            "files": report.files,
            "recording_hours_touched": dg.MetadataValue.json(report.touched_hours),
            "recording_hours_rewritten": len(report.changed_hours),
            "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons),
            "per_ingestion_hour": dg.MetadataValue.json(_per_hour(report)),
            "delta_versions": dg.MetadataValue.json(report.versions),
        },
        check_results=ingestion_check_results(context, spark.spark_session, warehouse, report),
    )


def _per_hour(report: IngestReport) -> dict[str, dict]:
    """Figures per ingestion hour that had records; a long range of quiet hours would swamp the UI."""
    return {key: asdict(c) for key, c in report.counts.items() if c.read}


def _quiet_result(context: dg.AssetExecutionContext, report: IngestReport) -> dg.MaterializeResult:
    """The result of a run over hours without files: recorded, checked from the Delta log, no Spark."""
    hour_keys = list(report.counts)
    outcome = {"records_read": 0, "ingestion_hours_without_files": len(hour_keys)}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(0),
            "partitions_written": dg.MetadataValue.int(len(hour_keys)),
            "ingestion_hours_in_run": f"{hour_keys[0]} .. {hour_keys[-1]} ({len(hour_keys)})",
            **{f"records_{name}": dg.MetadataValue.int(0) for name in ("read", *OUTCOMES)},
            "files": 0,
            "recording_hours_touched": dg.MetadataValue.json([]),
            "recording_hours_rewritten": 0,
            "per_ingestion_hour": dg.MetadataValue.json({}),
        },
        check_results=check_results(
            context,
            RAW_READINGS.name,
            {name: (lambda: CheckOutcome(True, outcome)) for name in INGESTION},
        ),
    )


@dg.asset(
    partitions_def=recording_hours,
    pool=DEDUPLICATED_RAW.name,
    # Any ingestion hour can carry readings for any recording hour of the previous 7 days.
    deps=[dg.AssetDep(raw_readings, partition_mapping=dg.AllPartitionMapping())],
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="silver",
    kinds={"spark", "delta"},
    description=(
        "One row per distinct reading (record_id); the first arrival wins. raw_readings runs "
        "write it incrementally and record exactly the recording hours they changed; "
        "materialising it directly rebuilds those hours from the raw table (a repair path)."
    ),
    metadata=table_metadata(DEDUPLICATED_RAW),
    check_specs=blocking_specs(DEDUPLICATED_RAW.name, DEDUPLICATED),
)
def deduplicated_raw(
    context: dg.AssetExecutionContext, spark: SparkResource, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Rebuild the run's recording hours from raw_readings (same result as incremental ingestion)."""
    first, last = hour_range(context.partition_time_window)
    result = rebuild_deduplicated(spark.spark_session, warehouse, first, last)
    return dg.MaterializeResult(
        metadata={
            **written_metadata(
                spark.spark_session,
                warehouse,
                DEDUPLICATED_RAW,
                result.rows,
                len(context.partition_keys),
                between(DEDUPLICATED_RAW.partition_by, first, last),
                result.version,
            ),
            "recording_hours": f"{first} .. {last}",
        },
        check_results=deduplicated_check_results(context, spark.spark_session, warehouse, first, last),
    )
