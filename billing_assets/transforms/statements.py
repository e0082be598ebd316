"""Monthly statements and their adjustments, as pure polars logic (no Spark, no I/O).

A statement is small (a few lines per meterpoint and month), and so are its inputs once read
for one month, so it is computed in one process from tables read at pinned Delta versions
(docs/settlement.md says why that is enough, and where it stops being). Sums are exact, as in
``transforms/usage.py``: ``decimal(38, 9)``, stored as doubles converted once, so equal inputs
give bit-equal statements and "nothing changed" is an equality test.
"""

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from billing_assets.domain.settlement import FINAL, INITIAL, Lifecycle, month_bounds
from billing_assets.tables.schemas import STATEMENT_ADJUSTMENTS, STATEMENTS, TableSpec

EXACT = pl.Decimal(38, 9)
#: What a statement line is for: a meterpoint under one agreement and product, or under none.
LINE_KEY = ("meterpoint_id", "agreement_id", "account_id", "product_id", "product_display_name", "unmatched_reason")
#: What a line says; two runs whose lines agree on these bill the same.
LINE_VALUES = ("days", "reading_count", "too_late_count", "too_late_kwh", "corrected_count", "correction_kwh", "kwh")
#: The input tables a run reads, named as its ``<table>_version`` columns record them.
INPUT_TABLES = ("hourly_usage", "agreement_days", "quarantined_readings", "deduplicated_raw")
_LINE_SCHEMA = {
    **dict.fromkeys(LINE_KEY, pl.String),
    "days": pl.Int32,
    "reading_count": pl.Int64,
    "too_late_count": pl.Int64,
    "too_late_kwh": pl.Float64,
    "corrected_count": pl.Int64,
    "correction_kwh": pl.Float64,
    "kwh": pl.Float64,
}
#: A corrected re-send's effect on a month (``resent_corrections``): the first copy's kWh taken
#: off (``corrected_count`` 0) and the latest copy's added (``corrected_count`` 1).
CORRECTION_SCHEMA = {
    "meterpoint_id": pl.String,
    "instant": pl.Datetime("us", "UTC"),
    "kwh": pl.Float64,
    "corrected_count": pl.Int64,
}
_COVERAGE_COLUMNS = ("meterpoint_id", "date", *LINE_KEY[1:])


class NotConserved(ValueError):
    """A statement that would bill a reading twice or not at all; nothing was appended."""


@dataclass(frozen=True)
class MonthInputs:
    """One month's inputs, as read at the versions a run records.

    ``usage``: ``hourly_usage`` rows (``meterpoint_id``, ``usage_hour``, ``consumption``,
    ``reading_count``), or the same summed per local day with ``usage_hour`` the day's start
    (``steps/statements.daily_usage``: a day is all a statement needs). ``coverage``:
    ``agreement_days`` rows that cover readings (``date``, ``meterpoint_id``, ``agreement_id``,
    ``account_id``, ``product_id``, ``product_display_name``, ``unmatched_reason``).
    ``too_late``: billable ``too_late`` readings (``billable_too_late``).
    ``previous_coverage``: ``coverage`` at the versions the previous run read (None for a
    month's first run), to tell a moved day from new usage. ``corrections``: corrected
    re-sends (``resent_corrections``; None: none).
    """

    usage: pl.DataFrame
    coverage: pl.DataFrame
    too_late: pl.DataFrame
    previous_coverage: pl.DataFrame | None = None
    corrections: pl.DataFrame | None = None


@dataclass(frozen=True)
class PreviousRun:
    """The latest run of a month: its number, kind, the versions it read and its lines."""

    run: int
    kind: str
    versions: Mapping[str, int]
    lines: pl.DataFrame


@dataclass(frozen=True)
class RunPlan:
    """A run to append: its rows of ``statements`` and of ``statement_adjustments``."""

    run: int
    kind: str
    statements: pl.DataFrame
    adjustments: pl.DataFrame


def billable_too_late(too_late: pl.DataFrame, accepted_ids: Collection[str]) -> pl.DataFrame:
    """The ``too_late`` readings a reconciliation bills: one per record id, none the pipeline accepted.

    A record quarantined in several hours counts once, its first arrival (ingestion hour, file,
    line) winning as in deduplication; a record also in ``deduplicated_raw`` is a re-send of a
    billed reading, not new consumption.
    """
    ordered = too_late.sort("ingestion_hour", "source_file", "line_number")
    first = ordered.unique(subset="record_id", keep="first", maintain_order=True)
    return first.filter(~pl.col("record_id").is_in(list(accepted_ids))).select(
        "record_id", "meterpoint_id", "interval_start", "consumption"
    )


