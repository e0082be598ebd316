"""The UI in a real browser: the lineage page shows every asset and edge, and a click materialises a partition.

Drives Debian's ``chromium`` through Playwright against ``scripts/run`` (the README's run
command) with the sensors stopped. The sample is first processed headless (``billing-assets
process`` on the same instance), so the lineage shows materialised assets; then one partition
is materialised by clicking. Saves the README's screenshots to ``artifacts/``: the lineage
page and a ``raw_readings`` materialisation's conservation metadata.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from billing_assets.definitions import defs
from billing_assets.partitions import recording_hours
from billing_assets_tests.conftest import ROOT

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


@pytest.fixture
def dagster_dev_env() -> dict[str, str]:
    """Sensors stopped: the run this test launches is the only one."""
    return {"BILLING_SENSORS": "stopped"}


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


def shown_as(label: str, key: str) -> bool:
    """Whether a node label is the asset name, or the UI's ``prefix…suffix`` shortening of it."""
    if "…" not in label:
        return label == key
    prefix, suffix = label.split("…")
    return key.startswith(prefix) and key.endswith(suffix)


def process_sample(root: Path) -> None:
    """Materialise every asset over the fixture's sample, headless, on the UI's instance."""
    env = {
        **os.environ,
        "BILLING_LANDING_URI": str(root / "landing"),
        "BILLING_WAREHOUSE_URI": str(root / "warehouse"),
        "BILLING_SOURCE_DB": str(root / "source.db"),
        "DAGSTER_HOME": str(root / "home"),
    }
    command = [str(ROOT / ".venv/bin/billing-assets"), "process", "--start", "2026-03-28T00", "--end", "2026-03-28T06"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)


def test_lineage_page_and_a_materialisation_launched_by_clicking(dagster_dev, browser) -> None:
    port, instance, root = dagster_dev
    process_sample(root)
    processed = {run.run_id for run in instance.get_runs()}
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
    page.goto(f"http://127.0.0.1:{port}/assets/raw_readings?view=events&partition=2026-03-28-02")
    page.get_by_text("records_quarantined").first.wait_for(timeout=60_000)
    page.screenshot(path=METADATA_SCREENSHOT, full_page=True)

    # Asset page -> Materialize -> one partition -> Launch.
    partition = recording_hours.get_partition_key_for_timestamp(datetime(2026, 3, 28, 2, tzinfo=UTC).timestamp())
    page.goto(f"http://127.0.0.1:{port}/assets/hourly_usage")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize hourly_usage")
    # The fixture's sample is dated March; the dialog opens on the last 90 days.
    dialog.get_by_text("Show all partitions").click()
    selection = dialog.locator("input").first  # the partition selection; its placeholder is an example
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
