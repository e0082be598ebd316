"""The README's run command for real: dagster dev with its daemon, sensors and automation.

Starts ``scripts/run`` on a free port with a small sample, checks the code location through
GraphQL, lets the sensor and automation process everything, counts the runs, then launches a
backfill the way the UI does and checks the tables did not change and nothing downstream ran. Stops what it started.
"""

import re
import time

import dagster as dg
from deltalake import DeltaTable

from billing_assets.definitions import defs
from billing_assets.tables.schemas import content
from billing_assets_tests.conftest import post_graphql, without_colours

#: Starts real servers: deselected by the inner loop (-m "not slow").

SAMPLE_HOURS = ("2026-03-28-00", "2026-03-28-05")


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """The answer's data; an answer with errors fails the test."""
    payload = post_graphql(port, query, variables)
    assert "errors" not in payload, payload
    return payload["data"]


def wait_until(condition, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def backfills(port: int) -> dict[str, tuple[str, float | None]]:
    """Backfill id -> (status, end timestamp), as the UI sees them."""
    data = graphql(
        port, "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status endTimestamp } } } }"
    )
    return {b["id"]: (b["status"], b["endTimestamp"]) for b in data["partitionBackfillsOrError"]["results"]}


def backfill_statuses(port: int) -> dict[str, str]:
    """Backfill id -> status."""
    return {backfill: status for backfill, (status, _) in backfills(port).items()}


SENSORS = ("landing_sensor", "usage_automation")


def latest_ticks(port: int, sensor: str) -> list[dict]:
    """The sensor's finished ticks, newest first."""
    data = graphql(
        port,
        'query($name: String!) { sensorOrError(sensorSelector: {repositoryName: "__repository__", '
        'repositoryLocationName: "billing_assets", sensorName: $name}) '
        "{ ... on Sensor { sensorState { ticks(limit: 5) { status timestamp } } } } }",
        {"name": sensor},
    )
    return [t for t in data["sensorOrError"]["sensorState"]["ticks"] if t["status"] != "STARTED"]


def settled(port: int, instance: dg.DagsterInstance) -> bool:
    """Nothing in progress, and every sensor has since looked and found nothing to do.

    A tick that starts after the last run and backfill ended sees every materialisation they
    made; when each sensor's such tick skipped, nothing more will start without new input.
    """
    runs = instance.get_runs()
    if not runs or any(not run.is_finished for run in runs):
        return False
    statuses = backfills(port)
    if any(status == "REQUESTED" for status, _ in statuses.values()):
        return False
    ends = [instance.get_run_record_by_id(run.run_id).update_timestamp.timestamp() for run in runs]
    latest = max(ends + [end for _, end in statuses.values() if end])
    for sensor in SENSORS:
        after = [t for t in latest_ticks(port, sensor) if t["timestamp"] > latest]
        if not after or after[0]["status"] != "SKIPPED":
            return False
    return True


def materialized_ranges(port: int, asset: str) -> list[tuple[str, str]]:
    """The MATERIALIZED ranges of an asset's partitions, as the UI's partition view reads them."""
    data = graphql(
        port,
        "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode { assetPartitionStatuses "
        "{ ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }",
        {"k": {"path": [asset]}},
    )
    ranges = data["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]
    return [(r["startKey"], r["endKey"]) for r in ranges if r["status"] == "MATERIALIZED"]


def runs_by_asset(instance: dg.DagsterInstance) -> dict[str, int]:
    """How many runs materialised each asset."""
    counts: dict[str, int] = {}
    for run in instance.get_runs():
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        for key in {r.event_log_entry.dagster_event.asset_key.to_user_string() for r in records}:
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_dagster_dev_runs_the_whole_pipeline_by_itself(dagster_dev) -> None:
    port, instance, root = dagster_dev
    location = wait_until(
        lambda: next(
            (
                e
                for e in graphql(
                    port,
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                    "locationOrLoadError { __typename } } } } }",
                )["workspaceOrError"]["locationEntries"]
                if e["loadStatus"] == "LOADED"
            ),
            None,
        ),
        120,
        "the code location to load",
    )
    assert (
        location["name"] == "billing_assets" and location["locationOrLoadError"]["__typename"] == "RepositoryLocation"
    )

    assets = graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
    expected = {key.to_user_string() for key in defs().resolve_asset_graph().get_all_asset_keys()}
    assert {"/".join(a["assetKey"]["path"]) for a in assets} == expected
    sensors = graphql(
        port,
        '{ repositoryOrError(repositorySelector: {repositoryName: "__repository__", '
        'repositoryLocationName: "billing_assets"}) '
        "{ ... on Repository { sensors { name sensorState { status } } } } }",
    )["repositoryOrError"]["sensors"]
    assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {
        "landing_sensor": "RUNNING",
        "usage_automation": "RUNNING",
    }

    # Nobody clicks: the sensor ingests the sample, automation does the rest.
    wait_until(
        lambda: instance.get_latest_materialization_event(dg.AssetKey("cumulative_usage")) and settled(port, instance),
        600,
        "the pipeline to settle",
        interval=5,
    )
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
    assert all(status == "COMPLETED_SUCCESS" for status in backfill_statuses(port).values())
    counts = runs_by_asset(instance)
    materialized = instance.get_materialized_partitions(dg.AssetKey("hourly_usage"))
    # Ranges, not one run (and one JVM) per partition.
    assert counts["raw_readings"] == 1 and counts["hourly_usage"] == 1 and counts["cumulative_usage"] == 1, counts
    assert len(materialized) > 6
    print(f"runs by asset: {counts}; hourly_usage partitions: {len(materialized)}")
    # The partition views: no missing partition inside the sample's span (one green range each).
    first, last = SAMPLE_HOURS
    spans = {
        "raw_readings": (first, last),
        "hourly_usage": (f"{first}+0000", f"{last}+0000"),  # the sample's hours are before the clock change
        "cumulative_usage": ("2026-03", "2026-03"),
    }
    for asset, (start, end) in spans.items():
        ranges = materialized_ranges(port, asset)
        assert any(a <= start and end <= b for a, b in ranges), (asset, ranges)

    def tables() -> dict:
        out = {}
        for folder in sorted((root / "warehouse").iterdir()):
            data = DeltaTable(str(folder)).to_pyarrow_table()
            out[folder.name] = sorted(repr(content(row)) for row in data.to_pylist())
        return out

    before = tables()
    launched = graphql(
        port,
        "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
        "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
        {
            "p": {
                "partitionsByAssets": [
                    {
                        "assetKey": {"path": ["raw_readings"]},
                        "partitions": {"range": {"start": SAMPLE_HOURS[0], "end": SAMPLE_HOURS[1]}},
                    }
                ]
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    wait_until(
        lambda: backfill_statuses(port).get(launched["backfillId"]) == "COMPLETED_SUCCESS" and settled(port, instance),
        600,
        "the backfill to finish",
        interval=5,
    )
    assert tables() == before
    # It changed nothing, so it announced nothing: its own run and no downstream one.
    after = runs_by_asset(instance)
    assert {k: n - counts.get(k, 0) for k, n in after.items() if n != counts.get(k, 0)} == {"raw_readings": 1}, after
    assert_quiet_log(root / "dagster-dev.log")
    # Every run joined the script's Spark Connect server: none started a JVM of its own (each
    # JVM start prints this notice once, as the server's own log shows).
    assert "Using incubator modules" in (root / "home" / "spark-connect.log").read_text()
    assert "Using incubator modules" not in (root / "dagster-dev.log").read_text()


#: What a quiet start-up log must not hold: Dagster's per-event DEBUG lines, Python warnings
#: (``path.py:12: BetaWarning: ...``) and Spark's WARN lines (``26/12/04 02:11:38 WARN ...``).
NOISE = {
    "DEBUG line": re.compile(r" - DEBUG - "),
    "Python warning": re.compile(r"\.py:\d+: \w*Warning: "),
    "Spark WARN line": re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN "),
    "Dagster warning": re.compile(r" - dagster - WARNING - "),
    "Spark's default log profile": re.compile(r"Using Spark's default log4j profile|Setting default log level"),
    "misplaced instance configuration": re.compile(r"dagster\.yaml\) in the current folder"),
}


def assert_quiet_log(path) -> None:
    """The ``scripts/run`` log of a whole start-up, backfill included, holds none of ``NOISE``."""
    plain = without_colours(path.read_text())
    found = {what: [line for line in plain.splitlines() if pattern.search(line)][:3] for what, pattern in NOISE.items()}
    assert not any(found.values()), {what: lines for what, lines in found.items() if lines}
