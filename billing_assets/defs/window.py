"""Assets that replace the partitions of their run's window: one declaration, one body.

Each such asset recomputes its table for the hours, days or months its run covers (one
``RunWindow``, derived once from the run's partition time window), runs its blocking checks
over the same partitions and reports what it wrote. A range of partitions is one run
(``BackfillPolicy.single_run``), and each table has its own writer pool.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import dagster as dg
from pyspark.sql import SparkSession

from billing_assets.defs.checks import blocking_specs, check_results
from billing_assets.defs.metadata import materialized, table_metadata
from billing_assets.partitions import run_window
from billing_assets.resources.spark import SparkResource
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.steps.invariants import CheckOutcome
from billing_assets.steps.recompute import StepResult
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.selection import RunWindow
from billing_assets.tables.warehouse import Warehouse

#: A check of a replaced window: the session, the tables, the run's window and the source version
#: the step read (checks that compare with the input read it at that version).
WindowCheck = Callable[[SparkSession, Warehouse, RunWindow, int | None], CheckOutcome]
#: Several checks settled by one evaluation (one Spark job for all): check name -> outcome.
JointCheck = Callable[[SparkSession, Warehouse, RunWindow, int | None], Mapping[str, CheckOutcome]]


@dataclass(frozen=True)
class OneOf:
    """A check whose outcome comes from a ``JointCheck`` evaluated once per run for all the checks naming it."""

    joint: JointCheck
    name: str


#: A step that replaces the window's partitions of one table.
WindowStep = Callable[[SparkSession, Warehouse, RunWindow], StepResult]


def replaced(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    warehouse: Warehouse,
    spec: TableSpec,
    build: WindowStep,
    checks: Mapping[str, WindowCheck | OneOf],
) -> dg.MaterializeResult:
    """Replace the run's window of ``spec`` with ``build``, run the selected ``checks`` and report it."""
    window, session = run_window(context.partition_time_window), spark.spark_session
    result = build(session, warehouse, window)
    written = window.of(spec.partition_by, spec.schema.field(spec.partition_by).type)
    arguments = (session, warehouse, window, result.source_version)
    settled: dict[JointCheck, Mapping[str, CheckOutcome]] = {}

    def thunk(check: WindowCheck | OneOf) -> Callable[[], CheckOutcome]:
        if not isinstance(check, OneOf):
            return partial(check, *arguments)

        def one_of() -> CheckOutcome:
            if check.joint not in settled:
                settled[check.joint] = check.joint(*arguments)
            return settled[check.joint][check.name]

        return one_of

    thunks = {name: thunk(check) for name, check in checks.items()}
    return materialized(
        warehouse,
        spec,
        result.rows,
        len(context.partition_keys),
        written,
        result.version,
        details={f"{spec.partition_by} range": f"{written.first} .. {written.last}"},
        checks=check_results(context, spec.name, thunks),
    )


def window_asset(
    spec: TableSpec,
    build: WindowStep,
    *,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    deps: Sequence[dg.AssetDep | str],
    group_name: str,
    description: str,
    automation_condition: dg.AutomationCondition | None = None,
    checks: Mapping[str, tuple[str, WindowCheck | OneOf]] | None = None,
) -> dg.AssetsDefinition:
    """The asset that owns ``spec``: ``build`` over its run's window; ``checks``: name -> (text, blocking check)."""
    checks = checks or {}

    @dg.asset(
        name=spec.name,
        deps=deps,
        partitions_def=partitions_def,
        pool=spec.name,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=automation_condition,
        group_name=group_name,
        kinds={"spark", "delta"},
        description=description,
        metadata=table_metadata(spec),
        check_specs=blocking_specs(spec.name, {name: text for name, (text, _) in checks.items()}),
    )
    def _asset(
        context: dg.AssetExecutionContext, spark: SparkResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        by_name = {name: check for name, (_, check) in checks.items()}
        return replaced(context, spark, warehouse.get_warehouse(), spec, build, by_name)

    return _asset
