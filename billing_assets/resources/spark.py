"""The Spark session every asset uses, through ``dagster_pyspark.PySparkResource``.

The master decides where the work runs: ``local[*]`` in this process's JVM, a cluster
(``spark://host:port``, ``k8s://...``) with this process as the driver, or a Spark Connect
server (``sc://host:port``) that is the driver itself. The assets never tell them apart.
"""

import os
import re
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

from dagster import InitResourceContext
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark import cloudpickle
from pyspark.sql import SparkSession

import billing_assets
from billing_assets.settings import DEFAULT_SPARK_LOG_LEVEL, spark_log_environment

MIN_JAVA = 17


class JavaMissingError(RuntimeError):
    """Spark cannot start because no suitable Java runtime is installed."""


def require_java() -> str:
    """Path of a Java 17+ runtime, or a one-line error saying what is missing."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise JavaMissingError(
            f"Spark needs Java {MIN_JAVA}+: no `java` on PATH and JAVA_HOME is unset "
            "(install e.g. Debian's openjdk-17-jre-headless)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if match and int(match.group(1)) < MIN_JAVA:
        raise JavaMissingError(f"Spark needs Java {MIN_JAVA}+, found {match.group(1)} at {java}")
    return java


def is_connect(master: str) -> bool:
    """Whether ``master`` names a Spark Connect server (``sc://host:port``)."""
    return master.startswith("sc://")


def _on_this_machine(master: str) -> bool:
    """Local mode, or a cluster whose master listens on the loopback interface."""
    return master.startswith("local") or urlsplit(master).hostname in ("127.0.0.1", "localhost")


def spark_config(master: str = "local[*]", shuffle_partitions: int = 4) -> dict[str, str]:
    """Session settings for this pipeline; ``master`` picks local mode, a cluster or a Connect server."""
    config = {
        "spark.master": master,
        "spark.app.name": "billing_assets",
        # All timestamps in the tables are UTC instants; local time only appears explicitly.
        "spark.sql.session.timeZone": "UTC",
        # Hourly batches are small: 200 shuffle partitions would be 200 near-empty tasks.
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        # Small batches, small plans: adaptive execution runs every shuffle stage and every
        # broadcast as a Spark job of its own, and re-plans between them. One warm hour through
        # every asset took 84 jobs with them and 24 without, in the same time (docs/performance.md).
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.autoBroadcastJoinThreshold": "-1",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Partition folder values are hour keys; never let Spark guess them as dates or numbers.
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
    }
    if _on_this_machine(master):
        # Executors on other hosts must reach the driver, so only a driver whose cluster is
        # on this machine stays on the loopback interface.
        config["spark.driver.bindAddress"] = "127.0.0.1"
        config["spark.driver.host"] = "127.0.0.1"
    return config


def prepare_spark_environment(master: str = "local[*]", log_level: str = DEFAULT_SPARK_LOG_LEVEL) -> None:
    """Check Java and set the process environment Spark reads before its JVM starts (its log at ``log_level``)."""
    require_java()
    # Python workers must run this interpreter (it has pyarrow and this package); pyspark
    # reads the variable, not the spark.pyspark.python setting, when it builds UDFs. On a
    # cluster the same path must exist on every worker host.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark's log level from the start of the JVM on: setLogLevel() after the session starts
    # would miss the start-up warnings. The JVM inherits this process's environment.
    os.environ.update(spark_log_environment(log_level, os.environ))
    if _on_this_machine(master):
        # Otherwise Spark binds to whichever interface it finds first.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def connect_session(spark_conf: dict[str, str]) -> SparkSession:
    """A Spark Connect session to ``spark.master`` with the session-level (``spark.sql.*``) settings.

    The server owns the driver, so the JVM-level settings in ``spark_conf`` are its business.
    """
    builder = SparkSession.builder.remote(spark_conf["spark.master"])
    for key, value in spark_conf.items():
        if key.startswith("spark.sql."):
            builder = builder.config(key, value)
    return builder.create()


def spark_session(spark_conf: dict[str, str], log_level: str = DEFAULT_SPARK_LOG_LEVEL) -> SparkSession:
    """The session for ``spark_conf``: joined or started in this process, or a Spark Connect session (``sc://``).

    The one place a session is built: the resource, the bench, the tests and scripts all come here.
    ``log_level`` is Spark's own log level in a JVM this starts (a Connect server has its own).
    """
    master = spark_conf.get("spark.master", "local[*]")
    if is_connect(master):
        return connect_session(spark_conf)
    prepare_spark_environment(master, log_level)
    return SparkSession.builder.config(map=spark_conf).getOrCreate()


class SparkResource(PySparkResource):
    """PySparkResource for local mode, a cluster or a Spark Connect server, chosen by ``spark.master``."""

    log_level: str = Field(
        default=DEFAULT_SPARK_LOG_LEVEL, description="Spark's own log level in a driver JVM the run starts."
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Start (or join) the session; ship this project's code when executors may not have it."""
        master = self.spark_config.get("spark.master", "local[*]")
        self._spark_session = spark_session(self.spark_config, self.log_level)
        if not master.startswith("local"):
            # Executors on a cluster or behind a Connect server do not have this project
            # installed: functions it sends them (mapInArrow) travel by value, not as imports.
            cloudpickle.register_pickle_by_value(billing_assets)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Release a Connect session's server-side state; a classic session stays for the next run."""
        if is_connect(self.spark_config.get("spark.master", "")):
            self._spark_session.stop()
