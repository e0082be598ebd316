"""The production shape for real: a PostgreSQL instance; daemon, webserver and code server as processes of their own.

``scripts/run-production`` runs against the suite's own PostgreSQL server (the path of a user who
already has one). Nobody clicks: the landing sensor and the automation process the sample; then
late data, two runs writing one table at once, the daemon killed mid-run and the webserver
restarted, each followed by a check that every table equals a clean ``process`` run's and that
the UI tells the truth. Last, the password is looked for everywhere the instance writes. A
separate test starts the script with its own PostgreSQL and stops everything with one Ctrl-C.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import dagster as dg
import psutil
import pytest
from deltalake import DeltaTable

from billing_assets.local_processes import free_port, stop_process_group, wait_for_http
from billing_assets.postgres_server import PostgresConnection, create_database
from billing_assets.tables.schemas import content
from billing_assets_tests.conftest import ROOT, require_postgres
from billing_assets_tests.test_dagster_dev import backfill_statuses, graphql, settled, wait_until

SAMPLE = ["--meterpoints", "4", "--start", "2026-03-28T00", "--hours", "6"]
SAMPLE_HOURS = ("2026-03-28-00", "2026-03-28-05")
#: The processes the script starts, by a word of their command lines.
PARTS = {"code server": "code-server", "webserver": "dagster-webserver", "daemon": "dagster-daemon"}


@dataclass
class Production:
    """The running script: its process, the UI port, the instance and where its files are."""

    proc: subprocess.Popen
    port: int
    instance: dg.DagsterInstance
    root: Path
    env: dict[str, str]
    log: Path

    def part(self, name: str) -> psutil.Process:
        """The live process of one part (code server, webserver, daemon) of this script."""
        word = PARTS[name]
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if any(word in arg for arg in child.cmdline()[:3]):
                    return child
            except psutil.NoSuchProcess:
                continue
        raise LookupError(f"no {name} process under the script")


def _environment(root: Path, extra: dict[str, str]) -> dict[str, str]:
    """The script's environment: everything under ``root``, a free UI port, the production Spark settings."""
    # Only what ``extra`` names reaches the script: a DAGSTER_PG_* of this process would point it at another server.
    environ = {
        key: value for key, value in os.environ.items() if key != "SPARK_CONF_DIR" and not key.startswith("DAGSTER_PG_")
    }
    return {
        **environ,
        "BILLING_UI_PORT": str(free_port()),
        "BILLING_LANDING_URI": str(root / "landing"),
        "BILLING_WAREHOUSE_URI": str(root / "warehouse"),
        "BILLING_SOURCE_DB": str(root / "source.db"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        **extra,
    }


def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    subprocess.run(
        [str(ROOT / ".venv/bin/billing-assets"), "generate-sample", *SAMPLE, "--out", env["BILLING_LANDING_URI"]],
        env=env,
        check=True,
        capture_output=True,
    )
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(ROOT / "scripts/run-production")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    """The script's instance, as this process sees it (the PostgreSQL connection from the environment)."""
    # The storage reads its connection from the environment once, when the instance is made.
    with mock.patch.dict(os.environ, {name: value for name, value in env.items() if name.startswith("DAGSTER_PG_")}):
        return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


@pytest.fixture(scope="module")
def production(postgres: PostgresConnection) -> Iterator[Production]:
    """``scripts/run-production`` on the suite's PostgreSQL server (a database of its own), on a free port."""
    root = Path(tempfile.mkdtemp(prefix="billing-production-"))
    connection = PostgresConnection(postgres.host, postgres.port, postgres.user, postgres.password, "production")
    create_database(connection)
    env = _environment(root, connection.environment())
    log = root / "run-production.log"
    proc = _start(env, log)
    try:
        wait_for_http(f"http://127.0.0.1:{env['BILLING_UI_PORT']}/server_info", 300, proc)
        yield Production(proc, int(env["BILLING_UI_PORT"]), _instance(env), root, env, log)
    finally:
        stop_process_group(proc)


def tables(warehouse: Path) -> dict[str, list[str]]:
    """Every table's rows, sorted, by table name."""
    return {
        folder.name: sorted(repr(content(row)) for row in DeltaTable(str(folder)).to_pyarrow_table().to_pylist())
        for folder in sorted(warehouse.iterdir())
    }


def clean_run(production: Production, tmp_path: Path) -> dict[str, list[str]]:
    """The tables of one ``process`` over a copy of the landing zone, on a fresh SQLite instance."""
    env = {
        **production.env,
        "BILLING_WAREHOUSE_URI": str(tmp_path / "warehouse"),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "BILLING_SPARK_MASTER": "local[2]",
    }
    for name in [n for n in env if n.startswith("DAGSTER_PG_")]:
        del env[name]
    done = subprocess.run(
        [str(ROOT / ".venv/bin/billing-assets"), "process", "--start", "2026-03-21T00", "--end", "2026-03-29T00"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return tables(tmp_path / "warehouse")


def failed_runs(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Run id -> what its failure events say, for every run that did not succeed."""
    failed = {}
    for run in instance.get_runs():
        if run.status != dg.DagsterRunStatus.SUCCESS:
            events = instance.all_logs(run.run_id)
            failed[run.run_id] = (
                [run.status.value]
                + [event.message or "" for event in events if event.dagster_event and event.dagster_event.is_failure]
                + [event.message or "" for event in events if event.level >= 40]
            )
    return failed


def wait_settled(production: Production, timeout: float = 900) -> None:
    """Until nothing runs and both sensors have since looked and found nothing to do."""
    wait_until(lambda: settled(production.port, production.instance), timeout, "the pipeline to settle", interval=5)


def launch_backfill(port: int, asset: str, first: str, last: str) -> str:
    """A backfill of ``asset`` over [first, last] launched the way the UI does; its id."""
    launched = graphql(
        port,
        "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
        "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
        {
            "p": {
                "partitionsByAssets": [
                    {"assetKey": {"path": [asset]}, "partitions": {"range": {"start": first, "end": last}}}
                ]
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def land_late_reading(landing: Path) -> None:
    """A reading of 02:00 arriving in the 06:00 ingestion hour (four hours late, inside the window)."""
    folder = landing / "ingestion_hour=2026-03-28-06"
    folder.mkdir()
    first = next((landing / "ingestion_hour=2026-03-28-00").glob("*.json")).read_text()
    record = json.loads(first.splitlines()[0]) if first.lstrip().startswith('{"record') else None
    meterpoint = record["meterpoint_id"] if record else json.loads(first)["data"][0][-1]
    (folder / "late.json").write_text(
        json.dumps(
            {
                "record_id": "late-0001",
                "meterpoint_id": meterpoint,
                "interval_start": "2026-03-28T02:00:00Z",
                "consumption": 0.5,
            }
        )
        + "\n"
    )


def no_claimed_slots(instance: dg.DagsterInstance) -> bool:
    """No pool holds a slot for any run."""
    storage = instance.event_log_storage
    return all(not storage.get_concurrency_info(pool).claimed_slots for pool in storage.get_concurrency_keys())


def test_the_sample_runs_by_itself_with_the_daemon_on_its_own_and_late_data_reaches_every_table(
    production: Production, tmp_path: Path
) -> None:
    assert type(production.instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(production.instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(production.instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    pids = {name: production.part(name).pid for name in PARTS}
    assert len(set(pids.values())) == len(PARTS), pids  # three processes, none inside another's

    wait_until(
        lambda: production.instance.get_latest_materialization_event(dg.AssetKey("cumulative_usage")),
        900,
        "cumulative_usage",
        interval=5,
    )
    wait_settled(production)
    runs = production.instance.get_runs()
    assert runs and not failed_runs(production.instance), failed_runs(production.instance)
    # Launched against the gRPC code server, not a location the webserver or daemon loaded itself.
    origins = {type(run.remote_job_origin.repository_origin.code_location_origin).__name__ for run in runs}
    assert origins == {"GrpcServerCodeLocationOrigin"}, origins

    land_late_reading(Path(production.env["BILLING_LANDING_URI"]))
    wait_until(
        lambda: any(
            run.tags.get("dagster/asset_partition_range_start", run.tags.get("dagster/partition")) == "2026-03-28-06"
            for run in production.instance.get_runs()
        ),
        300,
        "the landing sensor to pick up the late file",
        interval=5,
    )
    wait_settled(production)
    assert not failed_runs(production.instance), failed_runs(production.instance)
    assert tables(Path(production.env["BILLING_WAREHOUSE_URI"])) == clean_run(production, tmp_path)


def test_two_runs_writing_one_table_at_once_both_succeed_and_change_nothing(production: Production) -> None:
    before = tables(Path(production.env["BILLING_WAREHOUSE_URI"]))
    first = launch_backfill(production.port, "raw_readings", *SAMPLE_HOURS)
    second = launch_backfill(production.port, "raw_readings", *SAMPLE_HOURS)
    wait_until(
        lambda: {backfill_statuses(production.port).get(b) for b in (first, second)} == {"COMPLETED_SUCCESS"},
        600,
        "both backfills",
        interval=5,
    )
    wait_settled(production)
    assert not failed_runs(production.instance), failed_runs(production.instance)
    assert no_claimed_slots(production.instance)
    assert tables(Path(production.env["BILLING_WAREHOUSE_URI"])) == before


def test_the_daemon_killed_mid_run_comes_back_and_the_tables_end_as_a_clean_run(production: Production) -> None:
    before = tables(Path(production.env["BILLING_WAREHOUSE_URI"]))
    known = {run.run_id for run in production.instance.get_runs()}
    launch_backfill(production.port, "raw_readings", SAMPLE_HOURS[0], "2026-03-28-06")
    new_run = wait_until(
        lambda: next(
            (
                run
                for run in production.instance.get_runs()
                if run.run_id not in known and run.status == dg.DagsterRunStatus.STARTED
            ),
            None,
        ),
        300,
        "a run of the backfill to start",
        interval=0.5,
    )
    daemon = production.part("daemon")
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(30)
    # The script starts the daemon again, as a service manager would.
    wait_until(lambda: _alive_part(production, "daemon", daemon.pid), 120, "the daemon to be started again")
    wait_settled(production)
    run = production.instance.get_run_by_id(new_run.run_id)
    assert run.is_finished, run.status  # finished by itself or marked failed by run monitoring: never stuck
    assert no_claimed_slots(production.instance)
    assert tables(Path(production.env["BILLING_WAREHOUSE_URI"])) == before
    assert "the daemon exited with -9; starting it again" in production.log.read_text()


def _alive_part(production: Production, name: str, old_pid: int) -> bool:
    try:
        return production.part(name).pid != old_pid
    except LookupError:
        return False


def test_the_webserver_restarted_while_runs_go_on_shows_the_truth_afterwards(production: Production) -> None:
    backfill = launch_backfill(production.port, "hourly_usage", f"{SAMPLE_HOURS[0]}+0000", f"{SAMPLE_HOURS[1]}+0000")
    webserver = production.part("webserver")
    webserver.send_signal(signal.SIGKILL)
    webserver.wait(30)
    wait_until(lambda: _alive_part(production, "webserver", webserver.pid), 120, "the webserver to be started again")
    wait_for_http(f"http://127.0.0.1:{production.port}/server_info", 180)
    wait_until(
        lambda: backfill_statuses(production.port).get(backfill) == "COMPLETED_SUCCESS", 600, "the backfill", interval=5
    )
    wait_settled(production)
    shown = graphql(production.port, "{ runsOrError { ... on Runs { results { runId status } } } }")
    ui = {r["runId"]: r["status"] for r in shown["runsOrError"]["results"]}
    assert ui == {run.run_id: run.status.value for run in production.instance.get_runs()}
    for asset in ("raw_readings", "hourly_usage", "cumulative_usage"):
        node = graphql(
            production.port,
            "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode "
            "{ assetMaterializations(limit: 1) { runId } } } }",
            {"k": {"path": [asset]}},
        )["assetNodeOrError"]["assetMaterializations"]
        latest = production.instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert node[0]["runId"] == latest.run_id


def test_the_postgres_password_is_in_no_log_record_or_ui_answer(production: Production) -> None:
    import psycopg2

    password = production.env["DAGSTER_PG_PASSWORD"]
    for path in production.root.rglob("*"):
        if path.is_file() and "warehouse" not in path.parts:
            assert password.encode() not in path.read_bytes(), path
    conn = psycopg2.connect(
        host=production.env["DAGSTER_PG_HOST"],
        port=production.env["DAGSTER_PG_PORT"],
        user=production.env["DAGSTER_PG_USER"],
        password=password,
        dbname=production.env["DAGSTER_PG_DB"],
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            names = [row[0] for row in cursor.fetchall()]
            assert "runs" in names and "event_logs" in names
            for name in names:
                cursor.execute(f'SELECT count(*) FROM "{name}" t WHERE t::text LIKE %s', (f"%{password}%",))
                assert cursor.fetchone()[0] == 0, name
    finally:
        conn.close()
    info = graphql(production.port, "{ instance { info } }")["instance"]["info"]
    assert "PostgresRunStorage" in info and password not in info


@pytest.fixture
def production_script() -> Iterator[tuple[subprocess.Popen, dict[str, str], Path, Path]]:
    """``scripts/run-production`` with nothing given: it starts its own PostgreSQL (stopped by PID at the end)."""
    require_postgres()
    root = Path(tempfile.mkdtemp(prefix="billing-production-"))
    root.chmod(0o755)  # the postgres account (the server's, when the tests run as root) must enter it
    env = _environment(root, {})
    log = root / "run-production.log"
    proc = _start(env, log)
    try:
        yield proc, env, root, log
    finally:
        stop_process_group(proc)


def test_the_script_brings_up_its_own_postgres_and_one_ctrl_c_stops_every_process(production_script) -> None:
    proc, env, root, log = production_script
    wait_until(lambda: "serving on" in log.read_text(), 300, "every part to start", interval=1)
    tree = live_tree(proc.pid)
    started, names = list(tree), " ".join(tree.values())
    for word in ("postgres", "SparkConnectServer", *PARTS.values()):
        assert word in names, (word, names)
    assert (root / "postgres" / "PG_VERSION").exists()
    instance = _instance({**env, **_script_connection(root, log)})
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    began = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)  # what one Ctrl-C in the terminal sends the script
    assert proc.wait(120) == 130
    stopped = time.monotonic() - began
    assert not set(started) & set(_live(started)), "processes left running"
    print(f"one Ctrl-C stopped {len(started)} processes in {stopped:.1f} s")


def live_tree(pid: int) -> dict[int, str]:
    """PID -> its command line, for ``pid`` and every live descendant (zombies left out)."""
    return _live([pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))])


def _live(pids: list[int]) -> dict[int, str]:
    found = {}
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                found[pid] = " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def _script_connection(root: Path, log: Path) -> dict[str, str]:
    """The ``DAGSTER_PG_*`` of the server the script started (its port from the log, its password file)."""
    import re

    port = re.search(r"starting PostgreSQL on 127\.0\.0\.1:(\d+)", log.read_text()).group(1)
    password = (root / "dagster_home" / "postgres-password").read_text().strip()
    return PostgresConnection("127.0.0.1", int(port), "dagster", password, "dagster").environment()
