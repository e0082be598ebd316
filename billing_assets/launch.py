"""``python -m billing_assets.launch``: the README's run command (``scripts/run``) once the set-up is done.

From the repository root (``scripts/run`` starts it there): writes a sample landing zone when
the configured one is local and empty, gives ``DAGSTER_HOME`` the project's instance
configuration, and starts ``dagster dev`` beside a local Spark Connect server that the UI's
runs join. ``dagster dev`` runs inside ``DAGSTER_HOME``, so the settings' local paths are made
absolute first and handed to it, with everything else it needs, in its environment.

Ctrl-C or SIGTERM stops the UI, then the Connect server; the exit code is then 130 or 143.
"""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from billing_assets.connect_server import start_server, stop_server
from billing_assets.local_processes import free_port
from billing_assets.settings import DEFAULT_START_DATE, Settings, SettingsError, load_settings

#: ``DAGSTER_HOME`` unless the environment names one (relative to the repository root).
DEFAULT_DAGSTER_HOME = "data/dagster_home"
#: In ``DAGSTER_HOME``: the first day of the sample this command wrote, the partitions' start.
START_DATE_FILE = "billing_start_date"
#: ``dagster dev`` is superseded by ``dg dev``, a separate CLI this project does not install: its
#: warning is silenced for this one process (child processes keep their own warning filters).
DEV_WARNING = "ignore:Function `dev_command` is superseded:FutureWarning"


class Signalled(BaseException):
    """SIGINT or SIGTERM arrived while the Connect server was starting."""


def absolute(value: str, root: Path) -> str:
    """A local path relative to ``root`` made absolute; a URI (``s3://...``) or an absolute path as it is."""
    return value if "://" in value or value.startswith("/") else f"{root}/{value}"


def launch_settings(root: Path, home: Path, environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings ``dagster dev`` gets: local paths absolute, the sample's first day unless a start date is set."""
    start_file = home / START_DATE_FILE
    written = start_file.read_text().strip() if start_file.is_file() else ""
    settings = load_settings(environ, start_date_default=written or DEFAULT_START_DATE)
    return replace(
        settings,
        landing_uri=absolute(settings.landing_uri, root),
        warehouse_uri=absolute(settings.warehouse_uri, root),
        source_db=absolute(settings.source_db, root),
    )


def ui_command(root: Path, settings: Settings) -> list[str]:
    """The ``dagster dev`` command line: this project's workspace, served where the settings say."""
    return [
        sys.executable,
        *("-W", DEV_WARNING),
        *("-m", "dagster", "dev", "-w", str(root / "workspace.yaml")),
        *("-h", settings.ui_host, "-p", str(settings.ui_port)),
    ]


def _is_empty(folder: Path) -> bool:
    """Whether nothing is at ``folder``, or it is a folder with nothing in it."""
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _write_sample(settings: Settings, start_file: Path) -> int:
    """``billing-assets generate-sample`` into the settings' landing zone and source database.

    The sample's first day goes to ``start_file``.
    """
    from billing_assets.cli import main as command

    arguments = ["generate-sample", "--out", settings.landing_uri, "--source-db", settings.source_db]
    return command([*arguments, "--start-date-file", str(start_file)])


def _exit_code(returncode: int) -> int:
    """A child's exit status as a shell reports it (128 + the signal that ended it)."""
    return 128 - returncode if returncode < 0 else returncode


class SampleFailed(RuntimeError):
    """``generate-sample`` could not write the sample (its exit code is ``args[0]``)."""


def prepare(root: Path, home: Path, instance_config: Path) -> Settings:
    """Give ``home`` the instance configuration and an empty local landing zone the sample; the settings to serve with.

    Shared by ``scripts/run`` (``dagster.yaml``) and ``scripts/run-production`` (``dagster-production.yaml``).
    """
    home.mkdir(parents=True, exist_ok=True)
    # The project's instance configuration, for a new instance; an existing one keeps its own.
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(instance_config, home / "dagster.yaml")

    # The sample ends at the latest complete hour; the partitions start on its first day, so the
    # UI's partition views are green where data exists. An explicit start date wins.
    settings = launch_settings(root, home)
    if not settings.landing_uri.startswith("s3://") and _is_empty(Path(settings.landing_uri)):
        code = _write_sample(settings, home / START_DATE_FILE)
        if code:
            raise SampleFailed(code)
        settings = launch_settings(root, home)
    return settings


def dagster_home(root: Path, default: str = DEFAULT_DAGSTER_HOME) -> Path:
    """``DAGSTER_HOME`` from the environment, else ``default``; relative to ``root``, made absolute."""
    return Path(absolute(os.environ.get("DAGSTER_HOME") or default, root))


def run(root: Path) -> int:
    """Prepare the instance and the sample, then serve the UI until it stops; the exit code."""
    home = dagster_home(root)
    try:
        settings = prepare(root, home, root / "dagster.yaml")
    except SampleFailed as failed:
        return failed.args[0]

    # It starts in DAGSTER_HOME: started in the project root, it would warn that the dagster.yaml
    # there is not the instance's (DAGSTER_HOME has its own copy).
    environment = {**os.environ, **settings.environment(), "DAGSTER_HOME": str(home)}
    sys.stdout.flush()
    sys.stderr.flush()
    if not settings.spark_connect or settings.spark_master:
        # Each run starts its own Spark (spark_connect off), or joins the master given.
        os.chdir(home)
        os.execve(sys.executable, ui_command(root, settings), environment)
    return serve_with_connect(root, home, settings, environment)


def serve_with_connect(root: Path, home: Path, settings: Settings, environment: dict[str, str]) -> int:
    """Serve the UI, its runs joining a Spark Connect server started for them; the exit code.

    Runs launched by the UI join one warm server instead of each starting a JVM (late data
    reaches every table in a third of the time). On a free port unless the settings name one.
    """
    port = settings.spark_connect_port or free_port()
    log = home / "spark-connect.log"
    print(f"starting a Spark Connect server on 127.0.0.1:{port} (log: {log}) ...", file=sys.stderr, flush=True)
    received: list[int] = []
    starting = True

    def on_signal(signum: int, frame: object) -> None:
        # While the server starts, a signal ends the start (start_server stops what it started).
        # Then it ends nothing by itself: the UI gets Ctrl-C (and a process group's SIGTERM) too
        # and shuts down; once it has, the server stops and the exit code tells why.
        received.append(signum)
        if starting:
            raise Signalled(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server, code = None, 1
    try:
        try:
            server = start_server(port, log, cwd=root, env=environment, log_level=settings.spark_log_level)
        except (RuntimeError, TimeoutError) as exc:
            print(f"error: Spark Connect server: {exc}; see {log}", file=sys.stderr)
            return 1
        starting = False
        joined = replace(settings, spark_master=f"sc://127.0.0.1:{port}")
        ui = subprocess.Popen(ui_command(root, joined), cwd=home, env={**environment, **joined.environment()})
        code = _exit_code(ui.wait())
    except Signalled:
        pass  # the exit code is the signal's
    finally:
        starting = False
        if server is not None:
            stop_server(server.pid)
    return 128 + received[0] if received else code


def entry(start: Callable[[Path], int]) -> int:
    """``start(repository root)``'s exit code; a bad setting is one ``error:`` line and 2, Ctrl-C 130."""
    try:
        return start(Path.cwd())
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def main() -> int:
    """Entry point of ``scripts/run``, from the repository root."""
    return entry(run)


if __name__ == "__main__":
    sys.exit(main())
