"""Do the engines agree? Total consumption per UTC hour, and per billing month of the running total."""

import math

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

TOLERANCE = 1e-6


def totals_by(table: pa.Table, key: pa.Array, value: str) -> dict[str, float]:
    """Sum of ``value`` per distinct ``key``."""
    grouped = pa.table({"key": key, "value": table[value]}).group_by("key").aggregate([("value", "sum")])
    return dict(zip(grouped["key"].to_pylist(), grouped["value_sum"].to_pylist(), strict=True))


def hourly_totals(table: pa.Table) -> dict[str, float]:
    """Consumption summed over meterpoints, per UTC hour (``usage_hour`` naive UTC or UTC-aware)."""
    return totals_by(table, pc.strftime(table["usage_hour"], format="%Y-%m-%dT%H"), "consumption")


def monthly_running_totals(table: pa.Table) -> dict[str, float]:
    """Sum of ``cumulative_consumption`` per billing month: sensitive to every running-total row."""
    return totals_by(table, table["billing_month"], "cumulative_consumption")


def read_output(path: str, delta: bool = False, storage: dict[str, str] | None = None) -> pa.Table:
    """One engine's output table: a Delta table, or Parquet files (a file or a Hive-partitioned folder)."""
    if delta:
        return DeltaTable(path, storage_options=storage).to_pyarrow_table()
    return ds.dataset(path, format="parquet", partitioning="hive").to_table()


def differences(expected: dict[str, float], actual: dict[str, float], tolerance: float = TOLERANCE) -> list[str]:
    """Keys missing on either side, or whose values differ by more than ``tolerance`` (absolute or relative)."""
    problems = [f"{key}: only in one" for key in sorted(expected.keys() ^ actual.keys())]
    problems += [
        f"{key}: {expected[key]!r} != {actual[key]!r}"
        for key in sorted(expected.keys() & actual.keys())
        if not math.isclose(expected[key], actual[key], rel_tol=tolerance, abs_tol=tolerance)
    ]
    return problems
