"""The billing invariants, each a Spark query over exactly the partitions a run wrote.

Every function reads the tables back through the Delta log after the commit and returns
``(passed, metadata)``; the assets turn that into blocking asset check results. Where a
check compares a table with its input, it reads the input at the version the run read
(``*_version``): a concurrent run changing the input in between must not look like a bug.

Totals are compared as ``decimal(38, 9)`` sums (as the tables compute them), within
``TOLERANCE`` kWh: each stored double is one rounding away from its exact sum.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from billing_assets.domain.timestamps import hour_key, parse_hour_key
from billing_assets.domain.watermark import HOUR, RESEND_REACH, is_complete
from billing_assets.resources.warehouse import Warehouse
from billing_assets.settings import CLOCK_DRIFT
from billing_assets.steps.ingest import OUTCOMES, HourCounts
from billing_assets.steps.recompute import between
from billing_assets.tables.delta_io import read_table
from billing_assets.tables.schemas import (
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    CUMULATIVE_USAGE,
    DEDUPLICATED_RAW,
    HALF_HOURLY_CONSUMPTION,
    HOURLY_USAGE,
    PRODUCT_DAILY_CONSUMPTION,
    QUARANTINED_READINGS,
    RAW_READINGS,
    UNMATCHED_READINGS,
    TableSpec,
)
from billing_assets.transforms.usage import EXACT, billing_month

#: Largest difference (kWh) tolerated between two totals of the same readings.
TOLERANCE = 1e-6
#: Failing rows or keys listed in the metadata (the counts are always complete).
EXAMPLES = 20
#: Deduplication matches copies this far apart, so the uniqueness check looks as far either
#: side of the recording hours written.
UNIQUENESS_REACH = RESEND_REACH


class CheckOutcome(NamedTuple):
    """Whether an invariant held, and the figures that show it."""

    passed: bool
    metadata: dict[str, Any]


def _read(
    spark: SparkSession,
    warehouse: Warehouse,
    spec: TableSpec,
    filters: list[tuple[str, str, object]],
    version: int | None = None,
) -> DataFrame:
    return read_table(spark, warehouse.open(spec, version), filters)


def _exact_sum(column: str, alias: str) -> Column:
    return F.sum(F.col(column).cast(EXACT)).alias(alias)


def _tally(df: DataFrame, **conditions: Column) -> tuple[int, dict[str, int]]:
    """Rows of ``df`` and how many satisfy each condition, in one Spark job.

    A ``count()`` per figure would run the whole plan (reads, joins, windows) once per figure.
    """
    figures = [F.count(F.when(condition, True)).alias(name) for name, condition in conditions.items()]
    row = df.agg(F.count(F.lit(1)).alias("_rows"), *figures).first()
    return row["_rows"], {name: row[name] for name in conditions}


def _examples(df: DataFrame, order: str, failures: int) -> list[dict[str, Any]]:
    """Up to ``EXAMPLES`` failing rows; no Spark job when nothing failed."""
    if not failures:
        return []
    return [
        {key: value if isinstance(value, int | float | str | None) else str(value) for key, value in row.items()}
        for row in (r.asDict() for r in df.orderBy(order).limit(EXAMPLES).collect())
    ]


def _differs(left: str, right: str) -> Column:
    return F.abs(F.coalesce(F.col(left), F.lit(0)) - F.coalesce(F.col(right), F.lit(0))) > TOLERANCE


def _compare_totals(left: DataFrame, right: DataFrame, keys: list[str], figures: list[str], label: str) -> CheckOutcome:
    """Full outer join on ``keys``; every ``figure`` must agree (``<figure>_<side>`` columns)."""
    joined = left.join(right, keys, "full_outer")
    bad = F.lit(False)
    for figure in figures:
        bad = bad | _differs(f"{figure}_expected", f"{figure}_actual")
    checked, figures_of = _tally(joined, mismatched=bad)
    failures = figures_of["mismatched"]
    return CheckOutcome(
        failures == 0,
        {
            f"{label}_checked": checked,
            f"{label}_mismatched": failures,
            "mismatches": _examples(joined.filter(bad), keys[0], failures),
            "tolerance_kwh": TOLERANCE,
        },
    )


def unique_record_ids(spark: SparkSession, warehouse: Warehouse, hours: Sequence[str]) -> CheckOutcome:
    """No ``record_id`` of the recording hours written appears twice in them or within reach of them."""
    if not hours:
        return CheckOutcome(True, {"recording_hours_written": 0, "rows_checked": 0, "duplicated_record_ids": 0})
    first = hour_key(parse_hour_key(min(hours)) - UNIQUENESS_REACH)
    last = hour_key(parse_hour_key(max(hours)) + UNIQUENESS_REACH)
    scope = _read(spark, warehouse, DEDUPLICATED_RAW, between("recording_hour", first, last)).select(
        "record_id", "recording_hour", F.col("recording_hour").isin(list(hours)).alias("written")
    )
    ids = scope.groupBy("record_id").agg(F.count(F.lit(1)).alias("copies"), F.max("written").alias("written"))
    duplicate = (F.col("copies") > 1) & F.col("written")
    # One pass over the week: the rows in scope are the sum of the copies of every id.
    row = ids.agg(F.sum("copies").alias("rows"), F.count(F.when(duplicate, True)).alias("duplicated")).first()
    failures = row["duplicated"]
    examples = []
    if failures:
        duplicated = (
            scope.groupBy("record_id")
            .agg(F.count(F.lit(1)).alias("copies"), F.array_sort(F.collect_list("recording_hour")).alias("hours"))
            .join(ids.filter(duplicate).select("record_id"), "record_id")
        )
        examples = [
            {"record_id": r["record_id"], "copies": r["copies"], "recording_hours": r["hours"]}
            for r in duplicated.orderBy("record_id").limit(EXAMPLES).collect()
        ]
    return CheckOutcome(
        failures == 0,
        {
            "recording_hours_written": len(hours),
            "scope": f"recording_hour {first} .. {last}",
            "rows_checked": row["rows"] or 0,
            "duplicated_record_ids": failures,
            "duplicates": examples,
        },
    )


def recording_hours_match(spark: SparkSession, warehouse: Warehouse, hours: Sequence[str]) -> CheckOutcome:
    """Every row's ``recording_hour`` is the UTC hour of its ``interval_start`` (the session zone is UTC)."""
    rows = _read(spark, warehouse, DEDUPLICATED_RAW, [("recording_hour", "in", list(hours))] if hours else None)
    if not hours:
        rows = rows.limit(0)
    in_wrong_hour = ~F.col("recording_hour").eqNullSafe(F.date_format("interval_start", "yyyy-MM-dd-HH"))
    checked, figures = _tally(rows, wrong=in_wrong_hour)
    failures = figures["wrong"]
    wrong = rows.filter(in_wrong_hour).select("record_id", "interval_start", "recording_hour")
    return CheckOutcome(
        failures == 0,
        {
            "recording_hours_written": len(hours),
            "rows_checked": checked,
            "rows_in_wrong_hour": failures,
            "wrong_rows": _examples(wrong, "record_id", failures),
        },
    )


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
    raw, quarantine = {}, {}
    # Hours without files (the common case of a quiet hour) are settled by the Delta log alone.
    if raw_table.delta.file_uris(partition_filters=filters):
        raw = dict(read_table(spark, raw_table, filters).groupBy("ingestion_hour").count().collect())
    if quarantine_table.delta.file_uris(partition_filters=filters):
        quarantine = {
            (r["ingestion_hour"], r["conflict"]): r["count"]
            for r in read_table(spark, quarantine_table, filters)
            .groupBy("ingestion_hour", (F.col("reason") == "conflict").alias("conflict"))
            .count()
            .collect()
        }
    per_hour, unbalanced = {}, []
    for hour, c in sorted(counts.items()):
        figures = {
            "read": c.read,
            **{name: getattr(c, name) for name in OUTCOMES},
            "raw_rows": raw.get(hour, 0),
            "quarantine_rows": quarantine.get((hour, False), 0),
            "conflict_rows": quarantine.get((hour, True), 0),
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


def hourly_matches_readings(
    spark: SparkSession, warehouse: Warehouse, first_hour: str, last_hour: str, readings_version: int | None = None
) -> CheckOutcome:
    """Per recording hour, ``hourly_usage`` holds the sum and count of the deduplicated readings."""
    hours = between("recording_hour", first_hour, last_hour)
    expected = (
        _read(spark, warehouse, DEDUPLICATED_RAW, hours, readings_version)
        .groupBy("recording_hour")
        .agg(_exact_sum("consumption", "consumption_expected"), F.count(F.lit(1)).alias("readings_expected"))
    )
    actual = (
        _read(spark, warehouse, HOURLY_USAGE, hours)
        .groupBy("recording_hour")
        .agg(_exact_sum("consumption", "consumption_actual"), F.sum("reading_count").alias("readings_actual"))
    )
    return _compare_totals(expected, actual, ["recording_hour"], ["consumption", "readings"], "hours")


def _cumulative(spark: SparkSession, warehouse: Warehouse, first_month: str, last_month: str) -> DataFrame:
    return _read(spark, warehouse, CUMULATIVE_USAGE, between("billing_month", first_month, last_month))


def cumulative_never_decreases(
    spark: SparkSession, warehouse: Warehouse, first_month: str, last_month: str
) -> CheckOutcome:
    """Within a billing month, a meterpoint's running total never goes down from one hour to the next."""
    rows = _cumulative(spark, warehouse, first_month, last_month)
    order = Window.partitionBy("meterpoint_id", "billing_month").orderBy("usage_hour")
    with_previous = rows.withColumn("previous", F.lag("cumulative_consumption").over(order))
    drop = F.col("cumulative_consumption") < F.col("previous")
    checked, figures = _tally(with_previous, decreasing=drop)
    failures = figures["decreasing"]
    drops = with_previous.filter(drop).select(
        "meterpoint_id", "billing_month", "usage_hour", "previous", "cumulative_consumption"
    )
    return CheckOutcome(
        failures == 0,
        {
            "rows_checked": checked,
            "decreasing_rows": failures,
            "decreases": _examples(drops, "meterpoint_id", failures),
        },
    )


def cumulative_matches_hourly(
    spark: SparkSession,
    warehouse: Warehouse,
    first_hour: str,
    last_hour: str,
    first_month: str,
    last_month: str,
    timezone: str,
    hourly_version: int | None = None,
) -> CheckOutcome:
    """Each running total equals the month-to-date sum of ``hourly_usage``, and no hourly row is left out."""
    hourly = (
        _read(spark, warehouse, HOURLY_USAGE, between("recording_hour", first_hour, last_hour), hourly_version)
        .withColumn("billing_month", billing_month("usage_hour", timezone))
        .select("meterpoint_id", "billing_month", "usage_hour", F.col("consumption").cast(EXACT).alias("hourly"))
    )
    keys = ["meterpoint_id", "billing_month", "usage_hour"]
    rows = _cumulative(spark, warehouse, first_month, last_month)
    order = (
        Window.partitionBy("meterpoint_id", "billing_month")
        .orderBy("usage_hour")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    # hourly_usage has one row per (meterpoint, hour), so the left join keeps one row per total.
    with_expected = rows.join(hourly, keys, "left").withColumn(
        "expected", F.sum(F.coalesce("hourly", F.lit(0).cast(EXACT))).over(order)
    )
    differs = _differs("expected", "cumulative_consumption")
    checked, figures = _tally(with_expected, wrong=differs)
    compared = with_expected.filter(differs).select(
        *keys, F.col("expected").cast("double").alias("expected"), "cumulative_consumption"
    )
    missing = hourly.join(rows.select(*keys), keys, "left_anti")
    wrong, left_out = figures["wrong"], missing.count()
    return CheckOutcome(
        wrong == 0 and left_out == 0,
        {
            "rows_checked": checked,
            "rows_not_month_to_date_sum": wrong,
            "hourly_rows_missing": left_out,
            "mismatches": _examples(compared, "meterpoint_id", wrong),
            "missing": _examples(missing, "meterpoint_id", left_out),
            "tolerance_kwh": TOLERANCE,
        },
    )


def _days(column: str, first_day: date, last_day: date) -> list[tuple[str, str, object]]:
    return between(column, first_day.isoformat(), last_day.isoformat())


def half_hours_sum_to_hours(
    spark: SparkSession,
    warehouse: Warehouse,
    first_day: date,
    last_day: date,
    first_hour: str,
    last_hour: str,
    readings_version: int | None = None,
) -> CheckOutcome:
    """The half-hourly totals of each UTC hour add up to that hour's total of the deduplicated readings.

    ``hourly_usage`` is checked against the same readings, so this ties the gold table to it
    without depending on whether ``hourly_usage`` has caught up yet.
    """
    expected = (
        _read(spark, warehouse, DEDUPLICATED_RAW, between("recording_hour", first_hour, last_hour), readings_version)
        .groupBy("recording_hour")
        .agg(_exact_sum("consumption", "consumption_expected"))
    )
    actual = (
        _read(spark, warehouse, HALF_HOURLY_CONSUMPTION, _days("settlement_date", first_day, last_day))
        .groupBy(F.date_format("interval_start", "yyyy-MM-dd-HH").alias("recording_hour"))
        .agg(_exact_sum("consumption", "consumption_actual"))
    )
    return _compare_totals(expected, actual, ["recording_hour"], ["consumption"], "hours")


def products_plus_unmatched_sum_to_day(
    spark: SparkSession, warehouse: Warehouse, first_day: date, last_day: date
) -> CheckOutcome:
    """Per local day, the product totals plus the unmatched readings equal the half-hourly total."""
    expected = (
        _read(spark, warehouse, HALF_HOURLY_CONSUMPTION, _days("settlement_date", first_day, last_day))
        .groupBy(F.col("settlement_date").alias("day"))
        .agg(_exact_sum("consumption", "consumption_expected"))
    )
    products = (
        _read(spark, warehouse, PRODUCT_DAILY_CONSUMPTION, _days("date", first_day, last_day))
        .groupBy(F.col("date").alias("day"))
        .agg(_exact_sum("consumption", "products"))
    )
    unmatched = (
        _read(spark, warehouse, UNMATCHED_READINGS, _days("settlement_date", first_day, last_day))
        .groupBy(F.col("settlement_date").alias("day"))
        .agg(_exact_sum("consumption", "unmatched"))
    )
    actual = products.join(unmatched, "day", "full_outer").select(
        "day",
        "products",
        "unmatched",
        (F.coalesce("products", F.lit(0)) + F.coalesce("unmatched", F.lit(0))).alias("consumption_actual"),
    )
    return _compare_totals(expected, actual, ["day"], ["consumption"], "days")


def product_half_hours_sum_to_days(
    spark: SparkSession, warehouse: Warehouse, first_day: date, last_day: date
) -> CheckOutcome:
    """Per local day and product, the half-hourly product totals add up to the daily product total."""
    expected = (
        _read(spark, warehouse, PRODUCT_DAILY_CONSUMPTION, _days("date", first_day, last_day))
        .groupBy(F.col("date").alias("day"), "product_display_name")
        .agg(_exact_sum("consumption", "consumption_expected"))
    )
    actual = (
        _read(spark, warehouse, AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT, _days("settlement_date", first_day, last_day))
        .groupBy(F.col("settlement_date").alias("day"), "product_display_name")
        .agg(_exact_sum("consumption", "consumption_actual"))
    )
    return _compare_totals(expected, actual, ["day", "product_display_name"], ["consumption"], "product_days")


def newest_complete_hour(landed_hours: Iterable[str], now: datetime) -> str | None:
    """The newest landed ingestion hour that is complete (wall clock past H + 1 h + 5 min)."""
    return max((h for h in landed_hours if is_complete(parse_hour_key(h), now)), default=None)


def landing_freshness(newest: str | None, ingested: bool, now: datetime) -> CheckOutcome:
    """Passes when there is no complete hour yet, or the newest one has been ingested (no Spark)."""
    if newest is None:
        return CheckOutcome(True, {"newest_complete_hour": None})
    complete_since = parse_hour_key(newest) + HOUR + CLOCK_DRIFT
    return CheckOutcome(
        ingested,
        {
            "newest_complete_hour": newest,
            "complete_since": complete_since.isoformat(),
            "ingested": ingested,
            "minutes_overdue": 0 if ingested else int((now - complete_since) / timedelta(minutes=1)),
        },
    )
