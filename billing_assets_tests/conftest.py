"""Shared fixtures: one local Spark session for the whole test session, warehouses on tmp_path."""

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from billing_assets.definitions import ASSETS
from billing_assets.resources import build_resources
from billing_assets.resources.spark import prepare_spark_environment, spark_config
from billing_assets.tables.schemas import ALL_TABLES

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The one Spark session; the pipeline's PySparkResource joins it through getOrCreate."""
    prepare_spark_environment()
    builder = SparkSession.builder
    for key, value in spark_config("local[2]", shuffle_partitions=2).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


class Pipeline:
    """A landing zone, warehouse and Dagster instance on tmp_path, driven like the UI would."""

    def __init__(self, root: Path, spark: SparkSession) -> None:
        self.landing = root / "landing"
        self.warehouse = root / "warehouse"
        self.landing.mkdir()
        self.spark = spark
        self.instance = dg.DagsterInstance.ephemeral()
        self.source_db = root / "source.db"
        self.resources = build_resources(str(self.landing), str(self.warehouse), "local[2]", str(self.source_db))

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
        kwargs: dict = {"partition_key": partition}
        if last is not None:
            kwargs = {"tags": {RANGE_START: partition, RANGE_END: last}}
        # A multi-asset runs whole: select every asset it produces.
        [owner] = [a for a in ASSETS if dg.AssetKey(asset) in a.keys]
        result = dg.materialize(
            ASSETS, selection=list(owner.keys), resources=self.resources, instance=self.instance, **kwargs
        )
        assert result.success
        return result

    def rows(self, table: str, sort: tuple[str, ...] | None = None) -> list[dict]:
        """A table's live rows as dicts, in a stable order."""
        uri = self.warehouse / table
        if not (uri / "_delta_log").exists():
            return []
        data = DeltaTable(str(uri)).to_pyarrow_table()
        keys = sort or tuple(data.column_names)
        return sorted(data.to_pylist(), key=lambda r: tuple("" if r[k] is None else str(r[k]) for k in keys))

    def snapshot(self) -> dict[str, list[dict]]:
        """Every table's content (for idempotency comparisons)."""
        return {spec.name: self.rows(spec.name) for spec in ALL_TABLES}


@pytest.fixture
def pipeline(tmp_path: Path, spark: SparkSession) -> Pipeline:
    """A fresh pipeline environment."""
    return Pipeline(tmp_path, spark)
