"""Ingestion assets: ``raw_readings`` (per ingestion hour) and ``deduplicated_raw`` (per recording hour)."""

from dataclasses import asdict

import dagster as dg
from pyspark.sql import SparkSession

from billing_assets.defs.announced import DEDUPLICATED, recorded_digests
from billing_assets.defs.checks import blocking_specs, check_results
from billing_assets.defs.metadata import landing_kinds, materialized, table_metadata
from billing_assets.defs.window import OneOf, window_asset
from billing_assets.domain.keys import recording_hour_keys
from billing_assets.partitions import BILLING_TZ, ingestion_hours, recording_hours, recording_partition_key
from billing_assets.resources.landing import LandingZone
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.settings import load_settings
from billing_assets.steps import ingest_checks
from billing_assets.steps.ingest import OUTCOMES, IngestReport, ingest, quiet_hours_report, rebuild_deduplicated
from billing_assets.steps.invariants import CheckOutcome
from billing_assets.tables.delta_io import partition_digests
from billing_assets.tables.schemas import DEDUPLICATED_RAW, RAW_READINGS
from billing_assets.tables.selection import PartitionSelection, RunWindow, partitions
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.ingest import ParseOptions

DEDUPLICATED_KEY = DEDUPLICATED.asset_key
#: Check name -> description. Dagster takes check specs only for the assets an op outputs, so
#: the invariants of the deduplicated_raw rows a raw_readings run writes are raw_readings checks.
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
        "Every deduplicated_raw row this run touched has recording_hour = the start of the local hour "
        "of interval_start."
    ),
}


@dg.asset(
    partitions_def=ingestion_hours,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DEDUPLICATED_RAW.name,
    group_name="raw",
    # The landing zone the settings name when the code location loads.
    kinds={"spark", "delta", *landing_kinds(load_settings().landing_uri)},
    description=(
        "One row per parsed reading of an ingestion hour's landing files (duplicates included). "
        "Rejected records go to quarantined_readings; accepted ones are merged into deduplicated_raw."
    ),
    metadata=table_metadata(RAW_READINGS),
    check_specs=blocking_specs(RAW_READINGS.name, INGESTION),
)
def raw_readings(
    context: dg.AssetExecutionContext, spark: SparkResource, landing: LandingZone, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Parse, validate, watermark and deduplicate the landing files of the run's ingestion hours."""
    return _raw_readings(context, spark.spark_session, landing, warehouse.get_warehouse())


def _raw_readings(
    context: dg.AssetExecutionContext, session: SparkSession, landing: LandingZone, warehouse: Warehouse
) -> dg.MaterializeResult:
    hour_keys = context.partition_keys
    files = landing.files_of(hour_keys)
    context.log.info(f"{len(files)} landing files in {len(hour_keys)} ingestion hour(s)")
    report = quiet_hours_report(warehouse, hour_keys, files)
    if report is not None:
        return _quiet_result(context, report)
    options = ParseOptions(BILLING_TZ, landing.storage_options(), landing.max_reading_kwh, landing.piece_bytes)
    report = ingest(session, warehouse, hour_keys, files, options)

    # Only after the Delta commit: downstream automation trusts these events.
    announced = _hours_to_announce(context.instance, warehouse, report)
    for table_key, digest in announced.items():
        context.log_event(
            dg.AssetMaterialization(
                asset_key=DEDUPLICATED_KEY,
                partition=recording_partition_key(table_key),
                metadata={**DEDUPLICATED.metadata(table_key, digest), "source_ingestion_hours": ", ".join(hour_keys)},
            )
        )

    totals = {
        name: sum(getattr(c, name) for c in report.counts.values())
        for name in ("read", "inserted", "duplicates", "conflicts", "quarantined")
    }
    settled: dict[str, CheckOutcome] = {}

    def deduplicated(name: str) -> CheckOutcome:
        # Both deduplicated_raw invariants come from one read of the hours' reach.
        if not settled:
            settled.update(ingest_checks.deduplicated_invariants(session, warehouse, report.touched_hours, BILLING_TZ))
        return settled[name]

    checks = {
        "records_conserved": lambda: ingest_checks.records_conserved(
            session, warehouse, report.counts, report.versions
        ),
        "deduplicated_raw_unique_record_id": lambda: deduplicated(ingest_checks.UNIQUE_RECORD_ID),
        "deduplicated_raw_recording_hour": lambda: deduplicated(ingest_checks.RECORDING_HOUR),
    }
    return materialized(
        warehouse,
        RAW_READINGS,
        # The raw table keeps every reading that parsed, duplicates and conflicts included.
        totals["read"] - totals["quarantined"],
        len(hour_keys),
        partitions(hour_keys),
        report.versions[RAW_READINGS.name],
        details={
            # A range run reports the figures of the whole run on every hour it covers;
            # per_ingestion_hour splits them by hour.
            "ingestion_hours_in_run": f"{hour_keys[0]} .. {hour_keys[-1]} ({len(hour_keys)})",
            **{f"records_{name}": dg.MetadataValue.int(value) for name, value in totals.items()},
            "files": report.files,
            "recording_hours_touched": dg.MetadataValue.json(report.touched_hours),
            "recording_hours_rewritten": len(report.changed_hours),
            "recording_hours_announced": len(announced),
            "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons),
            "per_ingestion_hour": dg.MetadataValue.json(_per_hour(report)),
            "delta_versions": dg.MetadataValue.json(report.versions),
        },
        checks=check_results(context, RAW_READINGS.name, checks),
    )


def _hours_to_announce(instance: dg.DagsterInstance, warehouse: Warehouse, report: IngestReport) -> dict[str, str]:
    """The touched recording hours downstream has not yet been told of, with their files' digest.

    A rewritten hour is always announced. A touched hour this run left as it was is announced
    only when its files differ from those its last materialisation recorded: a run killed
    between its commit and its events left it unannounced, and this re-run repairs that. A
    re-run that changed nothing announces nothing, so it requests nothing downstream.
    """
    if not report.touched_hours:
        return {}
    digests = partition_digests(warehouse.open(DEDUPLICATED_RAW), report.touched_hours)
    changed = set(report.changed_hours)
    kept = {recording_partition_key(h): h for h in report.touched_hours if h not in changed}
    known = recorded_digests(instance, DEDUPLICATED_KEY, set(kept))
    stale = {h for key, h in kept.items() if known.get(key) != digests[h]}
    return {h: digest for h, digest in digests.items() if h in changed or h in stale}


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
            "recording_hours_announced": 0,
            "per_ingestion_hour": dg.MetadataValue.json({}),
        },
        check_results=check_results(
            context,
            RAW_READINGS.name,
            {name: (lambda: CheckOutcome(True, outcome)) for name in INGESTION},
        ),
    )


