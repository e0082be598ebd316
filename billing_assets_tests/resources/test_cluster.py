"""The same code on a standalone cluster and through Spark Connect writes the tables local mode writes.

Both are started from the jars in the pyspark wheel, on 127.0.0.1, and run ``billing-assets
process`` in a subprocess (this test process already holds a classic local session). Their
Python workers cannot import this project, as on a real cluster where it is not installed, so
the runs also prove that the code executors need travels with the job.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from billing_assets.connect_server import spark_environment, spark_home, start_server
from billing_assets.local_processes import free_port, stop_process_group, wait_for_http
from billing_assets.process import process
from billing_assets.resources import build_resources, resolved
from billing_assets.resources.landing import LandingZone
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.tables.schemas import ALL_TABLES, content
from billing_assets_tests.conftest import read_delta, upload

#: Starts real servers: deselected by the inner loop (-m "not slow").

CLI = str(Path(sys.executable).parent / "billing-assets")
START, END = datetime(2026, 3, 28, 0, tzinfo=UTC), datetime(2026, 3, 28, 2, tzinfo=UTC)
# Imported first by every Python process on its path: drops the editable install's finder.
HIDE_PROJECT = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small landing zone and source database, shared by every run in this module."""
    root = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [CLI, "generate-sample", "--out", str(root / "landing"), "--source-db", str(root / "source.db")]
        + ["--meterpoints", "4", "--start", f"{START:%Y-%m-%dT%H}", "--hours", "2"],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture(scope="module")
