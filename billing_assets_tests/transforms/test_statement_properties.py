"""Properties of statement runs over generated months: conserved, explained, and a re-run adds nothing."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_assets.domain.settlement import Lifecycle
from billing_assets.transforms.statements import MonthInputs, billable_too_late, plan_run, previous_run

MONTH, ZONE = "2026-03", "Europe/London"  # with the spring clock change on the 29th
LIFECYCLE = Lifecycle(timedelta(days=1), timedelta(days=60))
METERPOINTS = ("mp1", "mp2", "mp3")
AGREEMENTS = {"a1": ("p1", "Fixed"), "a2": ("p2", "Green"), "a3": ("p1", "Fixed")}

hours = st.datetimes(min_value=datetime(2026, 3, 1), max_value=datetime(2026, 3, 31, 22), timezones=st.just(UTC)).map(
    lambda instant: instant.replace(minute=0, second=0, microsecond=0)
)
# Up to three decimals: the exact sums are then exact in the tests' own arithmetic too.
kwh = st.integers(min_value=0, max_value=50_000).map(lambda milli: milli / 1000)
usage_rows = st.lists(
    st.tuples(st.sampled_from(METERPOINTS), hours, kwh, st.integers(1, 2)), max_size=25, unique_by=lambda r: r[:2]
)
# For each meterpoint, the day its agreement changes and the two agreements (None: uncovered).
coverage_plans = st.fixed_dictionaries(
    {
        meterpoint: st.tuples(
            st.integers(1, 31), st.sampled_from([None, *AGREEMENTS]), st.sampled_from([None, *AGREEMENTS])
        )
        for meterpoint in METERPOINTS
    }
)
late_rows = st.lists(st.tuples(st.sampled_from(METERPOINTS), hours, kwh), max_size=4)


def usage(rows: list) -> pl.DataFrame:
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


def coverage(plan: dict) -> pl.DataFrame:
    rows = []
    for meterpoint, (switch, before, after) in plan.items():
        for day in range(1, 32):
            agreement = before if day < switch else after
            if agreement is not None:
                product, name = AGREEMENTS[agreement]
                rows.append((date(2026, 3, day), meterpoint, agreement, f"acc-{meterpoint}", product, name, None))
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
        },
        orient="row",
    )


def too_late(rows: list) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            (f"late-{i}", mp, instant, value, "2026-04-20-00", "f.json", i)
            for i, (mp, instant, value) in enumerate(rows)
        ],
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
    return billable_too_late(frame, set())


def total(frame: pl.DataFrame, column: str) -> float:
    return round(float(frame[column].sum()), 6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=usage_rows,
    added=usage_rows,
    cover=coverage_plans,
    recover=coverage_plans,
    late=late_rows,
)
def test_runs_conserve_explain_every_change_and_repeat_nothing(
    first: list, added: list, cover: dict, recover: dict, late: list
) -> None:
    versions = {"hourly_usage": 1, "agreement_days": 1, "quarantined_readings": 1, "deduplicated_raw": 1}
    initial_inputs = MonthInputs(usage(first), coverage(cover), too_late(late))
    initial = plan_run(MONTH, ZONE, datetime(2026, 4, 2, tzinfo=UTC), LIFECYCLE, None, versions, lambda: initial_inputs)
    if not first:
        assert initial is None
        return
    assert initial is not None
    assert total(initial.statements, "kwh") == round(sum(row[2] for row in first), 6)
    assert initial.statements["too_late_count"].sum() == 0

    # A reconciliation: more readings (a reading of an hour already billed replaces nothing:
    # hourly_usage holds one row per hour), the source changed, the too-late readings billed.
    known = {row[:2] for row in first}
    later = first + [row for row in added if row[:2] not in known]
    inputs = MonthInputs(usage(later), coverage(recover), too_late(late), coverage(cover))
    moved = {**versions, "hourly_usage": 2, "agreement_days": 2}
    previous = previous_run(initial.statements)
    now = datetime(2026, 4, 10, tzinfo=UTC)
    plan = plan_run(MONTH, ZONE, now, LIFECYCLE, previous, moved, lambda: inputs)
    expected_total = round(sum(row[2] for row in later) + sum(row[2] for row in late), 6)
    if plan is None:
        # Nothing billed differently: the same lines, so the same total.
        assert total(initial.statements, "kwh") == expected_total
        return
    assert total(plan.statements, "kwh") == expected_total
    adjustments = plan.adjustments
    assert round(float(adjustments["kwh_difference"].sum()), 6) == round(
        expected_total - total(initial.statements, "kwh"), 6
    )
    assert all(reasons and "restated" not in reasons for reasons in adjustments["reasons"].to_list())

    # Deciding again from what it wrote, with nothing changed, adds nothing.
    again = previous_run(plan.statements)
    assert plan_run(MONTH, ZONE, now + timedelta(hours=1), LIFECYCLE, again, moved, lambda: inputs) is None
