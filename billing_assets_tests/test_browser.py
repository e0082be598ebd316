"""The UI in a real browser: the lineage page shows every asset and edge, and a click materialises a partition.

Drives Debian's ``chromium`` through Playwright against ``scripts/run`` (the README's run
command) with the sensors stopped, so the only run is the one launched by clicking. Saves a
screenshot of the lineage page to ``artifacts/lineage.png``.
"""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from billing_assets.definitions import defs
from billing_assets.partitions import recording_hours
from billing_assets_tests.conftest import ROOT

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


def test_lineage_page_and_a_materialisation_launched_by_clicking(dagster_dev, browser) -> None:
    port, instance, _ = dagster_dev
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

    # Asset page -> Materialize -> one partition -> Launch.
    partition = recording_hours.get_partition_keys()[-2]
    page.goto(f"http://127.0.0.1:{port}/assets/hourly_usage")
    page.get_by_role("button", name="Materialize…").click()
    page.get_by_role("button", name="Confirm").click()  # upstream deduplicated_raw was never materialised
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize hourly_usage")
    selection = dialog.get_by_placeholder("No matching partitions")
    selection.fill(f'"{partition}"')  # quoted: the selection syntax reads "+" as an operator
    selection.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    dialog.get_by_role("button", name="Launch 1 run").click()

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        if runs and runs[0].is_finished:
            break
        time.sleep(2)
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    assert run.tags["dagster/partition"] == partition
    assert instance.get_materialized_partitions(dg.AssetKey("hourly_usage")) == {partition}
    print(f"lineage: {len(labels)} assets, {edges} edges; run {run.run_id} materialised hourly_usage {partition}")
