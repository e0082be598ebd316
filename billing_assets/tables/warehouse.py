"""The warehouse: one Delta table per folder under a root, on local disk or S3.

A plain value (no Dagster): the ``warehouse`` resource (``resources/warehouse.py``) builds it
from its configuration, and the steps, checks and tools only ever open tables through it. How
its files are reached (local disk, or S3 with credentials) is its ``TableStorage``.
"""

from dataclasses import dataclass

from billing_assets.tables.delta_io import PinnedTable, open_table
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.storage import LOCAL, TableStorage


@dataclass(frozen=True)
class Warehouse:
    """The Delta tables under ``root`` (an absolute path or a URI, without a trailing slash)."""

    root: str
    storage: TableStorage = LOCAL

    def uri(self, spec: TableSpec) -> str:
        """Location of one table."""
        return f"{self.root}/{spec.name}"

    def open(self, spec: TableSpec, version: int | None = None) -> PinnedTable:
        """The table at ``version``, by default its latest (created empty on first use)."""
        return open_table(self.uri(spec), spec, self.storage, version)
