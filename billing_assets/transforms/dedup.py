"""Deduplication by ``record_id``: first arrival wins, across the batch and the table.

Arrival order is ``(ingestion_hour, source_file, line_number)``. The table's content is
therefore a function of the set of landing files, not of the order hours were processed
in: re-running an hour, or backfilling an early hour after a later one, converges to the
same rows. A later copy with the same payload is a duplicate; with a different payload it
is a conflict, kept out of the table and quarantined for review.
"""

from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from billing_assets.tables.schemas import DEDUPLICATED_RAW

PAYLOAD = ("meterpoint_id", "interval_start", "consumption")
ARRIVAL = ("ingestion_hour", "source_file", "line_number")


@dataclass(frozen=True)
class DedupPlan:
    """What one batch does to the deduplicated table."""

    #: Every batch reading with ``status`` (inserted, duplicate, conflict) and the ``winner`` struct.
    classified: DataFrame
    #: Recording hours whose rows differ from the table's and must be rewritten.
    changed_hours: list[str]
    #: New content of exactly those recording hours.
    rewrite: DataFrame
    #: Recording hours holding a record accepted from this batch, or that lost one to it.
    touched_hours: list[str]
    #: The cached working set; ``release()`` frees it once the plan is written.
    ranked: DataFrame

    def release(self) -> None:
        """Drop the cached working set from Spark's memory."""
        self.ranked.unpersist()


def first_arrivals(readings: DataFrame) -> DataFrame:
    """The earliest-arriving copy of each ``record_id`` (the deduplicated table's rows)."""
    by_arrival = Window.partitionBy("record_id").orderBy(*ARRIVAL)
    return (
        readings.withColumn("_rank", F.row_number().over(by_arrival))
        .filter("_rank = 1")
        .select(*DEDUPLICATED_RAW.schema.names)
    )


def resent_elsewhere(batch: DataFrame, nearby: DataFrame) -> DataFrame:
    """Distinct recording hours of ``nearby`` table rows that share a ``record_id`` with ``batch``.

    A re-send whose ``interval_start`` moved to another hour is still the same record: those
    hours must be read in whole too, so the copy there is ranked against the batch's.
    """
    ids = batch.select("record_id").distinct()
    return nearby.select("record_id", "recording_hour").join(ids, "record_id", "left_semi").select("recording_hour")


def plan_dedup(batch: DataFrame, existing: DataFrame) -> DedupPlan:
    """Classify accepted batch readings against each other and the existing table rows.

    ``existing`` must hold every row of the recording hours the batch reads into, and of every
    hour that holds another copy of one of its records (``resent_elsewhere``).
    """
    columns = DEDUPLICATED_RAW.schema.names
    candidates = batch.select(*columns, F.lit(0).alias("_from_table")).unionByName(
        existing.select(*columns, F.lit(1).alias("_from_table"))
    )
    # On an exact arrival tie (a re-run of the same file) the fresh batch row ranks first.
    by_arrival = Window.partitionBy("record_id").orderBy(*ARRIVAL, "_from_table")
    per_record = Window.partitionBy("record_id")
    ranked = (
        candidates.withColumn("_rank", F.row_number().over(by_arrival))
        .withColumn("_fp", F.struct(*ARRIVAL, *PAYLOAD))
        .withColumn("winner", F.first("_fp").over(by_arrival))
        .withColumn("_is_winner_copy", F.col("_fp").eqNullSafe(F.col("winner")))
        # Does the table already hold the winning row verbatim? Then nothing changes for it.
        .withColumn(
            "_table_has_winner",
            F.max((F.col("_from_table") == 1) & F.col("_is_winner_copy")).over(per_record),
        )
        .persist()
    )
    same_payload = F.expr(" AND ".join(f"({c} <=> winner.{c})" for c in PAYLOAD))
    classified = (
        ranked.filter("_from_table = 0")
        .withColumn(
            "status",
            F.when(F.col("_rank") == 1, "inserted").when(same_payload, "duplicate").otherwise("conflict"),
        )
        .select(*columns, "status", "winner")
    )
    inserted = (F.col("_from_table") == 0) & (F.col("_rank") == 1)
    stale = (F.col("_from_table") == 1) & ~F.col("_is_winner_copy")
    # Both hour lists in one job: a changed hour gains a new winner or loses a stored one; a
    # touched hour holds a record this batch inserted, or lost one.
    hours = (
        ranked.groupBy("recording_hour")
        .agg(
            F.max((inserted & ~F.col("_table_has_winner")) | stale).alias("changed"),
            F.max(inserted | stale).alias("touched"),
        )
        .filter("changed OR touched")
        .collect()
    )
    changed_hours = sorted(r["recording_hour"] for r in hours if r["changed"])
    rewrite = ranked.filter(F.col("_rank") == 1).filter(F.col("recording_hour").isin(changed_hours))
    return DedupPlan(
        classified=classified,
        changed_hours=changed_hours,
        rewrite=rewrite.select(*columns),
        touched_hours=sorted(r["recording_hour"] for r in hours if r["touched"]),
        ranked=ranked,
    )
