"""The statement lifecycle's time rules: month bounds in the billing zone and the kind a run would have."""

from datetime import UTC, datetime, timedelta

import pytest

from billing_assets.domain.settlement import FINAL, INITIAL, RECONCILIATION, Lifecycle, month_bounds


@pytest.mark.parametrize(
    ("month", "zone", "start", "end"),
    [
        # March in London ends in summer time: 1 April 00:00 BST is 31 March 23:00 UTC.
        ("2026-03", "Europe/London", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, 23, tzinfo=UTC)),
        # Kolkata (+05:30): February starts at 18:30 UTC on 31 January.
        (
            "2026-02",
            "Asia/Kolkata",
            datetime(2026, 1, 31, 18, 30, tzinfo=UTC),
            datetime(2026, 2, 28, 18, 30, tzinfo=UTC),
        ),
        ("2026-12", "America/New_York", datetime(2026, 12, 1, 5, tzinfo=UTC), datetime(2027, 1, 1, 5, tzinfo=UTC)),
    ],
)
def test_month_bounds_in_the_billing_zone(month: str, zone: str, start: datetime, end: datetime) -> None:
    assert month_bounds(month, zone) == (start, end)


def test_the_dates_are_inclusive_and_a_sealed_month_stays_sealed() -> None:
    lifecycle = Lifecycle(initial_after=timedelta(days=1), final_after=timedelta(days=8))
    end = datetime(2026, 3, 31, 23, tzinfo=UTC)
    assert lifecycle.kind_due(end, end + timedelta(days=1) - timedelta(microseconds=1), None) is None
    assert lifecycle.kind_due(end, end + timedelta(days=1), None) == INITIAL
    assert lifecycle.kind_due(end, end + timedelta(days=8) - timedelta(microseconds=1), INITIAL) == RECONCILIATION
    assert lifecycle.kind_due(end, end + timedelta(days=8), RECONCILIATION) == FINAL
    assert lifecycle.kind_due(end, end + timedelta(days=800), FINAL) is None
