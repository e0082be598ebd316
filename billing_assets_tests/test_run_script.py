"""``scripts/run``: the UI on 127.0.0.1 unless told otherwise, and a sample whose partitions start on its first day.

The script sets up and hands over to ``python -m billing_assets.launch``, whose command line is checked here.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billing_assets.domain.watermark import latest_complete_hour
from billing_assets.launch import launch_settings, ui_command
from billing_assets.local_processes import free_port, stop_process_group, wait_for_http
from billing_assets_tests.conftest import post_graphql

ROOT = Path(__file__).resolve().parent.parent


def exec_argv(env: dict[str, str]) -> list[str]:
    """The argv of the script's ``dagster dev ...`` command in ``env``, from ``dagster`` on."""
    argv = ui_command(ROOT, launch_settings(ROOT, ROOT / "no-dagster-home", env))
    return argv[argv.index("dagster") :]


def test_run_binds_the_ui_to_loopback_by_default() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"BILLING_UI_HOST", "BILLING_UI_PORT"}}
    argv = exec_argv(env)
    assert argv[:2] == ["dagster", "dev"]
    assert argv[argv.index("-h") + 1] == "127.0.0.1"
    assert argv[argv.index("-p") + 1] == "3000"
    assert not {"0.0.0.0", "::", "--host"} & set(argv)


def test_run_binds_elsewhere_only_when_asked() -> None:
    argv = exec_argv({**os.environ, "BILLING_UI_HOST": "192.0.2.1", "BILLING_UI_PORT": "3999"})
    assert argv[argv.index("-h") + 1 :][:1] == ["192.0.2.1"] and "3999" in argv
    # Absolute: dagster dev starts inside DAGSTER_HOME, where it finds the instance's own dagster.yaml.
    assert argv[:4] == ["dagster", "dev", "-w", str(ROOT / "workspace.yaml")]


def first_partition(port: int, asset: str) -> str | None:
    """The first partition key of ``asset`` as the running UI serves it (None until the code location loads)."""
    query = (
        "query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) "
        "{ ... on AssetNode { partitionKeysByDimension { partitionKeys } } } }"
    )
    node = (post_graphql(port, query, {"path": [asset]}).get("data") or {}).get("assetNodeOrError") or {}
    dimensions = node.get("partitionKeysByDimension")
    return dimensions[0]["partitionKeys"][0] if dimensions else None


@pytest.fixture
def run_script(tmp_path: Path) -> Iterator[int]:
    """``scripts/run`` as it starts by default (no ``BILLING_START_DATE``), sensors stopped, on tmp_path: its port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BILLING_START_DATE"}
    env.update(
        BILLING_UI_PORT=str(port),
        BILLING_LANDING_URI=str(tmp_path / "landing"),
        BILLING_WAREHOUSE_URI=str(tmp_path / "warehouse"),
        BILLING_SOURCE_DB=str(tmp_path / "source.db"),
        BILLING_SENSORS="stopped",
        DAGSTER_HOME=str(tmp_path / "home"),
    )
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen(
            [str(ROOT / "scripts/run")], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/server_info", 180, proc)
            yield port
        finally:
            stop_process_group(proc)


def test_run_writes_a_sample_up_to_now_and_starts_the_partitions_on_its_first_day(
    run_script: int, tmp_path: Path
) -> None:
    deadline = time.monotonic() + 120
    while (first := first_partition(run_script, "raw_readings")) is None and time.monotonic() < deadline:
        time.sleep(1)
    folders = sorted(p.name.removeprefix("ingestion_hour=") for p in (tmp_path / "landing").iterdir())
    assert folders[0].endswith("-00")
    assert datetime.strptime(folders[-1], "%Y-%m-%d-%H").replace(tzinfo=UTC) >= latest_complete_hour(
        datetime.now(UTC)
    ) - timedelta(hours=1)
    assert (tmp_path / "home/billing_start_date").read_text().strip() == folders[0][:10]
    assert first == folders[0]
