"""``billing-assets bench --agreements N``: the daily source load over a source of N agreements and meterpoints.

Times the two loads a warehouse sees: the first (every coverage day since the start date) and
a daily one (the next day, the source unchanged), with the peak memory of each, through the
same step the ``source_dimensions`` asset runs.
"""

import time
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from billing_assets.bench.memory import MIB, PeakMemory, driver_jvm
from billing_assets.source.sample_db import write_sample_source
from billing_assets.steps.dimensions import load_dimensions
from billing_assets.tables.warehouse import Warehouse


def time_source_loads(spark: SparkSession, root: Path, agreements: int, first_day: date, today: date) -> list[str]:
    """Lines reporting the first and a daily load of a generated source of ``agreements`` meterpoints."""
    source = root / "source-large.db"
    write_sample_source(str(source), [f"mp{index:07d}" for index in range(agreements)], first_day)
    warehouse = Warehouse(str(root / "source-load-warehouse"))
    lines = []
    with PeakMemory() as memory:
        memory.jvm = driver_jvm(spark)
        for label, day in (("first load", today - timedelta(days=1)), ("daily load", today)):
            with memory.phase(label) as peak:
                began = time.monotonic()
                report = load_dimensions(spark, warehouse, str(source), day, first_day, day)
                seconds = time.monotonic() - began
            lines.append(
                f"  {label} ({first_day} .. {day}): {seconds:.1f}s, {len(report.changed_days)} coverage days written,"
                f" peak RSS Python {peak.python / MIB:,.0f} MiB, JVM {peak.jvm / MIB:,.0f} MiB"
            )
    return lines
