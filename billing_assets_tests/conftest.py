"""Shared fixtures: one local Spark session for the whole test session, warehouses on tmp_path."""

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
import s3fs
from dagster_deltalake import S3Config
from dagster_deltalake.config import ClientConfig
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from billing_assets import postgres_server
from billing_assets.definitions import ASSETS
from billing_assets.local_processes import free_port, start_s3_server, stop_process_group, wait_for_http
from billing_assets.partitions import range_tags
from billing_assets.postgres_server import PostgresConnection
from billing_assets.resources import build_resources, resolved
from billing_assets.resources.landing import LandingZone
from billing_assets.resources.spark import SparkResource, spark_config, spark_session
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.tables.log_check import log_exists
from billing_assets.tables.schemas import ALL_TABLES, TableSpec, content
from billing_assets.tables.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent


#: Every Spark JVM the tests start (this session, commands in subprocesses, Connect servers),
#: but the README's run command's (``dagster_dev``), reads its defaults here: test-sized data
#: needs no broadcast joins, adaptive plans or code generation (spark_conf/spark-defaults.conf
#: says why). Set before any JVM starts.
os.environ["SPARK_CONF_DIR"] = str(Path(__file__).with_name("spark_conf"))

#: The tests' Spark settings; the pipeline's resource joins the session with them, so its runs
#: do not switch the session back to the production shuffle width (tiny data: one task each).
#: One task thread: each xdist worker has its own JVM, and the machine has two cores. Like every
#: JVM the tests start, the session's uses only the quick compiler (spark-defaults.conf says why).
TEST_SPARK = spark_config("local[1]", shuffle_partitions=1)


