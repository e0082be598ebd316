"""Two ingestions committing overlapping recording hours: the loser of the race recomputes, nothing is lost."""

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from billing_assets.steps import ingest as ingest_step
from billing_assets.tables.schemas import ALL_TABLES
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import r

HOURS = ("2026-03-10-08", "2026-03-10-09")
#: The thread whose first deduplicated_raw commit waits until the other ingestion has committed.
LOSER = "loser"


def readings(hour_index: int) -> list[dict]:
    """Readings for the same 24 recording hours from both ingestion hours, some shared."""
    start = datetime(2026, 3, 9, 8, tzinfo=UTC)
    out = []
    for h in range(24):
        at = (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(r(f"shared-{h}", "m1", at, 1.0))  # the same record from both hours
        out.append(r(f"own-{hour_index}-{h}", f"m{hour_index + 2}", at, 0.5))
    return out


@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.slow)])  # s3: starts a server
@pytest.mark.parametrize("loser", [0, 1], ids=["earlier_hour_commits_last", "later_hour_commits_last"])
def test_the_loser_of_a_commit_race_recomputes_and_nothing_is_lost_or_doubled(
    end_to_end, where, loser, request, tmp_path, spark, monkeypatch, caplog
) -> None:
    on_s3 = request.getfixturevalue("s3_warehouse") if where == "s3" else None
    pipeline = Pipeline(tmp_path, spark, warehouse=on_s3)
    for index, hour in enumerate(HOURS):
        pipeline.land(hour, "a.json", readings(index))
    warehouse = pipeline.resources["warehouse"].get_warehouse()
    for spec in ALL_TABLES:  # as after any first run: the tables exist
        warehouse.open(spec)

    # The race, forced: the loser has read deduplicated_raw (its commit is pinned to that
    # version) and commits only after the winner's whole ingestion committed the same hours.
    winner_done, attempts = threading.Event(), []
    commit = ingest_step.replace_partitions

    def commit_after_the_winner(*args, **kwargs):
        if threading.current_thread().name == LOSER:
            attempts.append(len(attempts) + 1)
            assert winner_done.wait(120), "the winner never finished"
        return commit(*args, **kwargs)

    monkeypatch.setattr(ingest_step, "replace_partitions", commit_after_the_winner)
    landing = pipeline.resources["landing"]
    errors: list[BaseException] = []

    def run(hour: str, done: threading.Event | None) -> None:
        try:
            ingest_step.ingest(spark, warehouse, [hour], landing.list_files(hour), "Europe/London", {})
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            if done is not None:
                done.set()

    caplog.set_level(logging.WARNING, logger="billing_assets.tables.delta_io")
    threads = [
        threading.Thread(
            target=run, args=(hour, None if i == loser else winner_done), name=LOSER if i == loser else f"w{i}"
        )
        for i, hour in enumerate(HOURS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors

    # The loser's first commit was refused and its whole read-compute-commit ran again.
    assert attempts == [1, 2]
    assert any("Delta commit conflict" in rec.getMessage() for rec in caplog.records)
    rows = pipeline.rows("deduplicated_raw", ("record_id",))
    ids = [x["record_id"] for x in rows]
    assert len(ids) == len(set(ids)) == 24 + 48  # shared once, each hour's own records all there
    assert {x["ingestion_hour"] for x in rows if x["record_id"].startswith("shared-")} == {HOURS[0]}  # first arrival
    assert len(pipeline.rows("raw_readings")) == 96