def resent_corrections(conflicts: pl.DataFrame, first_copies: pl.DataFrame) -> pl.DataFrame:
    """What corrected re-sends change in the bill: per record, its first copy taken off and its latest copy added.

    ``conflicts``: re-sends with another payload (``record_id``, ``meterpoint_id``,
    ``interval_start``, ``consumption`` and their arrival ``ingestion_hour``, ``source_file``,
    ``line_number``), kept out of ``deduplicated_raw`` by its first-arrival rule.
    ``first_copies``: the ``deduplicated_raw`` rows of those records. For billing, a meter
    system that sends a reading again with another value is correcting it: the latest arrival
    is what is billed. A record with no first copy (it moved out, or was withdrawn) is left
    alone: there is nothing to correct.
    """
    if conflicts.is_empty():
        return pl.DataFrame(schema=CORRECTION_SCHEMA)
    latest = conflicts.sort("ingestion_hour", "source_file", "line_number").unique(
        subset="record_id", keep="last", maintain_order=True
    )
    both = latest.join(first_copies, on="record_id", suffix="_first").filter(
        ~pl.col("meterpoint_id").eq_missing(pl.col("meterpoint_id_first"))
        | ~pl.col("interval_start").eq_missing(pl.col("interval_start_first"))
        | ~pl.col("consumption").eq_missing(pl.col("consumption_first"))
    )
    taken_off = both.select(
        pl.col("meterpoint_id_first").alias("meterpoint_id"),
        pl.col("interval_start_first").alias("instant"),
        (-pl.col("consumption_first")).alias("kwh"),
        pl.lit(0, pl.Int64).alias("corrected_count"),
    )
    added = both.select(
        "meterpoint_id",
        pl.col("interval_start").alias("instant"),
        pl.col("consumption").alias("kwh"),
        pl.lit(1, pl.Int64).alias("corrected_count"),
    )
    return pl.concat([taken_off, added]).cast(CORRECTION_SCHEMA)


