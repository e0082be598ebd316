"""``billing-assets sql``: read-only SQL over the warehouse's Delta tables, on DuckDB.

Each Delta table is opened with delta-rs and handed to DuckDB as an Arrow dataset; DuckDB
then loses every way out of the process (``enable_external_access = false``) and its
configuration is locked. A statement is judged by DuckDB's own parser before it runs
(``statements``), its work is bounded (``limits``), and ``--out`` never writes into the
warehouse or the landing zone (``output``).
"""

from billing_assets.analyst.command import sql_command

__all__ = ["sql_command"]
