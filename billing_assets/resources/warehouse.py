"""The Delta warehouse: one folder per table under a root URI."""

import os

import dagster as dg
from pydantic import Field

from billing_assets.tables.delta_io import PinnedTable, open_table
from billing_assets.tables.schemas import TableSpec


class Warehouse(dg.ConfigurableResource):
    """Root of the Delta tables (a local folder; one sub-folder per table)."""

    uri: str = Field(description="Warehouse root, e.g. data/warehouse.")

    def table_uri(self, spec: TableSpec) -> str:
        """Location of one table."""
        root = self.uri if "://" in self.uri else os.path.abspath(self.uri)
        return f"{root.rstrip('/')}/{spec.name}"

    def storage_options(self) -> dict[str, str] | None:
        """delta-rs storage options (none for a local warehouse)."""
        return None

    def open(self, spec: TableSpec, version: int | None = None) -> PinnedTable:
        """The table at ``version``, by default its latest (created empty on first use)."""
        return open_table(self.table_uri(spec), spec, self.storage_options(), version)
