"""Settlement: ``statements`` and ``statement_adjustments`` per billing month (docs/settlement.md).

One op writes both tables: a decision appends a month's next run, or nothing. No Spark: the
inputs of a month are read with delta-rs at pinned versions (``steps/statements.py``).
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from billing_assets.automation import SETTLEMENT_DUE
from billing_assets.defs.metadata import table_metadata
from billing_assets.partitions import TO_HOURS_SO_FAR, billing_months
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.settings import load_settings
from billing_assets.steps.statements import Settled, data_clock, rewrites, settle_month
from billing_assets.tables.schemas import STATEMENT_ADJUSTMENTS, STATEMENTS, TableSpec
from billing_assets.tables.warehouse import Warehouse


class SettlementConfig(dg.Config):
    """When the decision is taken: the lifecycle's dates are judged against it."""

    as_of: str = Field(
        default="",
        description=(
            "An ISO instant with an offset to decide as of (a re-play of a past decision); blank: now, "
            "or the end of the newest ingestion hour if that is earlier (the data's clock)."
        ),
    )


#: Before any month ends: the decision time while nothing has been ingested.
_BEFORE_ANY_DATA = datetime(1970, 1, 1, tzinfo=UTC)


def _as_of(config: SettlementConfig, warehouse: Warehouse) -> datetime:
    """When the decision is taken: the configured instant, else the earlier of now and the data's clock."""
    if not config.as_of:
        clock = data_clock(warehouse)
        return _BEFORE_ANY_DATA if clock is None else min(datetime.now(UTC), clock)
    instant = datetime.fromisoformat(config.as_of)
    if instant.tzinfo is None:
        raise dg.Failure(f"as_of needs a UTC offset, got {config.as_of!r}")
    return instant.astimezone(UTC)


def _described(settled: Settled) -> str:
    if settled.run is None:
        return "no run"
    change = (
        "" if settled.kwh_difference is None else f", {settled.kwh_difference:+.3f} kWh against run {settled.run - 1}"
    )
    return (
        f"run {settled.run} ({settled.kind}): {settled.kwh:.3f} kWh, {settled.meters} meter(s), "
        f"{settled.adjustments} adjustment(s){change}"
    )


def _spec(table: TableSpec, description: str) -> dg.AssetSpec:
    """One of the two tables a decision writes: both have the same inputs and condition.

    A month is settled once its running total is up to date (its lines are read from
    ``hourly_usage``, which ``cumulative_usage`` follows), with the coverage of ``agreement_days``.
    """
    return dg.AssetSpec(
        table.name,
        deps=[dg.AssetDep("cumulative_usage"), dg.AssetDep("agreement_days", partition_mapping=TO_HOURS_SO_FAR)],
        group_name="settlement",
        kinds={"polars", "delta"},
        automation_condition=SETTLEMENT_DUE,
        description=description,
        metadata=table_metadata(table),
    )


@dg.multi_asset(
    name="settle_statements",
    specs=[
        _spec(
            STATEMENTS,
            "One complete statement of a billing month per run (initial, reconciliation, final): a row per "
            "meterpoint, agreement and product covering it, with its kWh. Append-only.",
        ),
        _spec(
            STATEMENT_ADJUSTMENTS,
            "Per run after the first: a row per meterpoint whose statement changed, by how much and why.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "append_only",
            asset=STATEMENTS.name,
            blocking=True,
            description="Every commit in the statement tables' Delta history only appended: no run was rewritten.",
        ),
        dg.AssetCheckSpec(
            "too_late_readings_readable",
            asset=STATEMENTS.name,
            description="Every too-late reading of the run's months could be read back from the quarantine and billed.",
        ),
        dg.AssetCheckSpec(
            "unchanged_after_final",
            asset=STATEMENTS.name,
            description="No sealed month's inputs now give other lines than its final run (never billed into it).",
        ),
    ],
    partitions_def=billing_months,
    pool=STATEMENTS.name,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def settle_statements(
    context: dg.AssetExecutionContext, config: SettlementConfig, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """Decide each month of the run: append its next statement run when one is due and its bill changed."""
    settings = load_settings()
    store = warehouse.get_warehouse()
    now = _as_of(config, store)
    decisions = {}
    for month in context.partition_keys:
        settled = settle_month(
            store,
            month,
            settings.timezone,
            settings.statement_lifecycle,
            now,
            retention_days=settings.statement_retention_days,
        )
        decisions[month] = settled
        context.log.info(f"{month}: {_described(settled)}")
    months = dg.MetadataValue.json({month: _described(settled) for month, settled in decisions.items()})
    unreadable = sum(settled.unreadable_too_late for settled in decisions.values())
    changed = sorted(month for month, settled in decisions.items() if settled.changed_after_final)
    unreadable_by_month = {month: settled.unreadable_too_late for month, settled in decisions.items()}
    # Soft signals: nothing is billed wrongly, but someone should look (WARN, never blocking).
    rewritten = {spec.name: rewrites(store.open(spec)) for spec in (STATEMENTS, STATEMENT_ADJUSTMENTS)}
    checks = [
        dg.AssetCheckResult(
            asset_key=STATEMENTS.name,
            check_name="append_only",
            passed=not any(rewritten.values()),
            metadata={"rewriting_commits": dg.MetadataValue.json(rewritten)},
        ),
        dg.AssetCheckResult(
            asset_key=STATEMENTS.name,
            check_name="too_late_readings_readable",
            passed=unreadable == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"unreadable_by_month": dg.MetadataValue.json(unreadable_by_month)},
        ),
        dg.AssetCheckResult(
            asset_key=STATEMENTS.name,
            check_name="unchanged_after_final",
            passed=not changed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"months": dg.MetadataValue.json(changed)},
        ),
    ]
    appended = [settled for settled in decisions.values() if settled.run is not None]
    yield dg.MaterializeResult(
        asset_key=STATEMENTS.name,
        check_results=checks,
        metadata={
            "decisions": months,
            "runs_appended": len(appended),
            # The story of the appended runs at a glance (per month in "decisions").
            "run_kinds": ", ".join(sorted({settled.kind for settled in appended})) or "none",
            "kwh": dg.MetadataValue.float(float(sum(settled.kwh for settled in appended))),
            "meters": sum(settled.meters for settled in appended),
            "kwh_difference_against_previous_runs": dg.MetadataValue.float(
                float(sum(settled.kwh_difference or 0.0 for settled in appended))
            ),
            "as_of": now.isoformat(),
            "unreadable_too_late": unreadable,
            "input_versions": dg.MetadataValue.json(
                {month: dict(settled.versions) for month, settled in decisions.items()}
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key=STATEMENT_ADJUSTMENTS.name,
        metadata={"adjustments": sum(settled.adjustments for settled in decisions.values())},
    )
