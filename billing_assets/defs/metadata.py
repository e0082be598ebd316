"""What the UI shows about each table: its columns at definition time, and what each run wrote.

Column schemas come from the output contract (``tables/schemas.py``), so the catalogue
cannot drift from the tables. A run's metadata names the Delta version it committed and
previews a few of the rows in the partitions it owns, read back through the Delta log by the
driver itself: a preview is no Spark job (on S3 one was 2 s a table), and stops reading files
once it has its few rows.
"""

import dagster as dg
import pyarrow as pa

from billing_assets.steps.recompute import selected
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.selection import PartitionSelection
from billing_assets.tables.warehouse import Warehouse

PREVIEW_ROWS = 5


def column_schema(spec: TableSpec) -> dg.TableSchema:
    """The table's columns and Arrow types, its partition column marked."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                field.name,
                str(field.type),
                description="partition column" if field.name == spec.partition_by else None,
            )
            for field in spec.schema
        ]
    )


def table_metadata(spec: TableSpec) -> dict[str, object]:
    """Definition metadata of the asset that owns ``spec``: table name, partition column, column schema."""
    metadata: dict[str, object] = {"dagster/table_name": spec.name, "dagster/column_schema": column_schema(spec)}
    if spec.partition_by:
        metadata["partition_column"] = spec.partition_by
    return metadata


def landing_kinds(landing_uri: str) -> set[str]:
    """``{"s3"}`` when the landing zone at ``landing_uri`` is on S3."""
    return {"s3"} if landing_uri.startswith("s3://") else set()


def preview_markdown(table: pa.Table) -> str:
    """A Markdown table of the given rows (the caller bounds how many)."""
    if table.num_rows == 0:
        return "_no rows in the written partitions_"
    return table.to_pandas().to_markdown(index=False)


def materialized(
    warehouse: Warehouse,
    spec: TableSpec,
    rows: int,
    partitions: int,
    written: PartitionSelection | None,
    version: int | None = None,
    *,
    details: dict[str, object] | None = None,
    checks: list[dg.AssetCheckResult] | None = None,
    asset_key: str | None = None,
) -> dg.MaterializeResult:
    """An asset's result: rows and partitions written, the Delta version, a preview, ``details`` and checks.

    ``written`` are the table partitions the run replaced (``None``: the whole table).
    ``version`` is the version the step committed; without it the latest is used, which is
    the step's own commit (or, when nothing changed, the version its partitions are at)
    because each table has one writer pool.
    """
    table = warehouse.open(spec, version)
    dataset = table.delta.to_pyarrow_dataset(partitions=selected(spec, written))
    preview = dataset.head(PREVIEW_ROWS, columns=spec.schema.names)
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/uri": dg.MetadataValue.path(table.uri),
        "partitions_written": dg.MetadataValue.int(partitions),
        "delta_version": dg.MetadataValue.int(table.delta.version()),
        "preview": dg.MetadataValue.md(preview_markdown(preview)),
    }
    return dg.MaterializeResult(asset_key=asset_key, metadata={**metadata, **(details or {})}, check_results=checks)