def _hours_of(hours: PartitionSelection) -> list[str]:
    """Every ``recording_hour`` key of a range of hours."""
    return recording_hour_keys(hours.first, hours.last)


def _rebuilt_invariants(
    spark: SparkSession, warehouse: Warehouse, window: RunWindow, _: int | None
) -> dict[str, CheckOutcome]:
    """The deduplicated_raw invariants of a repair run's rebuilt hours (one Spark job)."""
    return ingest_checks.deduplicated_invariants(spark, warehouse, _hours_of(window.hours), BILLING_TZ)


deduplicated_raw = window_asset(
    DEDUPLICATED_RAW,
    rebuild_deduplicated,
    partitions_def=recording_hours,
    # Any ingestion hour can carry readings for any recording hour of the previous 7 days.
    deps=[dg.AssetDep(raw_readings, partition_mapping=dg.AllPartitionMapping())],
    group_name="silver",
    description=(
        "One row per distinct reading (record_id); the first arrival wins. raw_readings runs "
        "write it incrementally and record exactly the recording hours they changed; "
        "materialising it directly rebuilds those hours from the raw table (a repair path)."
    ),
    checks={
        "unique_record_id": (
            "No record_id of the rebuilt hours appears twice, in those hours or within 7 days + 1 h 5 min of them.",
            OneOf(_rebuilt_invariants, ingest_checks.UNIQUE_RECORD_ID),
        ),
        "recording_hour_matches_interval_start": (
            "Every rebuilt row has recording_hour = the start of the local hour of interval_start.",
            OneOf(_rebuilt_invariants, ingest_checks.RECORDING_HOUR),
        ),
    },
)