#: Fixtures that start a server process: the S3-compatible server (``s3_server``, and
#: ``signing_s3`` in test_process_errors.py), ``scripts/run``'s UI (``dagster_dev``, and
#: ``run_script`` in test_run_script.py), a standalone Spark cluster or Connect server
#: (test_cluster.py), the browser (test_browser.py), PostgreSQL (``postgres``) and
#: ``scripts/run-production`` (``production``, ``production_script`` in test_production.py). A
#: test that uses one, itself or through another fixture (``s3_landing``, ``s3_warehouse``), is ``slow``.
SERVER_FIXTURES = frozenset(
    {
        "s3_server",
        "signing_s3",
        "dagster_dev",
        "run_script",
        "standalone_master",
        "connect_server",
        "browser",
        "postgres",
        "production_script",
    }
)
#: Fixtures that drive the pipeline end to end: ``pipeline`` (a fresh environment a test runs
#: through several assets) and ``end_to_end`` (what a test or module fixture does itself). A
#: test that uses one is ``scenario``.
SCENARIO_FIXTURES = frozenset({"pipeline", "end_to_end"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers from fixtures (above); test files by their share of ``slow`` tests, largest first.

    ``item.fixturenames`` holds every fixture a test uses, those its fixtures use included. A
    parameter that reaches a server (``pytest.param("s3", marks=pytest.mark.slow)``) is the one
    hand-written mark: a fixture fetched with ``request.getfixturevalue`` is not in that list.

    The server test files are the longest: started first, they overlap the rest of the suite
    on the other worker instead of trailing alone at its end (``--no-loadscope-reorder`` in
    pyproject.toml keeps this order; xdist would otherwise start the files with most tests first).
    Files with one S3 test among quick ones follow those that are servers throughout.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if fixtures & SCENARIO_FIXTURES:
            item.add_marker(pytest.mark.scenario)
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    tests = Counter(item.path for item in items)
    items.sort(key=lambda item: -slow[item.path] / tests[item.path])  # stable: collection order otherwise


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The one Spark session; the pipeline's PySparkResource joins it through getOrCreate."""
    session = spark_session(TEST_SPARK)
    yield session
    session.stop()


class Pipeline:
    """A landing zone, warehouse and Dagster instance on tmp_path, driven like the UI would."""

    def __init__(
        self,
        root: Path,
        spark: SparkSession,
        landing: LandingZone | None = None,
        warehouse: WarehouseResource | None = None,
    ) -> None:
        self.landing = root / "landing"
        self.warehouse = root / "warehouse"
        self.landing.mkdir()
        self.spark = spark
        self.instance = dg.DagsterInstance.ephemeral()
        self.source_db = root / "source.db"
        master = TEST_SPARK["spark.master"]
        self.resources = build_resources(str(self.landing), str(self.warehouse), master, str(self.source_db))
        self.resources["spark"] = SparkResource(spark_config=TEST_SPARK)
        if landing is not None:
            self.resources["landing"] = landing
        if warehouse is not None:
            self.resources["warehouse"] = warehouse
        self._resolved: tuple[WarehouseResource, Warehouse] | None = None

    def land(self, hour: str, name: str, content: str | bytes | list[dict]) -> Path:
        """Write one landing file (JSON lines when given a list of dicts)."""
        folder = self.landing / f"ingestion_hour={hour}"
        folder.mkdir(exist_ok=True)
        if isinstance(content, list):
            content = "".join(json.dumps(record) + "\n" for record in content)
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def materialize(
        self, asset: str, partition: str | None = None, last: str | None = None
    ) -> dg.ExecuteInProcessResult:
        """Materialise one partition, or the range ``[partition, last]`` in a single run."""
        kwargs: dict = {"partition_key": partition} if last is None else {"tags": range_tags(partition, last)}
        # A multi-asset runs whole: select every asset it produces.
        [owner] = [a for a in ASSETS if dg.AssetKey(asset) in a.keys]
        result = dg.materialize(
            ASSETS, selection=list(owner.keys), resources=self.resources, instance=self.instance, **kwargs
        )
        assert result.success
        return result

    def rows(self, table: str, sort: tuple[str, ...] | None = None) -> list[dict]:
        """A table's live rows as dicts, in a stable order."""
        data = read_delta(self._readable_warehouse(), table)
        if data is None:
            return []
        keys = sort or tuple(data.column_names)
        return sorted(data.to_pylist(), key=lambda r: tuple("" if r[k] is None else str(r[k]) for k in keys))

    def _readable_warehouse(self) -> Warehouse:
        """The run's warehouse with its credentials resolved, once: a Dagster resource build costs ~60 ms."""
        warehouse = self.resources["warehouse"]
        if self._resolved is None or self._resolved[0] is not warehouse:
            self._resolved = (warehouse, resolved(warehouse))
        return self._resolved[1]

    def snapshot(self) -> dict[str, list[dict]]:
        """Every table's content (for idempotency comparisons), without when a row was made."""
        return {spec.name: [content(row) for row in self.rows(spec.name)] for spec in ALL_TABLES}


def read_delta(warehouse: Warehouse, table: str) -> pa.Table | None:
    """A warehouse table's latest rows (None: no such table), on local disk or S3 alike; ``warehouse`` is resolved."""
    uri, storage = warehouse.uri(TableSpec(table, pa.schema([]), None)), warehouse.storage
    if not log_exists(uri, storage):
        return None
    return DeltaTable(uri, storage_options=storage.delta_options()).to_pyarrow_table()


@pytest.fixture
def pipeline(tmp_path: Path, spark: SparkSession) -> Pipeline:
    """A fresh pipeline environment for a scenario: runs through several assets (``scenario``)."""
    return Pipeline(tmp_path, spark)


@pytest.fixture
def quick_pipeline(tmp_path: Path, spark: SparkSession) -> Pipeline:
    """A fresh pipeline environment for the inner loop: a run or two of one asset, a sensor's evaluation."""
    return Pipeline(tmp_path, spark)


@pytest.fixture(scope="session")
def end_to_end() -> None:
    """Requested by a test, or a module fixture, that drives the pipeline end to end by itself (``scenario``).

    ``process`` or ``bench`` in-process, a ``billing-assets`` command or a JVM of its own in a
    subprocess over a sample, or a whole pipeline built on a ``Pipeline`` it makes. Nothing to
    set up: the name is the tier (see ``SCENARIO_FIXTURES``).
    """


def post_graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """The UI's GraphQL answer to ``query``, errors included (``{"data": ..., "errors": ...}``)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def dagster_dev_env() -> dict[str, str]:
    """Extra environment for ``dagster_dev``; a test module overrides this fixture to change it."""
    return {}


@pytest.fixture
def dagster_dev_sample() -> list[str]:
    """``generate-sample`` arguments for ``dagster_dev``; a test module overrides this fixture to change them."""
    return ["--meterpoints", "4", "--start", "2026-03-28T00", "--hours", "6"]


@pytest.fixture
def dagster_dev(
    tmp_path: Path, dagster_dev_env: dict[str, str], dagster_dev_sample: list[str]
) -> Iterator[tuple[int, dg.DagsterInstance, Path]]:
    """The README's run command (``scripts/run``) on a free port with a small sample on tmp_path, stopped by PID."""
    port = free_port()
    # The README's run command runs with the production Spark settings, not the tests'
    # (spark_conf/): the suite's one whole-pipeline run on the settings users get.
    environ = {key: value for key, value in os.environ.items() if key != "SPARK_CONF_DIR"}
    env = {
        **environ,
        "BILLING_UI_PORT": str(port),
        "BILLING_LANDING_URI": str(tmp_path / "landing"),
        "BILLING_WAREHOUSE_URI": str(tmp_path / "warehouse"),
        "BILLING_SOURCE_DB": str(tmp_path / "source.db"),
        "DAGSTER_HOME": str(tmp_path / "home"),
        **dagster_dev_env,
    }
    subprocess.run(
        [str(ROOT / ".venv/bin/billing-assets"), "generate-sample", *dagster_dev_sample],
        env=env,
        check=True,
        capture_output=True,
    )
    log = open(tmp_path / "dagster-dev.log", "w")
    proc = subprocess.Popen(
        [str(ROOT / "scripts/run")], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", 180, proc)
        yield port, dg.DagsterInstance.from_config(str(tmp_path / "home")), tmp_path
    finally:
        stop_process_group(proc)
        log.close()
    assert proc.poll() is not None


@pytest.fixture(scope="session")
def s3_server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The S3 server's log: one line per request it answered (``S3Requests`` reads it)."""
    return tmp_path_factory.mktemp("s3_server") / "requests.log"


@pytest.fixture(scope="session")
def s3_server(s3_server_log: Path) -> Iterator[str]:
    """A real S3-compatible server process (moto in server mode) on 127.0.0.1."""
    proc = start_s3_server(free_port(), s3_server_log)
    try:
        yield f"http://127.0.0.1:{proc.args[-1]}"
    finally:
        stop_process_group(proc)


def require_postgres() -> None:
    """Skip without PostgreSQL's server programs (Debian: ``apt-get install postgresql``); in CI, fail."""
    try:
        postgres_server.server_binaries()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresConnection]:
    """A real PostgreSQL server process on 127.0.0.1 (run by the ``postgres`` account when the tests run as root)."""
    require_postgres()
    root = Path(tempfile.mkdtemp(prefix="billing-postgres-"))
    root.chmod(0o755)  # the server's account must enter it; pytest's own folders are root's only
    connection = PostgresConnection("127.0.0.1", free_port(), "dagster", secrets.token_urlsafe(16), "postgres")
    proc = postgres_server.start(root / "data", connection, root / "postgres.log")
    try:
        yield connection
    finally:
        postgres_server.stop(proc)
        shutil.rmtree(root, ignore_errors=True)


#: A request line of the server's log: ``"GET /bucket/key?query HTTP/1.1" 200 -``.
_REQUEST = re.compile(r'"([A-Z]+) (/[^ ?"]*)(?:\?[^ "]*)? HTTP/[0-9.]+" (\d{3})')


class S3Requests:
    """The requests the S3 server answers from the moment this is made, as (method, path, status)."""

    def __init__(self, log: Path) -> None:
        self.log, self.start = log, log.stat().st_size

    def since(self) -> list[tuple[str, str, int]]:
        """Every request answered since this was made.

        The server logs a request before it sends the answer (``http.server``'s ``send_response``),
        so every request a client has had its answer to is already in the log.
        """
        with open(self.log, "rb") as log:
            log.seek(self.start)
            text = without_colours(log.read().decode(errors="replace"))
        return [(m[1], m[2], int(m[3])) for m in _REQUEST.finditer(text)]


def without_colours(text: str) -> str:
    """``text`` without terminal colour codes (Dagster's and the S3 server's logs colour their lines)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def s3_landing(s3_server: str) -> LandingZone:
    """An empty bucket on the S3 server, as a landing zone."""
    urllib.request.urlopen(urllib.request.Request(f"{s3_server}/moto-api/reset", method="POST")).close()
    zone = LandingZone(
        uri="s3://landing-bucket/zone", endpoint_url=s3_server, access_key_id="testing", secret_access_key="testing"
    )
    s3fs.S3FileSystem(**zone.storage_options()).mkdir("landing-bucket")
    return zone


@pytest.fixture
def s3_warehouse(s3_server: str, s3_landing: LandingZone) -> WarehouseResource:
    """A warehouse in its own bucket on the same S3 server as ``s3_landing`` (which resets the server)."""
    s3fs.S3FileSystem(**s3_landing.storage_options()).mkdir("warehouse-bucket")
    return WarehouseResource(
        uri="s3://warehouse-bucket/lake",
        storage=S3Config(access_key_id="testing", secret_access_key="testing", region="us-east-1", endpoint=s3_server),
        client=ClientConfig(allow_http=True),
    )


def upload(zone: LandingZone, local_root: Path) -> None:
    """Copy a local landing tree into an S3 landing zone."""
    fs = s3fs.S3FileSystem(**zone.storage_options())
    for path in sorted(local_root.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{zone.uri}/{path.relative_to(local_root).as_posix()}")