def statement_lines(
    month: str,
    timezone: str,
    usage: pl.DataFrame,
    coverage: pl.DataFrame,
    too_late: pl.DataFrame | None,
    corrections: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """A month's statement lines: its hourly usage, coverage, too-late readings (not in initial runs) and corrections.

    A reading belongs to the local day of its hour (or its own ``interval_start``), and the
    agreement covering that meterpoint on that day; a day nothing covers is billed on a line
    with ``unmatched_reason`` ``no_agreement``, so the lines always add up to the month's usage.
    A corrected re-send moves kWh by its ``correction_kwh`` (``resent_corrections``).
    """
    start, end = month_bounds(month, timezone)

    def in_month(column: str) -> pl.Expr:
        return (pl.col(column) >= start) & (pl.col(column) < end)

    accepted = usage.filter(in_month("usage_hour")).select(
        "meterpoint_id",
        pl.col("usage_hour").alias("instant"),
        pl.col("consumption").cast(EXACT).alias("kwh"),
        pl.col("reading_count").cast(pl.Int64),
        pl.lit(0, pl.Int64).alias("too_late_count"),
        pl.lit(0, EXACT).alias("too_late_kwh"),
        pl.lit(0, pl.Int64).alias("corrected_count"),
        pl.lit(0, EXACT).alias("correction_kwh"),
    )
    parts = [accepted]
    if too_late is not None and too_late.height:
        late_kwh = pl.col("consumption").cast(EXACT)
        parts.append(
            too_late.filter(in_month("interval_start")).select(
                "meterpoint_id",
                pl.col("interval_start").alias("instant"),
                late_kwh.alias("kwh"),
                pl.lit(1, pl.Int64).alias("reading_count"),
                pl.lit(1, pl.Int64).alias("too_late_count"),
                late_kwh.alias("too_late_kwh"),
                pl.lit(0, pl.Int64).alias("corrected_count"),
                pl.lit(0, EXACT).alias("correction_kwh"),
            )
        )
    if corrections is not None and corrections.height:
        change = pl.col("kwh").cast(EXACT)
        parts.append(
            corrections.filter(in_month("instant")).select(
                "meterpoint_id",
                "instant",
                change.alias("kwh"),
                pl.lit(0, pl.Int64).alias("reading_count"),
                pl.lit(0, pl.Int64).alias("too_late_count"),
                pl.lit(0, EXACT).alias("too_late_kwh"),
                "corrected_count",
                change.alias("correction_kwh"),
            )
        )
    readings = pl.concat(parts).with_columns(pl.col("instant").dt.convert_time_zone(timezone).dt.date().alias("date"))
    covered = _covering(coverage)
    lines = (
        readings.join(covered, on=["meterpoint_id", "date"], how="left")
        .with_columns(
            pl.when(pl.col("agreement_id").is_null())
            .then(pl.lit("no_agreement"))
            .otherwise(pl.col("unmatched_reason"))
            .alias("unmatched_reason")
        )
        .group_by(LINE_KEY)
        .agg(
            pl.col("date").n_unique().alias("days"),
            pl.col("reading_count").sum(),
            pl.col("too_late_count").sum(),
            pl.col("too_late_kwh").sum(),
            pl.col("corrected_count").sum(),
            pl.col("correction_kwh").sum(),
            pl.col("kwh").sum(),
        )
    )
    return _normalised(lines)


def coverage_moves(usage_days: pl.DataFrame, previous: pl.DataFrame, current: pl.DataFrame) -> set[str]:
    """Meterpoints with a day of usage whose covering line (agreement, product, reason) differs between two coverages.

    ``usage_days``: ``meterpoint_id`` and ``date`` of the days that hold readings now.
    """
    key = list(LINE_KEY[1:])
    before = usage_days.join(_covering(previous), on=["meterpoint_id", "date"], how="left")
    after = usage_days.join(_covering(current), on=["meterpoint_id", "date"], how="left")
    both = before.join(after, on=["meterpoint_id", "date"], suffix="_now", nulls_equal=True)
    changed = pl.any_horizontal(*[~pl.col(name).eq_missing(pl.col(f"{name}_now")) for name in key])
    return set(both.filter(changed)["meterpoint_id"].to_list())


def usage_days(month: str, timezone: str, inputs: MonthInputs, with_too_late: bool) -> pl.DataFrame:
    """The (meterpoint, local day) pairs of a month that hold readings."""
    start, end = month_bounds(month, timezone)
    frames = [inputs.usage.select("meterpoint_id", pl.col("usage_hour").alias("instant"))]
    if with_too_late and inputs.too_late.height:
        frames.append(inputs.too_late.select("meterpoint_id", pl.col("interval_start").alias("instant")))
    if inputs.corrections is not None and inputs.corrections.height:
        frames.append(inputs.corrections.select("meterpoint_id", "instant"))
    return (
        pl.concat(frames)
        .filter((pl.col("instant") >= start) & (pl.col("instant") < end))
        .select("meterpoint_id", pl.col("instant").dt.convert_time_zone(timezone).dt.date().alias("date"))
        .unique()
    )


def adjustment_rows(previous: pl.DataFrame, current: pl.DataFrame, moved: Collection[str]) -> pl.DataFrame:
    """Per meterpoint whose lines differ between two runs: its total before and after, and why.

    Reasons compare the meterpoint's readings accepted by the watermark (count and kWh), its
    ``too_late`` readings, and whether a day of its usage moved to another line (``moved``).
    """
    changed = _changed_meterpoints(previous, current)
    before, after = _totals(previous), _totals(current)
    rows = []
    for meterpoint in sorted(changed):
        was, now = before.get(meterpoint, _NO_TOTAL), after.get(meterpoint, _NO_TOTAL)
        reasons = []
        if now["accepted_count"] > was["accepted_count"]:
            reasons.append("late_reading")
        elif now["accepted_count"] < was["accepted_count"]:
            reasons.append("reading_withdrawn")
        elif now["accepted_kwh"] != was["accepted_kwh"]:
            reasons.append("reading_corrected")
        if (now["too_late_count"], now["too_late_kwh"]) != (was["too_late_count"], was["too_late_kwh"]):
            reasons.append("too_late_reading")
        if (now["corrected_count"], now["correction_kwh"]) != (was["corrected_count"], was["correction_kwh"]):
            reasons.append("resent_correction")
        if meterpoint in moved:
            reasons.append("coverage_changed")
        rows.append(
            {
                "meterpoint_id": meterpoint,
                "kwh_before": float(was["kwh"]),
                "kwh_after": float(now["kwh"]),
                "kwh_difference": float(now["kwh"] - was["kwh"]),
                # A line renamed or re-attributed without a day moving (e.g. a product's display name).
                "reasons": reasons or ["restated"],
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "meterpoint_id": pl.String,
            "kwh_before": pl.Float64,
            "kwh_after": pl.Float64,
            "kwh_difference": pl.Float64,
            "reasons": pl.List(pl.String),
        },
    )


def plan_run(
    month: str,
    timezone: str,
    now: datetime,
    lifecycle: Lifecycle,
    previous: PreviousRun | None,
    versions: Mapping[str, int],
    read: Callable[[], MonthInputs],
) -> RunPlan | None:
    """The run to append for ``month`` at ``now``, or None when none is due or nothing it bills changed.

    ``versions`` are the input tables' current versions; ``read`` reads the month's inputs at
    them, and is called only when a run may be needed: a reconciliation whose inputs are at the
    versions the previous one read would bill the same. A final run is written once, even
    unchanged, because it is what says the month will not change any more.
    """
    _, month_end = month_bounds(month, timezone)
    kind = lifecycle.kind_due(month_end, now, previous.kind if previous else None)
    if kind is None:
        return None
    if previous is not None and kind == previous.kind and dict(versions) == dict(previous.versions):
        return None
    inputs = read()
    # The initial statement bills what the watermark accepted; too-late readings wait for the
    # reconciliation, which reviews them against what was billed (docs/settlement.md).
    with_too_late = kind != INITIAL
    late = inputs.too_late if with_too_late else None
    lines = statement_lines(month, timezone, inputs.usage, inputs.coverage, late, inputs.corrections)
    check_conserved(month, timezone, lines, inputs.usage)
    if lines.is_empty():
        # A run is its rows: an empty one could not be found again, and the next decision would
        # write it again. A month without readings has nothing to bill yet.
        if previous is None:
            return None
        raise NotConserved(
            f"{month}: every reading billed by run {previous.run} is gone from the inputs; "
            "a run without lines cannot be recorded (was hourly_usage rebuilt from nothing?)"
        )
    if previous is not None and kind != FINAL and lines.equals(_normalised(previous.lines)):
        return None
    run = previous.run + 1 if previous else 1
    adjustments = _empty_adjustments()
    if previous is not None:
        moved = set()
        if inputs.previous_coverage is not None:
            days = usage_days(month, timezone, inputs, with_too_late)
            moved = coverage_moves(days, inputs.previous_coverage, inputs.coverage)
        adjustments = adjustment_rows(_normalised(previous.lines), lines, moved)
    return RunPlan(
        run,
        kind,
        _statement_rows(lines, month, run, kind, now, versions),
        _adjustment_table(adjustments, month, run, previous.run if previous else None, now),
    )


def previous_run(statements: pl.DataFrame) -> PreviousRun | None:
    """The latest run among a month's ``statements`` rows (None before its first run)."""
    if statements.is_empty():
        return None
    latest = statements.filter(pl.col("run") == pl.col("run").max())
    first = latest.row(0, named=True)
    versions = {table: first[f"{table}_version"] for table in INPUT_TABLES}
    return PreviousRun(first["run"], first["run_kind"], versions, _normalised(latest.select(*LINE_KEY, *LINE_VALUES)))


def _covering(coverage: pl.DataFrame) -> pl.DataFrame:
    """The coverage rows that cover readings, one per meterpoint and day (``NotConserved`` otherwise)."""
    if "covers_readings" in coverage.columns:
        coverage = coverage.filter(pl.col("covers_readings"))
    # Two covering agreements on one day would bill that day's readings twice.
    twice = coverage.group_by("meterpoint_id", "date").len().filter(pl.col("len") > 1)
    if twice.height:
        shown = ", ".join(
            f"{meterpoint} on {day}" for meterpoint, day, _ in twice.sort("meterpoint_id", "date").head(5).rows()
        )
        raise NotConserved(f"{twice.height} meterpoint-day(s) covered by more than one agreement, e.g. {shown}")
    return coverage.select(_COVERAGE_COLUMNS).cast({name: pl.String for name in LINE_KEY[1:]})


def check_conserved(month: str, timezone: str, lines: pl.DataFrame, usage: pl.DataFrame) -> None:
    """Refuse lines whose kWh and readings, less too-late readings and corrections, differ from the month's usage.

    Every reading the watermark accepted is billed on exactly one line: a run that would bill
    one twice or not at all is a bug, stopped before anything is appended (``NotConserved``).
    """
    start, end = month_bounds(month, timezone)
    expected = (
        usage.filter((pl.col("usage_hour") >= start) & (pl.col("usage_hour") < end))
        .group_by("meterpoint_id")
        .agg(pl.col("consumption").cast(EXACT).sum().alias("kwh"), pl.col("reading_count").sum().alias("readings"))
    )
    billed = lines.group_by("meterpoint_id").agg(
        (pl.col("kwh").cast(EXACT) - pl.col("too_late_kwh").cast(EXACT) - pl.col("correction_kwh").cast(EXACT))
        .sum()
        .alias("kwh"),
        (pl.col("reading_count") - pl.col("too_late_count")).sum().alias("readings"),
    )
    both = expected.join(billed, on="meterpoint_id", how="full", coalesce=True, suffix="_billed").fill_null(0)
    # Lines hold doubles converted once from the exact sums: compare within the conversion's error.
    wrong = both.filter(
        ((pl.col("kwh").cast(pl.Float64) - pl.col("kwh_billed").cast(pl.Float64)).abs() > 1e-6)
        | (pl.col("readings") != pl.col("readings_billed"))
    )
    if wrong.height:
        shown = ", ".join(str(row) for row in wrong.sort("meterpoint_id").head(5).rows())
        raise NotConserved(f"{month}: {wrong.height} meterpoint(s) billed other than their usage, e.g. {shown}")


def _normalised(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines in one column order, types and row order, so two runs' lines compare with ``equals``."""
    exact = {name: pl.col(name).cast(pl.Float64) for name in ("too_late_kwh", "correction_kwh", "kwh")}
    return (
        lines.with_columns(**exact).select(list(_LINE_SCHEMA)).cast(_LINE_SCHEMA).sort(list(LINE_KEY), nulls_last=True)
    )


def _changed_meterpoints(previous: pl.DataFrame, current: pl.DataFrame) -> set[str]:
    """Meterpoints whose set of lines differs between two runs."""
    columns = list(_LINE_SCHEMA)
    gone = previous.join(current, on=columns, how="anti", nulls_equal=True)
    new = current.join(previous, on=columns, how="anti", nulls_equal=True)
    return set(gone["meterpoint_id"].to_list()) | set(new["meterpoint_id"].to_list())


_NO_TOTAL = {
    "accepted_count": 0,
    "accepted_kwh": 0,
    "too_late_count": 0,
    "too_late_kwh": 0,
    "corrected_count": 0,
    "correction_kwh": 0,
    "kwh": 0,
}


def _totals(lines: pl.DataFrame) -> dict[str, dict]:
    """Per meterpoint: exact totals of its lines, split into accepted and too-late readings."""
    totals = lines.group_by("meterpoint_id").agg(
        (pl.col("reading_count") - pl.col("too_late_count")).sum().alias("accepted_count"),
        (pl.col("kwh").cast(EXACT) - pl.col("too_late_kwh").cast(EXACT) - pl.col("correction_kwh").cast(EXACT))
        .sum()
        .alias("accepted_kwh"),
        pl.col("too_late_count").sum(),
        pl.col("too_late_kwh").cast(EXACT).sum(),
        pl.col("corrected_count").sum(),
        pl.col("correction_kwh").cast(EXACT).sum(),
        pl.col("kwh").cast(EXACT).sum(),
    )
    return {row.pop("meterpoint_id"): row for row in totals.iter_rows(named=True)}


def _statement_rows(
    lines: pl.DataFrame, month: str, run: int, kind: str, now: datetime, versions: Mapping[str, int]
) -> pl.DataFrame:
    """The lines as ``statements`` rows of one run, in the table's column order."""
    return _as_table(
        lines.with_columns(
            pl.lit(month).alias("billing_month"),
            pl.lit(run).alias("run"),
            pl.lit(kind).alias("run_kind"),
            pl.lit(now).alias("created_at"),
            *[pl.lit(versions[table]).alias(f"{table}_version") for table in INPUT_TABLES],
        ),
        STATEMENTS,
    )


def _empty_adjustments() -> pl.DataFrame:
    return adjustment_rows(pl.DataFrame(schema=_LINE_SCHEMA), pl.DataFrame(schema=_LINE_SCHEMA), ())


def _adjustment_table(
    adjustments: pl.DataFrame, month: str, run: int, previous: int | None, now: datetime
) -> pl.DataFrame:
    """Adjustment rows of one run, in the table's column order."""
    return _as_table(
        adjustments.with_columns(
            pl.lit(month).alias("billing_month"),
            pl.lit(run).alias("run"),
            pl.lit(previous, pl.Int32).alias("previous_run"),
            pl.lit(now).alias("created_at"),
        ),
        STATEMENT_ADJUSTMENTS,
    )


def _as_table(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """``frame``'s columns in the table's order and types."""
    target = pl.from_arrow(spec.schema.empty_table())
    return frame.select(spec.schema.names).cast(dict(target.schema))
