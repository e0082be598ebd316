"""The freshness check's decision, without Spark or Dagster (the Spark checks run in defs/test_checks.py)."""

from datetime import UTC, datetime

from billing_assets.steps.freshness_checks import landing_freshness, newest_complete_hour

NOW = datetime(2026, 3, 10, 10, 5, tzinfo=UTC)


def test_newest_complete_hour_waits_for_h_plus_one_hour_and_five_minutes() -> None:
    # 09 completes only after 10:05:00; 10 has just begun.
    assert newest_complete_hour(["2026-03-10-07", "2026-03-10-09", "2026-03-10-10", "2026-03-10-08"], NOW) == (
        "2026-03-10-08"
    )
    assert newest_complete_hour(["2026-03-10-09"], NOW.replace(second=1)) == "2026-03-10-09"
    assert newest_complete_hour(["2026-03-10-09", "2026-03-10-10"], NOW) is None
    assert newest_complete_hour([], NOW) is None


def test_freshness_passes_with_nothing_to_ingest_or_the_newest_hour_ingested() -> None:
    assert landing_freshness(None, False, NOW) == (True, {"newest_complete_hour": None})
    passed, metadata = landing_freshness("2026-03-10-08", True, NOW)
    assert passed and metadata["minutes_overdue"] == 0


def test_freshness_fails_with_how_late_the_newest_hour_is() -> None:
    passed, metadata = landing_freshness("2026-03-10-08", False, NOW)
    assert not passed
    assert metadata == {
        "newest_complete_hour": "2026-03-10-08",
        "complete_since": "2026-03-10T09:05:00+00:00",
        "ingested": False,
        "minutes_overdue": 60,
    }
