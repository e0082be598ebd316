"""The Delta warehouse: one folder per table under a root URI, on local disk or S3."""

import os

import dagster as dg
from dagster_deltalake import LocalConfig, S3Config
from dagster_deltalake.config import ClientConfig
from pydantic import Field

from billing_assets.tables.delta_io import PinnedTable
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.storage import LOCAL, TableStorage
from billing_assets.tables.store import TableStore


class Warehouse(dg.ConfigurableResource):
    """Root of the Delta tables (a local folder or ``s3://bucket/prefix``; one sub-folder per table).

    The storage is described with ``dagster_deltalake``'s configs, as its own Delta resources
    are; their options reach delta-rs (the commits), the executors' pyarrow (the files) and
    polars alike. Put credentials in as ``dg.EnvVar``: resolved per run, never stored.
    """

    uri: str = Field(description="Warehouse root, e.g. data/warehouse or s3://bucket/prefix.")
    storage: LocalConfig | S3Config = Field(
        default=LocalConfig(), discriminator="provider", description="Where the table files live."
    )
    client: ClientConfig | None = Field(default=None, description="HTTP client options (allow_http, timeouts).")

    def root_uri(self) -> str:
        """The warehouse root: an absolute path or a URI, without a trailing slash."""
        return (self.uri if "://" in self.uri else os.path.abspath(self.uri)).rstrip("/")

    def tables(self) -> TableStore:
        """The tables as plain handles, for the steps (which know nothing of Dagster)."""
        return TableStore(self.root_uri(), self.table_storage())

    def table_uri(self, spec: TableSpec) -> str:
        """Location of one table."""
        return self.tables().uri(spec)

    def table_storage(self) -> TableStorage:
        """The storage options as one value for delta-rs, the executors and polars."""
        if isinstance(self.storage, LocalConfig):
            return LOCAL
        options = {key: value for key, value in self.storage.str_dict().items() if key != "provider"}
        if self.client is not None:
            options |= self.client.str_dict()
        return TableStorage(options)

    def storage_options(self) -> dict[str, str] | None:
        """delta-rs / polars ``storage_options`` (none for a local warehouse)."""
        return self.table_storage().delta_options()

    def open(self, spec: TableSpec, version: int | None = None) -> PinnedTable:
        """The table at ``version``, by default its latest (created empty on first use)."""
        return self.tables().open(spec, version)
