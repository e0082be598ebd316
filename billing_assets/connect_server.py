"""A long-lived local Spark Connect server, started from the jars in the pyspark wheel.

Every run the UI launches is a new process; with ``BILLING_SPARK_MASTER=sc://...`` it joins this
warm server (a session in 1–2 s) instead of starting its own driver JVM (6–10 s). The wheel ships
the server jar but no start script, hence this module: ``scripts/spark-connect start PORT``
prints the server's PID once the port accepts connections, ``scripts/spark-connect stop PID``
stops it. The server runs in its own process group, so stopping it also ends its Python workers.
"""

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pyspark

from billing_assets.local_processes import free_port, listening, stop_process_group, wait_for_port
from billing_assets.settings import DEFAULT_SPARK_LOG_LEVEL, SettingsError, load_settings, spark_log_environment

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def spark_home() -> Path:
    """The installed pyspark package folder: a complete ``SPARK_HOME`` (bin/ and jars/)."""
    return Path(pyspark.__file__).resolve().parent


def spark_environment(log_level: str = DEFAULT_SPARK_LOG_LEVEL) -> dict[str, str]:
    """Environment for Spark daemons started from the wheel, on 127.0.0.1 with this interpreter's Python workers.

    Their own log is at ``log_level``.
    """
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        # Without it Spark binds to whichever interface it finds first.
        "SPARK_LOCAL_IP": "127.0.0.1",
        # Python workers need pyarrow and pandas: this interpreter has them.
        "PYSPARK_PYTHON": sys.executable,
        **spark_log_environment(log_level, os.environ),
    }


def server_command(port: int, master: str = "local[*]") -> list[str]:
    """The ``spark-submit`` command line of a Connect server listening on 127.0.0.1:``port``."""
    settings = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        # The web UI would listen on every interface; nothing here needs it.
        "spark.ui.enabled": "false",
    }
    command = [str(spark_home() / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--master", master]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    return command


def start_server(
    port: int,
    log: Path,
    master: str = "local[*]",
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    log_level: str = DEFAULT_SPARK_LOG_LEVEL,
) -> subprocess.Popen:
    """Start a Connect server in its own process group and wait until it listens; output goes to ``log``.

    ``env`` adds variables to the server's environment (its Python workers inherit them);
    ``log_level`` is the level of Spark's own log there.
    """
    if listening(port):
        # Waiting for the port would "succeed" at once and point every run at whatever that is.
        raise RuntimeError(f"127.0.0.1:{port} is already in use (set BILLING_SPARK_CONNECT_PORT to a free port)")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            server_command(port, master),
            env={**spark_environment(log_level), **(env or {})},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, proc, timeout)
    except BaseException:
        stop_server(proc.pid)
        raise
    return proc


def stop_server(pid: int, timeout: float = 20) -> None:
    """Stop the server whose process group ``pid`` leads (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
    stop_process_group(pid, timeout)


def main(argv: list[str] | None = None) -> int:
    """``start PORT [--log FILE] [--master M]`` (prints the PID), ``stop PID`` or ``free-port``."""
    parser = argparse.ArgumentParser(prog="spark-connect", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a server on 127.0.0.1:PORT and print its PID once it listens")
    start.add_argument("port", type=int)
    start.add_argument("--log", type=Path, default=Path("spark-connect.log"))
    start.add_argument("--master", default="local[*]")
    stop = commands.add_parser("stop", help="stop the server with this PID (and its Python workers)")
    stop.add_argument("pid", type=int)
    commands.add_parser("free-port", help="print a port on 127.0.0.1 that nothing listens on")
    args = parser.parse_args(argv)
    if args.command == "free-port":
        print(free_port())
        return 0
    if args.command == "stop":
        stop_server(args.pid)
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        proc = start_server(args.port, args.log, args.master, log_level=settings.spark_log_level)
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: Spark Connect server: {exc}; see {args.log}", file=sys.stderr)
        return 1
    print(proc.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