def local_tables(sample: Path, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every table after processing the sample in local mode, in this process's session."""
    warehouse = tmp_path_factory.mktemp("local") / "warehouse"
    resources = build_resources(str(sample / "landing"), str(warehouse), "local[2]", str(sample / "source.db"))
    process(START, END, resources, dg.DagsterInstance.ephemeral(), echo=lambda line: None)
    tables = read_tables(warehouse)
    assert tables["raw_readings"] and tables["hourly_usage"] and tables["product_daily_consumption"]
    return tables


@pytest.fixture(scope="module")
def without_project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for Spark daemons whose Python workers cannot import this project."""
    tmp_path = tmp_path_factory.mktemp("daemons")
    folder = tmp_path / "python-without-project"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(HIDE_PROJECT)
    env = {"PYTHONPATH": str(folder)}
    probe = subprocess.run(
        [sys.executable, "-c", "import billing_assets"], env={**os.environ, **env}, cwd=tmp_path, capture_output=True
    )
    assert probe.returncode != 0, "the project is still importable: the test would prove nothing"
    return env


@pytest.fixture(scope="module")
def standalone_master(
    tmp_path_factory: pytest.TempPathFactory, without_project: dict[str, str]
) -> Iterator[tuple[str, int, Path]]:
    """A standalone master and one worker (1 core, 1 GiB), shared by the module's tests.

    Yields the master URL, its web UI port and the worker's working directory.
    """
    tmp_path = tmp_path_factory.mktemp("standalone")
    port, ui_port = free_port(), free_port()
    env = {
        **spark_environment(),
        **without_project,
        # The REST submission port would listen on 6066; nothing here submits through it.
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
    }
    spark_class = str(spark_home() / "bin" / "spark-class")
    commands = [
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
        + ["--webui-port", str(ui_port)],
        [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1"]
        + ["--cores", "1", "--memory", "1g", "--webui-port", str(free_port()), "--work-dir", str(tmp_path / "work")],
    ]
    procs = []
    try:
        for name, command in zip(("master", "worker"), commands, strict=True):
            with open(tmp_path / f"{name}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        wait_for_http(f"http://127.0.0.1:{ui_port}/json/", 120, procs[0])
        deadline = time.monotonic() + 120
        while master_state(ui_port)["aliveworkers"] < 1:
            assert time.monotonic() < deadline, "the worker did not register with the master"
            assert procs[1].poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}", ui_port, tmp_path / "work"
    finally:
        for proc in reversed(procs):
            stop_process_group(proc)


@pytest.fixture
def connect_server(tmp_path: Path, without_project: dict[str, str]) -> Iterator[str]:
    """A Spark Connect server in local mode; yields its ``sc://`` URL."""
    port = free_port()
    proc = start_server(port, tmp_path / "connect.log", master="local[2]", cwd=tmp_path, env=without_project)
    try:
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop_process_group(proc)


def master_state(ui_port: int) -> dict:
    """The standalone master's status page as JSON (workers, running and completed applications)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=10) as response:
        return json.loads(response.read())


def read_tables(warehouse: Path) -> dict[str, list[dict]]:
    """Every Delta table under ``warehouse``: its live rows in a stable order."""
    tables = {}
    for folder in sorted(warehouse.iterdir()):
        tables[folder.name] = sorted_rows(DeltaTable(str(folder)).to_pyarrow_table().to_pylist())
    return tables


def sorted_rows(rows: list[dict]) -> list[dict]:
    rows = [content(row) for row in rows]
    return sorted(rows, key=lambda row: [(value is None, str(value)) for value in row.values()])


def run_process(master: str, sample: Path, work: Path, **settings: str) -> None:
    """Run ``billing-assets process`` over the sample with ``master`` in a subprocess, in ``work``."""
    env = {
        **os.environ,
        "BILLING_SPARK_MASTER": master,
        "BILLING_LANDING_URI": str(sample / "landing"),
        "BILLING_SOURCE_DB": str(sample / "source.db"),
        "BILLING_WAREHOUSE_URI": str(work / "warehouse"),
        "DAGSTER_HOME": str(work / "dagster_home"),
        **settings,
    }
    with open(work / "process.log", "wb") as log:
        proc = subprocess.Popen(
            [CLI, "process", "--start", f"{START:%Y-%m-%dT%H}", "--end", f"{END:%Y-%m-%dT%H}"],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        returncode = proc.wait(timeout=900)
    finally:
        stop_process_group(proc)
    assert returncode == 0, (work / "process.log").read_text()[-5000:]


def process_with(master: str, sample: Path, work: Path) -> dict[str, list[dict]]:
    """Run ``billing-assets process`` over the sample with ``master``; its tables."""
    run_process(master, sample, work)
    return read_tables(work / "warehouse")


def applications(ui_port: int) -> dict[str, str]:
    """Application id -> name, of every application the standalone master has seen."""
    state = master_state(ui_port)
    return {app["id"]: app["name"] for app in state["completedapps"] + state["activeapps"]}


def test_standalone_cluster_with_landing_and_warehouse_on_s3_writes_the_tables_local_mode_writes(
    standalone_master: tuple[str, int, Path],
    sample: Path,
    local_tables: dict,
    tmp_path: Path,
    s3_landing: LandingZone,
    s3_warehouse: WarehouseResource,
) -> None:
    """The worker shares no folder with the driver: its own working directory, every file on S3."""
    master, ui_port, work = standalone_master
    before = applications(ui_port)
    upload(s3_landing, sample / "landing")
    driver = tmp_path / "driver"  # the worker runs in its own folder, the driver here
    driver.mkdir()
    run_process(
        master,
        sample,
        driver,
        BILLING_LANDING_URI=s3_landing.uri,
        BILLING_WAREHOUSE_URI=s3_warehouse.uri,
        BILLING_S3_ENDPOINT_URL=s3_landing.endpoint_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
    )
    warehouse = resolved(s3_warehouse)
    tables = {spec.name: read_delta(warehouse, spec.name) for spec in ALL_TABLES}
    assert {name: sorted_rows(t.to_pylist()) for name, t in tables.items() if t is not None} == local_tables
    assert not (driver / "warehouse").exists() and not list(work.rglob("*.parquet"))
    # The work ran on the cluster: the master saw one more application, this one.
    new = {app: name for app, name in applications(ui_port).items() if app not in before}
    assert list(new.values()) == ["billing_assets"]


def test_spark_connect_writes_the_tables_local_mode_writes(
    connect_server: str, sample: Path, local_tables: dict, tmp_path: Path
) -> None:
    tables = process_with(connect_server, sample, tmp_path)
    assert tables == local_tables
