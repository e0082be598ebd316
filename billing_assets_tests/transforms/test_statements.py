"""Statements: when a run is made, its kind, its lines and its adjustments, with values worked out by hand.

No Spark: the inputs are small polars frames. February 2026 in London is GMT, so local days are
UTC days; the month ends at 2026-03-01 00:00 UTC. Initial statements are due a day later, final
ones 60 days later (from 2026-04-30).
"""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from billing_assets.domain.settlement import FINAL, INITIAL, RECONCILIATION, Lifecycle, month_bounds
from billing_assets.tables.schemas import STATEMENT_ADJUSTMENTS, STATEMENTS
from billing_assets.transforms.statements import (
    MonthInputs,
    NotConserved,
    PreviousRun,
    billable_too_late,
    check_conserved,
    plan_run,
    previous_run,
    resent_corrections,
    statement_lines,
)

MONTH, ZONE = "2026-02", "Europe/London"
LIFECYCLE = Lifecycle(initial_after=timedelta(days=1), final_after=timedelta(days=60))
VERSIONS = {"hourly_usage": 10, "agreement_days": 4, "quarantined_readings": 20, "deduplicated_raw": 30}
INITIAL_TIME = datetime(2026, 3, 2, tzinfo=UTC)
LATER = datetime(2026, 3, 5, tzinfo=UTC)
NO_READ = "no input may be read"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 2, day, hour, tzinfo=UTC)


def usage(*rows: tuple[str, datetime, float, int]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "meterpoint_id": pl.String,
            "usage_hour": pl.Datetime("us", "UTC"),
            "consumption": pl.Float64,
            "reading_count": pl.Int64,
        },
        orient="row",
    )


def coverage(*spans: tuple[str, str, str, str, str, int, int]) -> pl.DataFrame:
    """``agreement_days`` rows covering readings: (meterpoint, agreement, account, product, name, first, last day)."""
    rows = [
        (date(2026, 2, day), meterpoint, agreement, account, product, name, None, True)
        for meterpoint, agreement, account, product, name, first, last in spans
        for day in range(first, last + 1)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "date": pl.Date,
            "meterpoint_id": pl.String,
            "agreement_id": pl.String,
            "account_id": pl.String,
            "product_id": pl.String,
            "product_display_name": pl.String,
            "unmatched_reason": pl.String,
            "covers_readings": pl.Boolean,
        },
        orient="row",
    )


def too_late(*rows: tuple[str, str, datetime, float, str]) -> pl.DataFrame:
    """Quarantined ``too_late`` readings: (record id, meterpoint, interval start, kWh, ingestion hour)."""
    return pl.DataFrame(
        [(*row, "f.json", 1) for row in rows],
        schema={
            "record_id": pl.String,
            "meterpoint_id": pl.String,
            "interval_start": pl.Datetime("us", "UTC"),
            "consumption": pl.Float64,
            "ingestion_hour": pl.String,
            "source_file": pl.String,
            "line_number": pl.Int64,
        },
        orient="row",
    )


NONE_LATE = billable_too_late(too_late(), set())
#: mp1 under a1 (Fixed) all month; mp2 under a2 (Variable) until the 14th, then under nothing.
USAGE = usage(
    ("mp1", at(3, 10), 1.5, 2),
    ("mp1", at(10, 8), 0.25, 1),
    ("mp2", at(14, 23), 2.0, 2),
    ("mp2", at(20, 12), 0.75, 1),
)
COVERAGE = coverage(("mp1", "a1", "acc1", "p1", "Fixed", 1, 28), ("mp2", "a2", "acc2", "p2", "Variable", 1, 14))
#: (meterpoint, agreement, product, unmatched reason, days, readings, too-late readings, too-late kWh, kWh)
INITIAL_LINES = [
    ("mp1", "a1", "p1", None, 2, 3, 0, 0.0, 1.75),
    ("mp2", "a2", "p2", None, 1, 2, 0, 0.0, 2.0),
    ("mp2", None, None, "no_agreement", 1, 1, 0, 0.0, 0.75),
]


def inputs(
    use: pl.DataFrame = USAGE,
    cover: pl.DataFrame = COVERAGE,
    late: pl.DataFrame = NONE_LATE,
    before: pl.DataFrame | None = COVERAGE,
    corrections: pl.DataFrame | None = None,
) -> MonthInputs:
    return MonthInputs(use, cover, late, before, corrections)


def readings(*rows: tuple[str, str, datetime, float, str]) -> pl.DataFrame:
    """Copies of readings: (record id, meterpoint, interval start, kWh, ingestion hour)."""
    return (
        too_late(*rows)
        .drop("source_file", "line_number")
        .with_columns(pl.lit("f.json").alias("source_file"), pl.lit(1, pl.Int64).alias("line_number"))
    )


