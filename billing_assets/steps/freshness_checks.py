"""Landing freshness: has the newest complete landing hour been ingested (no Spark)."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from billing_assets.domain.keys import parse_hour_key
from billing_assets.domain.watermark import CLOCK_DRIFT, HOUR, is_complete
from billing_assets.steps.invariants import CheckOutcome


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
