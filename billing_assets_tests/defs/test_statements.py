"""The ``settle_statements`` asset: one decision per month partition, materialised in process (no Spark)."""

from pathlib import Path

import dagster as dg
import polars as pl

from billing_assets.defs.statements import settle_statements
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.tables.schemas import AGREEMENT_DAYS, HOURLY_USAGE, STATEMENTS
from billing_assets.tables.warehouse import Warehouse
from billing_assets_tests.steps.test_statements import append, covered, usage


def decide(root: Path, instance: dg.DagsterInstance, as_of: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [settle_statements],
        instance=instance,
        partition_key="2026-02",
        resources={"warehouse": WarehouseResource(uri=str(root))},
        run_config={"ops": {"settle_statements": {"config": {"as_of": as_of}}}},
    )


def test_each_decision_appends_a_run_or_nothing_and_says_which(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    warehouse = Warehouse(str(root))
    append(warehouse, HOURLY_USAGE, [usage("mp1", 3, 10, 1.5, 2), usage("mp1", 10, 8, 0.25, 1)])
    append(warehouse, AGREEMENT_DAYS, covered("mp1", "a1", "p1", "Fixed", 1, 28))
    instance = dg.DagsterInstance.ephemeral()

    first = decide(root, instance, "2026-03-02T00:00:00+00:00")
    again = decide(root, instance, "2026-03-02T06:00:00+00:00")  # nothing changed: a materialisation, no run
    final = decide(root, instance, "2026-05-01T00:00:00+00:00")

    decisions = [
        result.asset_materializations_for_node("settle_statements")[0].metadata["decisions"].value
        for result in (first, again, final)
    ]
    assert decisions == [
        {"2026-02": "run 1 (initial): 1 line(s), 0 adjustment(s)"},
        {"2026-02": "no run"},
        {"2026-02": "run 2 (final): 1 line(s), 0 adjustment(s)"},
    ]
    stored = pl.read_delta(str(root / STATEMENTS.name)).sort("run")
    assert stored.select("run", "run_kind", "kwh").rows() == [(1, "initial", 1.75), (2, "final", 1.75)]


def test_a_decision_needs_an_instant_with_an_offset(tmp_path: Path) -> None:
    result = dg.materialize(
        [settle_statements],
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2026-02",
        resources={"warehouse": WarehouseResource(uri=str(tmp_path / "warehouse"))},
        run_config={"ops": {"settle_statements": {"config": {"as_of": "2026-03-02T00:00:00"}}}},
        raise_on_error=False,
    )
    assert not result.success