def lines(statements: pl.DataFrame) -> list[tuple]:
    columns = ["meterpoint_id", "agreement_id", "product_id", "unmatched_reason", "days"]
    columns += ["reading_count", "too_late_count", "too_late_kwh", "kwh"]
    return [tuple(row) for row in statements.select(columns).iter_rows()]


def adjustments(plan_adjustments: pl.DataFrame) -> list[tuple]:
    columns = ["meterpoint_id", "previous_run", "kwh_before", "kwh_after", "kwh_difference", "reasons"]
    return [tuple(row) for row in plan_adjustments.select(columns).iter_rows()]


def never() -> MonthInputs:
    raise AssertionError(NO_READ)


def initial_run() -> PreviousRun:
    plan = plan_run(MONTH, ZONE, INITIAL_TIME, LIFECYCLE, None, VERSIONS, lambda: inputs(before=None))
    assert plan is not None
    found = previous_run(plan.statements)
    assert found is not None
    return found


def test_month_bounds_are_local_midnights() -> None:
    assert month_bounds("2026-02", ZONE) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    # October in London starts in summer time, at 23:00 UTC the day before, and ends in winter time.
    assert month_bounds("2026-10", ZONE) == (datetime(2026, 9, 30, 23, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    assert month_bounds("2026-12", ZONE)[1] == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "previous", "expected"),
    [
        (datetime(2026, 3, 1, 23, tzinfo=UTC), None, None),  # the month's last readings may still arrive
        (INITIAL_TIME, None, INITIAL),
        (LATER, INITIAL, RECONCILIATION),
        (LATER, RECONCILIATION, RECONCILIATION),
        (datetime(2026, 4, 30, tzinfo=UTC), RECONCILIATION, FINAL),
        (datetime(2026, 6, 1, tzinfo=UTC), None, FINAL),  # first settled after its final date: once, as final
        (datetime(2026, 6, 1, tzinfo=UTC), FINAL, None),
    ],
)
def test_the_kind_due(now: datetime, previous: str | None, expected: str | None) -> None:
    assert LIFECYCLE.kind_due(datetime(2026, 3, 1, tzinfo=UTC), now, previous) == expected


def test_an_initial_run_bills_each_meterpoint_under_the_agreement_covering_each_day() -> None:
    too_early = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert plan_run(MONTH, ZONE, too_early, LIFECYCLE, None, VERSIONS, never) is None

    plan = plan_run(MONTH, ZONE, INITIAL_TIME, LIFECYCLE, None, VERSIONS, lambda: inputs(before=None))

    assert plan is not None and (plan.run, plan.kind) == (1, INITIAL)
    assert lines(plan.statements) == INITIAL_LINES
    row = plan.statements.row(0, named=True)
    assert (row["billing_month"], row["run"], row["run_kind"], row["account_id"]) == (MONTH, 1, INITIAL, "acc1")
    assert (row["product_display_name"], row["created_at"]) == ("Fixed", INITIAL_TIME)
    recorded = ("hourly_usage", "agreement_days", "quarantined_readings", "deduplicated_raw")
    assert [row[f"{table}_version"] for table in recorded] == [10, 4, 20, 30]
    assert plan.adjustments.is_empty()
    # The rows are the tables' contract, column for column.
    assert plan.statements.to_arrow().cast(STATEMENTS.schema).schema == STATEMENTS.schema
    assert plan.adjustments.to_arrow().cast(STATEMENT_ADJUSTMENTS.schema).schema == STATEMENT_ADJUSTMENTS.schema


def test_a_late_reading_within_the_watermark_is_billed_by_a_reconciliation() -> None:
    previous = initial_run()
    # Read on 2026-03-05 for the 28th, 22:00: inside the 7-day window, so hourly_usage holds it.
    late = usage(*USAGE.iter_rows(), ("mp1", at(28, 22), 0.5, 1))
    versions = {**VERSIONS, "hourly_usage": 11}

    plan = plan_run(MONTH, ZONE, LATER, LIFECYCLE, previous, versions, lambda: inputs(late))

    assert plan is not None and (plan.run, plan.kind) == (2, RECONCILIATION)
    assert lines(plan.statements) == [("mp1", "a1", "p1", None, 3, 4, 0, 0.0, 2.25), *INITIAL_LINES[1:]]
    assert plan.statements["hourly_usage_version"].unique().to_list() == [11]
    assert adjustments(plan.adjustments) == [("mp1", 1, 1.75, 2.25, 0.5, ["late_reading"])]


