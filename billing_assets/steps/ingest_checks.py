"""The ingestion invariants: every record accounted for, and deduplicated_raw unique and in the right hour."""

from collections.abc import Mapping, Sequence
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from billing_assets.domain.keys import shift_recording_hour
from billing_assets.domain.watermark import RESEND_REACH
from billing_assets.steps.ingest import OUTCOMES, HourCounts
from billing_assets.steps.invariants import EXAMPLES, CheckOutcome, examples, read_at
from billing_assets.tables.delta_io import read_table
from billing_assets.tables.schemas import DEDUPLICATED_RAW, QUARANTINED_READINGS, RAW_READINGS
from billing_assets.tables.selection import partition_range
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.clock import recording_hour_key

#: Deduplication matches copies this far apart, so the uniqueness check looks as far either
#: side of the recording hours written.
UNIQUENESS_REACH = RESEND_REACH


#: The deduplicated_raw invariants ``deduplicated_invariants`` settles together, by check name.
UNIQUE_RECORD_ID, RECORDING_HOUR = "unique_record_id", "recording_hour"


def deduplicated_invariants(
    spark: SparkSession, warehouse: Warehouse, hours: Sequence[str], timezone: str = "UTC"
) -> dict[str, CheckOutcome]:
    """Both invariants of the ``deduplicated_raw`` hours written, from one Spark job over their reach.

    ``unique_record_id``: no ``record_id`` of the hours written appears twice in them or within
    reach of them. ``recording_hour``: every row of the hours written has ``recording_hour`` =
    the start of the local hour (in ``timezone``) of its ``interval_start``. The hours written
    lie inside the reach, so one read of it settles both.
    """
    if not hours:
        return {
            UNIQUE_RECORD_ID: CheckOutcome(
                True, {"recording_hours_written": 0, "rows_checked": 0, "duplicated_record_ids": 0}
            ),
            RECORDING_HOUR: CheckOutcome(
                True, {"recording_hours_written": 0, "rows_checked": 0, "rows_in_wrong_hour": 0, "wrong_rows": []}
            ),
        }
    first = shift_recording_hour(min(hours), -UNIQUENESS_REACH)
    last = shift_recording_hour(max(hours), UNIQUENESS_REACH)
    written = F.col("recording_hour").isin(list(hours))
    in_wrong_hour = ~F.col("recording_hour").eqNullSafe(recording_hour_key(F.col("interval_start"), timezone))
    scope = read_at(spark, warehouse, DEDUPLICATED_RAW, partition_range(first, last)).select(
        "record_id",
        "recording_hour",
        "interval_start",
        written.alias("written"),
        (written & in_wrong_hour).alias("wrong"),
    )
    ids = scope.groupBy("record_id").agg(
        F.count(F.lit(1)).alias("copies"),
        F.max("written").alias("written"),
        F.count(F.when(F.col("written"), True)).alias("written_rows"),
        F.count(F.when(F.col("wrong"), True)).alias("wrong_rows"),
    )
    duplicate = (F.col("copies") > 1) & F.col("written")
    # One pass over the reach: the rows in scope are the sum of the copies of every id.
    row = ids.agg(
        F.sum("copies").alias("rows"),
        F.count(F.when(duplicate, True)).alias("duplicated"),
        F.sum("written_rows").alias("written_rows"),
        F.sum("wrong_rows").alias("wrong_rows"),
    ).first()
    failures, wrong_rows = row["duplicated"], row["wrong_rows"] or 0
    listed = []
    if failures:
        duplicated = (
            scope.groupBy("record_id")
            .agg(F.count(F.lit(1)).alias("copies"), F.array_sort(F.collect_list("recording_hour")).alias("hours"))
            .join(ids.filter(duplicate).select("record_id"), "record_id")
        )
        listed = [
            {"record_id": r["record_id"], "copies": r["copies"], "recording_hours": r["hours"]}
            for r in duplicated.orderBy("record_id").limit(EXAMPLES).collect()
        ]
    wrong = scope.filter("wrong").select("record_id", "interval_start", "recording_hour")
    return {
        UNIQUE_RECORD_ID: CheckOutcome(
            failures == 0,
            {
                "recording_hours_written": len(hours),
                "scope": f"recording_hour {first} .. {last}",
                "rows_checked": row["rows"] or 0,
                "duplicated_record_ids": failures,
                "duplicates": listed,
            },
        ),
        RECORDING_HOUR: CheckOutcome(
            wrong_rows == 0,
            {
                "recording_hours_written": len(hours),
                "rows_checked": row["written_rows"] or 0,
                "rows_in_wrong_hour": wrong_rows,
                "wrong_rows": examples(wrong, "record_id", wrong_rows),
            },
        ),
    }


def records_conserved(
    spark: SparkSession, warehouse: Warehouse, counts: Mapping[str, HourCounts], versions: Mapping[str, int]
) -> CheckOutcome:
    """Per ingestion hour: read = inserted + duplicates + conflicts + quarantined, and the tables agree.

    The committed ``raw_readings`` hold every parsed reading (inserted, duplicate or conflict)
    and ``quarantined_readings`` every rejected record plus one row per conflict.
    """
    hours = list(counts)
    filters = [("ingestion_hour", "in", hours)]
    raw_table = warehouse.open(RAW_READINGS, versions.get(RAW_READINGS.name))
    quarantine_table = warehouse.open(QUARANTINED_READINGS, versions.get(QUARANTINED_READINGS.name))
    # Hours without files (the common case of a quiet hour) are settled by the Delta log alone;
    # the figures of both tables come from one job.
    figures_of = []
    if raw_table.delta.file_uris(partition_filters=filters):
        figures_of.append(
            read_table(spark, raw_table, filters).select("ingestion_hour", F.lit("raw_rows").alias("figure"))
        )
    if quarantine_table.delta.file_uris(partition_filters=filters):
        reason = F.col("reason")
        figure = F.when(reason == "conflict", "conflict_rows").when(reason != "conflict", "quarantine_rows")
        figures_of.append(read_table(spark, quarantine_table, filters).select("ingestion_hour", figure.alias("figure")))
    found = {}
    if figures_of:
        rows = reduce(DataFrame.unionByName, figures_of).groupBy("ingestion_hour", "figure").count().collect()
        found = {(r["ingestion_hour"], r["figure"]): r["count"] for r in rows}
    per_hour, unbalanced = {}, []
    for hour, c in sorted(counts.items()):
        figures = {
            "read": c.read,
            **{name: getattr(c, name) for name in OUTCOMES},
            **{name: found.get((hour, name), 0) for name in ("raw_rows", "quarantine_rows", "conflict_rows")},
        }
        balanced = (
            c.balanced
            and figures["raw_rows"] == c.inserted + c.duplicates + c.conflicts
            and figures["quarantine_rows"] == c.quarantined
            and figures["conflict_rows"] == c.conflicts
        )
        per_hour[hour] = figures
        if not balanced:
            unbalanced.append(hour)
    totals = {name: sum(f[name] for f in per_hour.values()) for name in ("read", *OUTCOMES)}
    return CheckOutcome(
        not unbalanced,
        {
            **{f"records_{name}": value for name, value in totals.items()},
            "unbalanced_hours": unbalanced,
            "per_ingestion_hour": per_hour,
        },
    )
