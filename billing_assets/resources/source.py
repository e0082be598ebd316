"""The SQLite source database of agreements, products and meterpoints."""

import dagster as dg
from pydantic import Field


class SourceDatabase(dg.ConfigurableResource):
    """Path of the SQLite database refreshed daily at midnight."""

    path: str = Field(description="SQLite file, e.g. data/source.db.")
