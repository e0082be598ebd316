"""The UI in a real browser: the lineage page shows every asset and edge, and a click materialises a partition.

Drives Debian's ``chromium`` through Playwright against ``scripts/run`` (the README's run
command) with the sensors stopped. The sample, dated up to now like the one ``scripts/run``
writes, is first processed headless (``billing-assets process`` on the same instance), so the
lineage shows materialised assets and no asset has a missing partition where the sample can
hold data; then one partition is materialised by clicking. Saves the README's screenshots to ``artifacts/``: the lineage
page and a ``raw_readings`` materialisation's conservation metadata.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from billing_assets.definitions import defs
from billing_assets.domain.watermark import LATE_DATA_WINDOW
from billing_assets.partitions import ingestion_hours, local_days, recording_hours
from billing_assets_tests.conftest import ROOT
from billing_assets_tests.test_dagster_dev import graphql

#: Starts real servers: deselected by the inner loop (-m "not slow").
pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "artifacts" / "lineage.png"
METADATA_SCREENSHOT = ROOT / "artifacts" / "raw_readings_metadata.png"
GRAPH = "svg[class*=svgContainer]"
START_FILE = "billing_start_date"


@pytest.fixture
def dagster_dev_env() -> dict[str, str]:
    """Sensors stopped: the run this test launches is the only one."""
    return {"BILLING_SENSORS": "stopped"}


@pytest.fixture
def dagster_dev_sample(tmp_path: Path) -> list[str]:
    """A sample up to the latest complete hour, its partitions starting on its first day, as ``scripts/run`` writes it.

    The pictures then show what a new user sees: assets materialised where data exists.
    """
    (tmp_path / "home").mkdir()
    return ["--meterpoints", "4", "--hours", "6", "--start-date-file", str(tmp_path / "home" / START_FILE)]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Debian chromium; missing, it fails the test in CI and skips it elsewhere."""
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} not found: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def to_local(hour: str, partitions_def: dg.TimeWindowPartitionsDefinition) -> str:
    """The key of the local-time partition (recording hour, billing month) holding a UTC hour key."""
    instant = datetime.strptime(hour, "%Y-%m-%d-%H").replace(tzinfo=UTC)
    return partitions_def.get_partition_key_for_timestamp(instant.timestamp())


def shown_as(label: str, key: str) -> bool:
    """Whether a node label is the asset name, or the UI's ``prefix…suffix`` shortening of it."""
    if "…" not in label:
        return label == key
    prefix, suffix = label.split("…")
    return key.startswith(prefix) and key.endswith(suffix)


def sample_hours(root: Path) -> tuple[str, str]:
    """The first and last ingestion hour of the fixture's sample (UTC keys)."""
    hours = sorted(folder.name.split("=", 1)[1] for folder in (root / "landing").iterdir())
    return hours[0], hours[-1]


def sample_ranges(root: Path, load_day: str) -> dict[str, tuple[dg.TimeWindowPartitionsDefinition, str, str]]:
    """Asset name -> its partitions and the first and last of them the processed sample holds data for.

    Readings reach back 7 days before the first ingestion hour (the backlog the sample carries;
    older ones are too late for every ingestion hour of the installation), so the recording
    hours' first day (they start 8 days before it) holds none; the dimensions are loaded on
    ``load_day`` only.
    """
    first_key, last_key = sample_hours(root)
    first, last = (datetime.strptime(key, "%Y-%m-%d-%H").replace(tzinfo=UTC) for key in (first_key, last_key))
    graph = defs().resolve_asset_graph()
    ranges = {}
    for key in graph.get_all_asset_keys():
        name, partitions_def = key.to_user_string(), graph.get(key).partitions_def
        if name.startswith("dim_"):
            ranges[name] = (partitions_def, load_day, load_day)
        else:
            oldest = first if partitions_def == ingestion_hours else first - LATE_DATA_WINDOW
            keys = (partitions_def.get_partition_key_for_timestamp(t.timestamp()) for t in (oldest, last))
            ranges[name] = (partitions_def, *keys)
    return ranges


def missing_in_sample(port: int, root: Path, load_day: str) -> dict[str, dict]:
    """Asset name -> what the UI's GraphQL shows of it, for each asset failed or missing somewhere in the sample."""
    nodes = graphql(
        port,
        "{ assetNodes { assetKey { path } partitionStats { numMaterialized numPartitions numFailed } "
        "assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } } } }",
    )["assetNodes"]
    by_name = {"/".join(node["assetKey"]["path"]): node for node in nodes}
    wrong = {}
    for name, (partitions_def, start, end) in sample_ranges(root, load_day).items():
        node = by_name[name]
        # In time order: recording-hour keys of the autumn clock change do not sort as text.
        at = {key: partitions_def.time_window_for_partition_key(key).start for key in (start, end)}
        covered = any(
            r["status"] == "MATERIALIZED"
            and partitions_def.time_window_for_partition_key(r["startKey"]).start <= at[start]
            and at[end] <= partitions_def.time_window_for_partition_key(r["endKey"]).start
            for r in node["assetPartitionStatuses"]["ranges"]
        )
        if node["partitionStats"]["numFailed"] or not covered:
            wrong[name] = {"sample": (start, end), **node}
    return wrong


