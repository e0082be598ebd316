from datetime import UTC, datetime, timedelta

import pytest

from billing_assets.domain.watermark import acceptance_window, is_complete, watermark_reason

H = datetime(2026, 3, 10, 9, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("interval_start", "expected"),
    [
        (H - timedelta(days=7), None),  # exactly 7 days old: accepted
        (H - timedelta(days=7) - SECOND, "too_late"),  # just over
        (H + timedelta(hours=1, minutes=5), None),  # exactly +1 h 5 min: accepted
        (H + timedelta(hours=1, minutes=5) + SECOND, "from_future"),  # just over
        (H, None),
        (H - timedelta(days=30), "too_late"),
        (H + timedelta(days=1), "from_future"),
    ],
)
def test_watermark_boundaries(interval_start: datetime, expected: str | None) -> None:
    assert watermark_reason(interval_start, H) == expected


def test_acceptance_window_is_inclusive_and_domain_derived() -> None:
    lo, hi = acceptance_window(H)
    assert (lo, hi) == (datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 10, 10, 5, tzinfo=UTC))


def test_hour_is_complete_only_after_one_hour_and_drift() -> None:
    assert not is_complete(H, H + timedelta(hours=1, minutes=5))
    assert is_complete(H, H + timedelta(hours=1, minutes=5) + SECOND)
    assert not is_complete(H, H + timedelta(minutes=59))
