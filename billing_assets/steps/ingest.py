"""The ingestion step behind ``raw_readings``: landing files to raw, quarantine and deduplicated tables.

Free of Dagster (it takes plain table handles and landing files), so it runs on its own, as
the concurrency test's workers run it; the asset adds partitions, metadata and events around it.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from billing_assets.domain.keys import hour_key, parse_recording_hour_key, shift_recording_hour
from billing_assets.domain.limits import DEFAULT_MAX_READING_KWH, DEFAULT_PIECE_BYTES
from billing_assets.domain.watermark import CLOCK_DRIFT, HOUR, LATE_DATA_WINDOW, RESEND_REACH
from billing_assets.landing.files import LandingFile
from billing_assets.steps.recompute import StepResult, recompute, replace
from billing_assets.tables.delta_io import PinnedTable, read_table, replace_partitions, retry_on_conflict
from billing_assets.tables.schemas import DEDUPLICATED_RAW, QUARANTINED_READINGS, RAW_READINGS
from billing_assets.tables.selection import RunWindow, partition_range, partitions
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.dedup import first_arrivals, plan_dedup, resent_elsewhere
from billing_assets.transforms.ingest import parse_landing_files

OUTCOMES = ("inserted", "duplicates", "conflicts", "quarantined")


@dataclass
class HourCounts:
    """Conservation figures of one ingestion hour."""

    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0

    @property
    def balanced(self) -> bool:
        """Records read = inserted + duplicates + conflicts + quarantined."""
        return self.read == sum(getattr(self, name) for name in OUTCOMES)


@dataclass
class IngestReport:
    """What one ingestion run did."""

    counts: dict[str, HourCounts]
    #: Recording hours (UTC keys) holding a record accepted from these hours, or that lost one.
    touched_hours: list[str]
    #: Recording hours whose partition was rewritten by this run.
    changed_hours: list[str]
    files: int
    versions: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


def _conflict_rows(classified: DataFrame) -> DataFrame:
    return classified.filter("status = 'conflict'").select(
        "source_file",
        "line_number",
        "record_id",
        F.lit("conflict").alias("reason"),
        F.format_string(
            "payload differs from the copy first seen in %s line %d (meterpoint %s, interval_start %s, consumption %s)",
            "winner.source_file",
            "winner.line_number",
            "winner.meterpoint_id",
            F.date_format("winner.interval_start", "yyyy-MM-dd'T'HH:mm:ssXXX"),
            F.col("winner.consumption").cast("string"),
        ).alias("detail"),
        F.to_json(F.struct("record_id", "meterpoint_id", "interval_start", "consumption")).alias("raw"),
        "ingestion_hour",
    )


def _hours_to_rank_against(
    spark: SparkSession, table: PinnedTable, readings: DataFrame, reading_hours: list[str]
) -> list[str]:
    """The batch's recording hours plus those within reach that hold another copy of one of its records."""
    if not reading_hours:
        return []
    first = shift_recording_hour(reading_hours[0], -RESEND_REACH)
    last = shift_recording_hour(reading_hours[-1], RESEND_REACH)
    nearby = read_table(spark, table, partition_range(first, last).filters("recording_hour"))
    elsewhere = {r[0] for r in resent_elsewhere(readings, nearby).distinct().collect()}
    return sorted(elsewhere.union(reading_hours))


def quiet_hours_report(
    warehouse: Warehouse, hour_keys: Sequence[str], files: Sequence[LandingFile]
) -> IngestReport | None:
    """The report of hours with no files and nothing from earlier runs to clear, else ``None`` (Spark is needed).

    A quiet hour is recorded from the Delta log alone, so a year of empty hours costs no Spark job.
    """
    if files:
        return None
    filters = [("ingestion_hour", "in", list(hour_keys))]
    for spec in (RAW_READINGS, QUARANTINED_READINGS):
        if warehouse.open(spec).delta.file_uris(partition_filters=filters):
            return None
    return IngestReport(counts={key: HourCounts() for key in hour_keys}, touched_hours=[], changed_hours=[], files=0)


