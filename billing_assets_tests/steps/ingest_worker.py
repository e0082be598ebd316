"""Run one ingestion in its own process (own JVM), starting when a barrier file appears."""

import json
import sys
import time
from pathlib import Path

import dagster as dg
from pyspark.sql import SparkSession

from billing_assets.resources import build_warehouse
from billing_assets.resources.landing import LandingZone
from billing_assets.resources.spark import prepare_spark_environment, spark_config
from billing_assets.steps.ingest import ingest


def main(landing: str, warehouse: str, hour: str, barrier: str) -> None:
    prepare_spark_environment()
    builder = SparkSession.builder
    for key, value in spark_config("local[1]", shuffle_partitions=1).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.range(1).count()  # JVM and Python workers warm before the race starts
    zone = LandingZone(uri=landing)
    files = zone.list_files(hour)
    while not Path(barrier).exists():
        time.sleep(0.01)
    with dg.build_resources({"warehouse": build_warehouse(warehouse)}) as built:  # resolves dg.EnvVar
        store = built.warehouse
    report = ingest(spark, store.tables(), [hour], files, "Europe/London", {})
    print(json.dumps({"hour": hour, "inserted": report.counts[hour].inserted, "changed": report.changed_hours}))
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