def process_sample(root: Path) -> None:
    """Materialise every asset over the fixture's sample, headless, on the UI's instance."""
    first, last = (datetime.strptime(key, "%Y-%m-%d-%H") for key in sample_hours(root))
    env = {
        **os.environ,
        "BILLING_LANDING_URI": str(root / "landing"),
        "BILLING_WAREHOUSE_URI": str(root / "warehouse"),
        "BILLING_SOURCE_DB": str(root / "source.db"),
        "DAGSTER_HOME": str(root / "home"),
        "BILLING_START_DATE": (root / "home" / START_FILE).read_text().strip(),
    }
    end = last + timedelta(hours=1)
    command = [str(ROOT / ".venv/bin/billing-assets"), "process", "--start", f"{first:%Y-%m-%dT%H}"]
    subprocess.run([*command, "--end", f"{end:%Y-%m-%dT%H}"], env=env, check=True, capture_output=True, timeout=900)


def test_lineage_page_and_a_materialisation_launched_by_clicking(dagster_dev, browser) -> None:
    port, instance, root = dagster_dev
    load_day = local_days.get_partition_key_for_timestamp(time.time())  # process loads today's snapshot
    process_sample(root)
    processed = {run.run_id for run in instance.get_runs()}
    # The partition views, as the UI's GraphQL reports them: no asset has a failed partition, nor a
    # missing one where the sample holds data (one green range each).
    assert missing_in_sample(port, root, load_day) == {}
    first = sample_hours(root)[0]
    graph = defs().resolve_asset_graph()
    keys = sorted(key.to_user_string() for key in graph.get_all_asset_keys())
    edges = sum(len(graph.get(key).parent_keys) for key in graph.get_all_asset_keys())
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    # A fresh instance greets its first visitor with a newsletter dialog.
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"), lambda _: page.get_by_role("button", name="Skip").click()
    )

    page.goto(f"http://127.0.0.1:{port}/asset-groups", timeout=60_000)
    page.get_by_text("usage", exact=True).first.wait_for(timeout=120_000)  # the code location has loaded
    page.keyboard.press("Alt+e")  # the UI's "Expand all groups"
    page.get_by_text("raw_readings").first.wait_for()
    page.get_by_role("button", name="Hide navigation").click()
    # Nodes and edges outside the viewport are not rendered: zoom out until the whole graph fits.
    viewport = page.locator(GRAPH).locator("xpath=../..").bounding_box()
    for _ in range(20):
        box = page.locator(GRAPH).bounding_box()
        if box["width"] <= viewport["width"] and box["height"] <= viewport["height"]:
            break
        page.locator("button:has([aria-label=zoom_out])").click()
        page.wait_for_timeout(300)
    labels = page.locator(f"{GRAPH} [class*=assetName]").all_inner_texts()
    matches = {label: [key for key in keys if shown_as(label, key)] for label in labels}
    assert sorted(key for found in matches.values() for key in found) == keys, matches
    assert page.locator(f"{GRAPH} path[marker-end]").count() == edges
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOT)

    # A raw_readings materialisation: what was read, inserted, duplicated, conflicting, quarantined.
    page.goto(f"http://127.0.0.1:{port}/assets/raw_readings?view=events&partition={first}")
    page.get_by_text("records_quarantined").first.wait_for(timeout=60_000)
    page.screenshot(path=METADATA_SCREENSHOT, full_page=True)

    # Asset page -> Materialize -> one partition -> Launch.
    partition = to_local(first, recording_hours)
    page.goto(f"http://127.0.0.1:{port}/assets/hourly_usage")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize hourly_usage")
    # A long partition list opens on its last 90 days; the sample's few days show whole.
    show_all = dialog.get_by_text("Show all partitions")
    if show_all.count():
        show_all.click()
    # The partition selection (its placeholder is an example), not the checkboxes beside it.
    selection = dialog.locator("input:not([type=checkbox])").first
    selection.fill(f'"{partition}"')  # quoted: the selection syntax reads "+" as an operator
    selection.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    dialog.get_by_role("button", name="Launch 1 run").click()

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = [run for run in instance.get_runs() if run.run_id not in processed]
        if runs and runs[0].is_finished:
            break
        time.sleep(2)
    [run] = [run for run in instance.get_runs() if run.run_id not in processed]
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    assert run.tags["dagster/partition"] == partition
    events = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    assert [e.event_log_entry.dagster_event.partition for e in events] == [partition]
    print(f"lineage: {len(labels)} assets, {edges} edges; run {run.run_id} materialised hourly_usage {partition}")