def test_a_conflict_that_repeats_the_first_copy_changes_nothing() -> None:
    # Only quarantined_readings moved, and its conflict says what the first copy says.
    previous = initial_run()
    versions = {**VERSIONS, "quarantined_readings": 21}
    first = readings(("r8", "mp1", at(10, 8), 0.25, "2026-02-10-09"))
    same = resent_corrections(readings(("r8", "mp1", at(10, 8), 0.25, "2026-03-03-00")), first.drop("ingestion_hour"))
    assert same.is_empty()
    plan = plan_run(MONTH, ZONE, LATER, LIFECYCLE, previous, versions, lambda: inputs(corrections=same))
    assert plan is None


def test_a_corrected_resend_bills_its_latest_value_in_one_reconciliation() -> None:
    # mp1's 08:00 reading of the 10th (0.25 kWh, first copy) is sent again as 0.3 and then as
    # 0.4: deduplication keeps the first copy, billing takes the latest. 1.75 - 0.25 + 0.4 = 1.9.
    previous = initial_run()
    first = readings(("r8", "mp1", at(10, 8), 0.25, "2026-02-10-09")).drop("ingestion_hour")
    resent = readings(
        ("r8", "mp1", at(10, 8), 0.4, "2026-03-03-02"),
        ("r8", "mp1", at(10, 8), 0.3, "2026-03-03-01"),
    )
    corrections = resent_corrections(resent, first)
    assert sorted(corrections.rows()) == [("mp1", at(10, 8), -0.25, 0), ("mp1", at(10, 8), 0.4, 1)]
    versions = {**VERSIONS, "quarantined_readings": 21}

    plan = plan_run(MONTH, ZONE, LATER, LIFECYCLE, previous, versions, lambda: inputs(corrections=corrections))

    assert plan is not None and (plan.run, plan.kind) == (2, RECONCILIATION)
    assert lines(plan.statements) == [("mp1", "a1", "p1", None, 2, 3, 0, 0.0, 1.9), *INITIAL_LINES[1:]]
    assert plan.statements.filter(pl.col("meterpoint_id") == "mp1").select("corrected_count", "correction_kwh").row(
        0
    ) == (1, 0.15)
    assert adjustments(plan.adjustments) == [("mp1", 1, 1.75, 1.9, 0.15, ["resent_correction"])]
    # The next decision with the same inputs bills the same: no run.
    again = previous_run(plan.statements)
    assert plan_run(MONTH, ZONE, LATER, LIFECYCLE, again, versions, lambda: inputs(corrections=corrections)) is None


def test_a_reading_whose_value_changed_is_a_correction() -> None:
    # deduplicated_raw rebuilt (the repair path) with another value for the same reading:
    # same count, another total.
    previous = initial_run()
    corrected = usage(("mp1", at(3, 10), 1.5, 2), ("mp1", at(10, 8), 0.3, 1), *USAGE.iter_rows())
    corrected = corrected.unique(subset=["meterpoint_id", "usage_hour"], keep="first", maintain_order=True)
    versions = {**VERSIONS, "hourly_usage": 12}

    plan = plan_run(MONTH, ZONE, LATER, LIFECYCLE, previous, versions, lambda: inputs(corrected))

    assert plan is not None
    assert lines(plan.statements)[0] == ("mp1", "a1", "p1", None, 2, 3, 0, 0.0, 1.8)
    assert adjustments(plan.adjustments) == [("mp1", 1, 1.75, 1.8, 0.05, ["reading_corrected"])]


def test_a_source_correction_moving_a_day_to_another_product_is_restated() -> None:
    previous = initial_run()
    # The source now says mp1 moved to a3 (Green) on the 10th: that day's 0.25 kWh changes product.
    moved = coverage(
        ("mp1", "a1", "acc1", "p1", "Fixed", 1, 9),
        ("mp1", "a3", "acc1", "p3", "Green", 10, 28),
        ("mp2", "a2", "acc2", "p2", "Variable", 1, 14),
    )
    versions = {**VERSIONS, "agreement_days": 5}

    plan = plan_run(MONTH, ZONE, LATER, LIFECYCLE, previous, versions, lambda: inputs(cover=moved))

    assert plan is not None
    assert lines(plan.statements) == [
        ("mp1", "a1", "p1", None, 1, 2, 0, 0.0, 1.5),
        ("mp1", "a3", "p3", None, 1, 1, 0, 0.0, 0.25),
        *INITIAL_LINES[1:],
    ]
    assert adjustments(plan.adjustments) == [("mp1", 1, 1.75, 1.75, 0.0, ["coverage_changed"])]


