"""The production shape on one machine: PostgreSQL, a gRPC code server, webserver and daemon, each a process.

``scripts/run-production`` runs this module. Unlike ``scripts/run`` (``dagster dev``: SQLite and
one process group), every part is a separate process with its own log under
``logs/`` beside ``DAGSTER_HOME``, as a deployment across machines would run them:

* PostgreSQL holds the instance's runs, events and schedules (``dagster-production.yaml``). A
  local server is initialised under ``data/production/postgres`` on a free port unless
  ``DAGSTER_PG_HOST`` names an existing one (then ``DAGSTER_PG_*`` give the connection).
* A Spark Connect server that every run joins.
* The code location served by ``dagster code-server`` over gRPC; the webserver and the daemon
  load it through ``$DAGSTER_HOME/workspace.yaml`` (a ``grpc_server`` entry), and runs are
  launched against it.
* ``dagster-webserver`` and ``dagster-daemon``.

A part that exits on its own is started again (as a service manager would), so a killed daemon
or webserver comes back; Ctrl-C or SIGTERM stops every process, the last started first.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from billing_assets import postgres_server
from billing_assets.connect_server import start_server as start_spark_connect
from billing_assets.instance import PROJECT_ROOT
from billing_assets.launch import SampleFailed, dagster_home, entry, prepare
from billing_assets.local_processes import free_port, stop_process_group, wait_for_http, wait_for_port
from billing_assets.postgres_server import PostgresConnection

#: The production instance configuration, copied into a new DAGSTER_HOME as its dagster.yaml.
PRODUCTION_CONFIG = PROJECT_ROOT / "dagster-production.yaml"
DEFAULT_HOME = "data/production/dagster_home"
#: A part that exits on its own within this many seconds of its start is not restarted again:
#: it would only fail again (a wrong setting), so the whole shape stops and says so.
MIN_UPTIME_SECONDS = 30
LOCATION_NAME = "billing_assets"


@dataclass
class Part:
    """One long-running process of the shape, and how to start it again."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str]
    cwd: Path
    #: Returns once the part serves (fails if it exits first); None: serving once started.
    ready: Callable[[subprocess.Popen], None] | None = None
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0

    def start(self) -> None:
        """Start the process in its own process group, output to its log, and wait until it serves."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()
        if self.ready is not None:
            self.ready(self.proc)

    def stop(self) -> None:
        """Stop it and everything it started (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            stop_process_group(self.proc)


def _announce(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def postgres_password(home: Path) -> str:
    """The local server's password: made once, kept in a file only this user reads (never in the instance files)."""
    path = home / "postgres-password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _workspace(home: Path, port: int) -> Path:
    """A workspace file that loads the code location from the gRPC server on ``port``."""
    path = home / "workspace.yaml"
    path.write_text(
        "# Written by scripts/run-production: the code location is served by its own gRPC process.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        "      host: 127.0.0.1\n"
        f"      port: {port}\n"
        f"      location_name: {LOCATION_NAME}\n"
    )
    return path


def _logs(home: Path) -> Path:
    """The parts' logs: beside DAGSTER_HOME, whose logs/ folder Dagster itself manages and empties."""
    return home.parent / "logs"


def _dagster(program: str, *args: str) -> list[str]:
    """A command line of one of Dagster's programs installed beside this interpreter (the project's environment)."""
    return [str(Path(sys.executable).parent / program), *args]


def parts(home: Path, env: dict[str, str], ui_host: str, ui_port: int) -> list[Part]:
    """The code server, webserver and daemon, in start order."""
    logs = _logs(home)
    grpc_port = free_port()
    workspace = _workspace(home, grpc_port)
    code_server = Part(
        "code server",
        _dagster(
            "dagster",
            "code-server",
            "start",
            "-m",
            "billing_assets.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(grpc_port),
            "--location-name",
            LOCATION_NAME,
        ),
        logs / "code-server.log",
        env,
        home,
        ready=lambda proc: wait_for_port(grpc_port, proc, 180),
    )
    webserver = Part(
        "webserver",
        _dagster("dagster-webserver", "-w", str(workspace), "-h", ui_host, "-p", str(ui_port)),
        logs / "webserver.log",
        env,
        home,
        ready=lambda proc: wait_for_http(f"http://{ui_host}:{ui_port}/server_info", 180, proc),
    )
    daemon = Part("daemon", _dagster("dagster-daemon", "run", "-w", str(workspace)), logs / "daemon.log", env, home)
    return [code_server, webserver, daemon]


def run(root: Path) -> int:
    """Start the shape, keep it up until Ctrl-C or SIGTERM, then stop it; the exit code."""
    home = dagster_home(root, DEFAULT_HOME)
    try:
        settings = prepare(root, home, PRODUCTION_CONFIG)
    except SampleFailed as failed:
        return failed.args[0]
    logs = _logs(home)
    logs.mkdir(exist_ok=True)
    env = {**os.environ, **settings.environment(), "DAGSTER_HOME": str(home)}
    started: list = []  # (name, stop) in start order

    def stop_all() -> None:
        for name, stop in reversed(started):
            _announce(f"stopping {name} ...")
            stop()
        started.clear()

    received: list[int] = []

    def interrupted(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    # Set explicitly: a shell starting the script in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    code = 0
    try:
        connection = PostgresConnection.from_environment(env)
        if connection is None:
            data = home.parent / "postgres"
            connection = PostgresConnection("127.0.0.1", free_port(), "dagster", postgres_password(home), "dagster")
            _announce(
                f"starting PostgreSQL on 127.0.0.1:{connection.port} (data: {data}; log: {logs / 'postgres.log'}) ..."
            )
            server = postgres_server.start(data, connection, logs / "postgres.log")
            started.append(("PostgreSQL", lambda: postgres_server.stop(server)))
        else:
            postgres_server.create_database(connection)
        env.update(connection.environment())

        if settings.spark_master is None:
            port = settings.spark_connect_port or free_port()
            _announce(f"starting a Spark Connect server on 127.0.0.1:{port} (log: {logs / 'spark-connect.log'}) ...")
            spark = start_spark_connect(
                port, logs / "spark-connect.log", cwd=home, env=env, log_level=settings.spark_log_level
            )
            started.append(("Spark Connect", lambda: stop_process_group(spark)))
            env.update(replace(settings, spark_master=f"sc://127.0.0.1:{port}").environment())

        shape = parts(home, env, settings.ui_host, settings.ui_port)
        for part in shape:
            _announce(f"starting the {part.name} (log: {part.log}) ...")
            part.start()
            started.append((part.name, part.stop))
        _announce(f"serving on http://{settings.ui_host}:{settings.ui_port} (Ctrl-C stops every process)")
        code = supervise(shape)
    except KeyboardInterrupt:
        code = 128 + (received[0] if received else signal.SIGINT)  # 130 for Ctrl-C, 143 for SIGTERM
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stops below are not cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all()
    return code


def supervise(shape: list[Part], interval: float = 1.0) -> int:
    """Start again each part that exits on its own; give up (exit 1) on one that dies right after its start."""
    while True:
        time.sleep(interval)
        for part in shape:
            code = part.proc.poll() if part.proc is not None else None
            if code is None:
                continue
            if time.monotonic() - part.started < MIN_UPTIME_SECONDS:
                _announce(f"error: the {part.name} exited with {code} right after it started; see {part.log}")
                return 1
            part.restarts += 1
            _announce(f"the {part.name} exited with {code}; starting it again (log: {part.log})")
            part.start()


def main() -> int:
    """Entry point of ``scripts/run-production``, from the repository root."""
    return entry(run)


if __name__ == "__main__":
    sys.exit(main())
