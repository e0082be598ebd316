"""Sensor planning on listings: complete hours only, changed file sets again, contiguous ranges."""

import json
from datetime import UTC, datetime

from billing_assets.landing.files import LandingFile
from billing_assets.landing.watch import fingerprint, plan_ingestion
from billing_assets.partitions import MAX_HOURS_PER_RUN

NOW = datetime(2026, 3, 10, 12, 10, tzinfo=UTC)  # 11:00 is not complete until 12:05 has passed


def files(hour: str, *names: str, version: str = "1") -> list[LandingFile]:
    return [LandingFile(hour, f"/x/{hour}/{n}", f"ingestion_hour={hour}/{n}", 10, version) for n in names]


def listing(*hours: str) -> dict[str, list[LandingFile]]:
    return {h: files(h, "a.json") for h in hours}


def test_only_complete_hours_are_requested_and_contiguous_ones_together() -> None:
    plan = plan_ingestion(
        listing("2026-03-10-08", "2026-03-10-09", "2026-03-10-11", "2026-03-10-12"), None, NOW, "2026-01-01-00"
    )
    assert [(r.first, r.last) for r in plan.requests] == [
        ("2026-03-10-08", "2026-03-10-09"),
        ("2026-03-10-11", "2026-03-10-11"),
    ]
    assert plan.waiting == ["2026-03-10-12"]
    at_1205 = plan_ingestion(listing("2026-03-10-11"), None, datetime(2026, 3, 10, 12, 5, tzinfo=UTC), "2026-01-01-00")
    assert at_1205.requests == [] and at_1205.waiting == ["2026-03-10-11"]


def test_nothing_new_is_a_skip_with_reasons() -> None:
    zone = listing("2026-03-10-08", "2026-03-10-12", "2025-12-01-00")
    first = plan_ingestion(zone, None, NOW, "2026-01-01-00")
    again = plan_ingestion(zone, first.cursor, NOW, "2026-01-01-00")
    assert again.requests == []
    reason = again.skip_reason(["ingestion_hour=2026-01-01-00' OR '1'='1"])
    assert (
        "no new or changed files" in reason and "not complete yet" in reason and "before the first partition" in reason
    )
    assert "OR '1'='1" in reason


def test_a_file_arriving_later_in_an_old_folder_requests_that_hour_again() -> None:
    zone = listing("2026-03-10-08", "2026-03-10-09")
    first = plan_ingestion(zone, None, NOW, "2026-01-01-00")
    zone["2026-03-10-08"] = files("2026-03-10-08", "a.json", "late.json")
    second = plan_ingestion(zone, first.cursor, NOW, "2026-01-01-00")
    assert [(r.first, r.last) for r in second.requests] == [("2026-03-10-08", "2026-03-10-08")]
    assert second.requests[0].run_key != first.requests[0].run_key
    zone["2026-03-10-09"] = files("2026-03-10-09", "a.json", version="2")  # re-written in place
    third = plan_ingestion(zone, second.cursor, NOW, "2026-01-01-00")
    assert [(r.first, r.last) for r in third.requests] == [("2026-03-10-09", "2026-03-10-09")]


def test_run_keys_are_stable_for_the_same_files_and_ranges_are_capped() -> None:
    hours = [f"2026-03-0{d}-{h:02d}" for d in range(1, 9) for h in range(24)]
    a = plan_ingestion(listing(*hours), None, NOW, "2026-01-01-00")
    b = plan_ingestion(listing(*hours), None, NOW, "2026-01-01-00")
    assert [r.run_key for r in a.requests] == [r.run_key for r in b.requests]
    assert [(r.first, r.last) for r in a.requests] == [
        ("2026-03-01-00", "2026-03-07-23"),
        ("2026-03-08-00", "2026-03-08-23"),
    ]
    assert MAX_HOURS_PER_RUN == 168


def test_cursor_forgets_folders_that_disappeared() -> None:
    first = plan_ingestion(listing("2026-03-10-08", "2026-03-10-09"), None, NOW, "2026-01-01-00")
    second = plan_ingestion(listing("2026-03-10-09"), first.cursor, NOW, "2026-01-01-00")
    assert json.loads(second.cursor) == {"2026-03-10-09": fingerprint(files("2026-03-10-09", "a.json"))}
