"""The statement lifecycle: a billing month's run kinds and when each is due (pure time rules).

A month is settled by an ``initial`` statement once it has ended, ``reconciliation`` runs while
its inputs still change, and one ``final`` run that seals it. See docs/settlement.md.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from billing_assets.domain.watermark import CLOCK_DRIFT, HOUR, LATE_DATA_WINDOW

INITIAL = "initial"
RECONCILIATION = "reconciliation"
FINAL = "final"
RUN_KINDS = (INITIAL, RECONCILIATION, FINAL)

#: The last reading of a month the watermark accepts arrives by this long after the month ends:
#: a final run before it would seal the month while accepted readings can still change it.
WATERMARK_CLOSES = LATE_DATA_WINDOW + HOUR + CLOCK_DRIFT


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants a ``YYYY-MM`` billing month starts and ends at (local midnights, end exclusive)."""
    zone = ZoneInfo(timezone)
    year, number = (int(part) for part in month.split("-"))
    following = (year + number // 12, number % 12 + 1)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(*following, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Lifecycle:
    """How long after a month ends its initial statement, and its final one, are due."""

    initial_after: timedelta
    final_after: timedelta

    def kind_due(self, month_end: datetime, now: datetime, previous_kind: str | None) -> str | None:
        """The kind a run made ``now`` would have, or None when no run may be made.

        Before ``initial_after`` the month is still being read; after a ``final`` run nothing
        changes it any more. A month first settled after its final date is settled once, as final.
        """
        if previous_kind == FINAL or now < month_end + self.initial_after:
            return None
        if now >= month_end + self.final_after:
            return FINAL
        return INITIAL if previous_kind is None else RECONCILIATION