def ingest(
    spark: SparkSession,
    warehouse: Warehouse,
    hour_keys: Sequence[str],
    files: Sequence[LandingFile],
    timezone: str,
    storage_options: dict,
    *,
    max_reading_kwh: float = DEFAULT_MAX_READING_KWH,
    piece_bytes: int = DEFAULT_PIECE_BYTES,
) -> IngestReport:
    """Parse, quarantine, deduplicate and commit the landing files of ``hour_keys``.

    ``max_reading_kwh`` and ``piece_bytes`` are the settings' (``LandingZone`` carries them).
    """
    parsed = parse_landing_files(
        spark, files, timezone, storage_options, max_reading_kwh=max_reading_kwh, piece_bytes=piece_bytes
    ).persist()
    try:
        readings = parsed.filter("reason IS NULL")
        rejected = parsed.filter("reason IS NOT NULL")
        # One job (it also fills the cache) gives the readings' recording hours, each hour's
        # records read and quarantined, and the quarantine reasons.
        counts, reasons = {key: HourCounts() for key in hour_keys}, Counter()
        reading_hours = set()
        for row in parsed.groupBy("ingestion_hour", "recording_hour", "reason").count().collect():
            hour, reason = counts[row["ingestion_hour"]], row["reason"]
            hour.read += row["count"]
            if reason is None:
                reading_hours.add(row["recording_hour"])
            else:
                hour.quarantined += row["count"]
                reasons[reason] += row["count"]

        def deduplicate() -> tuple:
            # The write below is committed against this version: if another run changed the
            # same recording hours since, the commit fails and the whole plan is recomputed.
            table = warehouse.open(DEDUPLICATED_RAW)
            hours = _hours_to_rank_against(spark, table, readings, sorted(reading_hours))
            existing = read_table(spark, table, [("recording_hour", "in", hours)] if hours else None)
            if not hours:
                existing = existing.limit(0)
            plan = plan_dedup(readings, existing)
            # Cached, and filled by the status tally, so the conflict rows outlive the working set.
            classified = plan.classified.persist()
            try:
                status_counts = classified.groupBy("ingestion_hour", "status").count().collect()
                version = None
                if plan.changed_hours:
                    version = replace_partitions(plan.rewrite, table, partitions(plan.changed_hours))
            except BaseException:
                classified.unpersist()
                raise
            finally:
                plan.release()
            return plan, status_counts, classified, version

        plan, status_counts, classified, dedup_version = retry_on_conflict(deduplicate)
        try:
            for row in status_counts:
                name = {"inserted": "inserted", "duplicate": "duplicates", "conflict": "conflicts"}[row["status"]]
                setattr(counts[row["ingestion_hour"]], name, row["count"])
                if row["status"] == "conflict":
                    reasons["conflict"] += row["count"]
            conflicts = _conflict_rows(classified)
            quarantine = rejected.select(*QUARANTINED_READINGS.schema.names).unionByName(conflicts)
            # Only this run writes these ingestion hours, but a commit can still lose to a concurrent
            # one elsewhere in the table (delta-rs treats an overwrite as having read every file).
            hours = partitions(hour_keys)
            versions = {
                spec.name: replace(warehouse, spec, frame, hours).version
                for spec, frame in ((QUARANTINED_READINGS, quarantine), (RAW_READINGS, readings))
            }
        finally:
            classified.unpersist()
        if dedup_version is not None:
            versions[DEDUPLICATED_RAW.name] = dedup_version
    finally:
        parsed.unpersist()

    # An imbalance is reported by raw_readings' blocking ``records_conserved`` check, after the
    # commit: the run fails with the figures in the UI, and the recording hours written are still recorded.
    return IngestReport(
        counts=counts,
        touched_hours=plan.touched_hours,
        changed_hours=plan.changed_hours,
        files=len(files),
        versions=versions,
        quarantine_reasons=dict(sorted(reasons.items())),
    )


def rebuild_deduplicated(spark: SparkSession, warehouse: Warehouse, window: RunWindow) -> StepResult:
    """Recompute the window's recording hours of deduplicated_raw from raw_readings.

    The raw table keeps every accepted reading with its arrival, so first-arrival-wins can be
    replayed from it: a repair path that yields exactly what incremental ingestion built.
    Only ingestion hours inside the watermark of those recording hours can hold their readings.
    """
    first_hour, last_hour = window.hours.first, window.hours.last
    # Copies of a record within reach of these hours compete with theirs (a moved re-send).
    reach_first = shift_recording_hour(first_hour, -RESEND_REACH)
    reach_last = shift_recording_hour(last_hour, RESEND_REACH)
    earliest = parse_recording_hour_key(reach_first) - HOUR - CLOCK_DRIFT
    latest = parse_recording_hour_key(reach_last) + HOUR + LATE_DATA_WINDOW

    def winners(raw: DataFrame) -> DataFrame:
        nearby = raw.filter(F.col("recording_hour").between(reach_first, reach_last))
        ids = nearby.filter(F.col("recording_hour").between(first_hour, last_hour)).select("record_id").distinct()
        contenders = nearby.join(ids, "record_id", "left_semi")
        return first_arrivals(contenders).filter(F.col("recording_hour").between(first_hour, last_hour))

    arrivals = partition_range(hour_key(earliest), hour_key(latest))
    return recompute(spark, warehouse, RAW_READINGS, arrivals, winners, DEDUPLICATED_RAW, window.hours)
