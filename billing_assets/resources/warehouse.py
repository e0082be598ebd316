"""The ``warehouse`` resource: where the Delta tables live, as Dagster configuration.

It only describes the warehouse; ``get_warehouse`` hands out the plain ``Warehouse``
(``tables/warehouse.py``) that the steps open tables through.
"""

import os

import dagster as dg
from dagster_deltalake import LocalConfig, S3Config
from dagster_deltalake.config import ClientConfig
from pydantic import Field

from billing_assets.tables.storage import LOCAL, TableStorage
from billing_assets.tables.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
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

    def get_warehouse(self) -> Warehouse:
        """The warehouse this configuration describes, for the steps (which know nothing of Dagster)."""
        root = (self.uri if "://" in self.uri else os.path.abspath(self.uri)).rstrip("/")
        return Warehouse(root, self._table_storage())

    def _table_storage(self) -> TableStorage:
        """The storage options as one value for delta-rs, the executors and polars."""
        if isinstance(self.storage, LocalConfig):
            return LOCAL
        options = {key: value for key, value in self.storage.str_dict().items() if key != "provider"}
        if self.client is not None:
            options |= self.client.str_dict()
        return TableStorage(options)
