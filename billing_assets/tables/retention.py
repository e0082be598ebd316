"""Keep a table's old versions readable as long as a statement that read them may be verified.

delta-rs deletes commit files older than ``delta.logRetentionDuration`` (default 30 days)
whenever it writes a checkpoint, and ``vacuum`` deletes removed data files older than
``delta.deletedFileRetentionDuration`` (default 7 days); either makes an old version
unreadable. A statement records the versions it read so ``--verify`` can recompute it, so its
input tables must keep both for ``BILLING_STATEMENT_RETENTION_DAYS`` (docs/settlement.md).
"""

import re
from collections.abc import Mapping

from billing_assets.tables.delta_io import PinnedTable
from billing_assets.tables.log_check import record_commit

RETENTION_KEYS = ("delta.logRetentionDuration", "delta.deletedFileRetentionDuration")
_DAYS = re.compile(r"interval\s+(\d+)\s+days?", re.IGNORECASE)


def retention_days(configuration: Mapping[str, str | None], key: str) -> int | None:
    """The days a retention property holds (``interval 425 days``); None when unset or in other units."""
    found = _DAYS.fullmatch((configuration.get(key) or "").strip())
    return int(found.group(1)) if found else None


def keep_versions(table: PinnedTable, days: int) -> bool:
    """Raise the table's log and deleted-file retention to at least ``days`` in one commit; whether it committed.

    A longer retention is kept; one in other units (hours, weeks) is replaced, since it cannot
    be compared here. Nothing is committed when both already hold at least ``days``.
    """
    configuration = table.delta.metadata().configuration
    short = [key for key in RETENTION_KEYS if (retention_days(configuration, key) or -1) < days]
    if not short:
        return False
    table.delta.alter.set_table_properties({key: f"interval {days} days" for key in short})
    table.delta.update_incremental()
    record_commit(table.uri, table.delta.version(), table.storage)
    return True