def test_a_too_late_reading_is_billed_by_the_reconciliation_once() -> None:
    quarantined = too_late(
        # Sent on the 12th for the 1st, 05:00: quarantined too_late, billed by the reconciliation...
        ("r-late", "mp1", at(1, 5), 0.4, "2026-02-12-09"),
        # ...once, though it was sent again an hour later...
        ("r-late", "mp1", at(1, 5), 0.4, "2026-02-12-10"),
        # ...and not when it is a copy of a reading the pipeline accepted and billed.
        ("r-billed", "mp1", at(3, 10), 0.75, "2026-02-12-09"),
        # A reading of January is not February's.
        ("r-january", "mp2", datetime(2026, 1, 31, 23, tzinfo=UTC), 9.0, "2026-02-12-09"),
    )
    late = billable_too_late(quarantined, accepted_ids={"r-billed"})
    assert late["record_id"].to_list() == ["r-late", "r-january"]

    # The initial statement leaves it out...
    plan = plan_run(MONTH, ZONE, INITIAL_TIME, LIFECYCLE, None, VERSIONS, lambda: inputs(late=late, before=None))
    assert plan is not None and lines(plan.statements) == INITIAL_LINES
    previous = previous_run(plan.statements)

    # ...the next decision reconciles it, with no input having changed since.
    plan = plan_run(MONTH, ZONE, LATER, LIFECYCLE, previous, VERSIONS, lambda: inputs(late=late))

    assert plan is not None and (plan.run, plan.kind) == (2, RECONCILIATION)
    assert lines(plan.statements)[0] == ("mp1", "a1", "p1", None, 3, 4, 1, 0.4, 2.15)
    assert adjustments(plan.adjustments) == [("mp1", 1, 1.75, 2.15, 0.4, ["too_late_reading"])]


def test_a_rerun_with_nothing_changed_adds_nothing_until_the_final_run_seals_the_month() -> None:
    first = initial_run()
    late = usage(*USAGE.iter_rows(), ("mp1", at(28, 22), 0.5, 1))
    versions = {**VERSIONS, "hourly_usage": 11}
    plan = plan_run(MONTH, ZONE, LATER, LIFECYCLE, first, versions, lambda: inputs(late))
    assert plan is not None
    reconciled = previous_run(plan.statements)
    assert reconciled is not None and reconciled.versions == versions

    # Same versions, same kind: nothing is read, no run.
    assert plan_run(MONTH, ZONE, LATER + timedelta(days=1), LIFECYCLE, reconciled, versions, never) is None

    # The final run is written once, unchanged, without adjustments; after it, nothing.
    final_time = datetime(2026, 4, 30, tzinfo=UTC)
    final = plan_run(MONTH, ZONE, final_time, LIFECYCLE, reconciled, versions, lambda: inputs(late))
    assert final is not None and (final.run, final.kind) == (3, FINAL)
    assert lines(final.statements) == lines(plan.statements)
    assert final.adjustments.is_empty()
    sealed = previous_run(final.statements)
    changed = {**versions, "hourly_usage": 99}
    assert plan_run(MONTH, ZONE, final_time + timedelta(days=9), LIFECYCLE, sealed, changed, never) is None


def test_a_day_covered_twice_is_refused_before_anything_is_billed() -> None:
    # agreement_days promises one covering agreement per meterpoint and day; if it broke that,
    # the day's readings would be billed on two lines.
    twice = pl.concat([COVERAGE, coverage(("mp1", "a9", "acc1", "p9", "Other", 10, 10))])
    with pytest.raises(
        NotConserved, match="1 meterpoint-day.s. covered by more than one agreement, e.g. mp1 on 2026-02-10"
    ):
        plan_run(MONTH, ZONE, INITIAL_TIME, LIFECYCLE, None, VERSIONS, lambda: inputs(cover=twice, before=None))


def test_lines_that_do_not_add_up_to_the_usage_are_refused() -> None:
    lines = statement_lines(MONTH, ZONE, USAGE, COVERAGE, None)
    check_conserved(MONTH, ZONE, lines, USAGE)
    short = lines.with_columns(
        pl.when(pl.col("meterpoint_id") == "mp2").then(0.5).otherwise(pl.col("kwh")).alias("kwh")
    )
    with pytest.raises(NotConserved, match="2026-02: 1 meterpoint.s. billed other than their usage"):
        check_conserved(MONTH, ZONE, short, USAGE)


def test_a_month_without_readings_gets_no_run_and_one_whose_readings_vanished_is_refused() -> None:
    empty = usage()
    assert plan_run(MONTH, ZONE, INITIAL_TIME, LIFECYCLE, None, VERSIONS, lambda: inputs(empty, before=None)) is None

    previous = initial_run()
    versions = {**VERSIONS, "hourly_usage": 13}
    with pytest.raises(NotConserved, match="every reading billed by run 1 is gone"):
        plan_run(MONTH, ZONE, LATER, LIFECYCLE, previous, versions, lambda: inputs(empty))
