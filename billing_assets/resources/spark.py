"""The Spark session every asset uses, through ``dagster_pyspark.PySparkResource``."""

import os
import re
import shutil
import subprocess
import sys

from dagster import InitResourceContext
from dagster_pyspark import PySparkResource

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


def spark_config(master: str = "local[*]", shuffle_partitions: int = 4) -> dict[str, str]:
    """Session settings for this pipeline; ``master`` picks local mode or a cluster."""
    return {
        "spark.master": master,
        "spark.app.name": "billing_assets",
        # All timestamps in the tables are UTC instants; local time only appears explicitly.
        "spark.sql.session.timeZone": "UTC",
        # Hourly batches are small: 200 shuffle partitions would be 200 near-empty tasks.
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Partition folder values are hour keys; never let Spark guess them as dates or numbers.
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
    }


def prepare_spark_environment() -> None:
    """Check Java and set the process environment Spark reads before its JVM starts."""
    require_java()
    # Python workers must run this interpreter (it has pyarrow and this package); pyspark
    # reads the variable, not the spark.pyspark.python setting, when it builds UDFs.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Otherwise Spark binds to whichever interface it finds first.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


class SparkResource(PySparkResource):
    """PySparkResource that fails with a clear message when Java is missing."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Check the environment, then start (or join) the session."""
        prepare_spark_environment()
        super().setup_for_execution(context)
