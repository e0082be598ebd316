"""Asset checks that ride along with the materialisations they guard.

Each asset declares its checks with ``check_specs`` and returns their results from the same
run, so every sensor, automation, backfill and ``process`` run executes them. The billing
invariants are blocking with ERROR severity: a failure fails the run after the
materialisation and its figures are recorded, and nothing downstream in that run executes.

Dagster accepts check specs only for the assets an op outputs, so the invariants of the
``deduplicated_raw`` rows that ``raw_readings`` writes incrementally are checks on
``raw_readings`` named ``deduplicated_raw_*``; the repair asset ``deduplicated_raw`` runs the
same queries as its own checks.

Each asset's checks are declared beside it (``defs/ingestion.py``, ``defs/usage.py``,
``defs/gold.py``) with the queries of its domain (``steps/*_checks.py``); this module holds
what they share.
"""

from collections.abc import Callable, Mapping

import dagster as dg

from billing_assets.steps.invariants import CheckOutcome


def blocking_specs(asset: str, checks: Mapping[str, str]) -> list[dg.AssetCheckSpec]:
    """Blocking check specs for ``asset``: a failure stops the run before anything downstream."""
    return [dg.AssetCheckSpec(name, asset=asset, description=text, blocking=True) for name, text in checks.items()]


def check_results(
    context: dg.AssetExecutionContext, asset: str, checks: Mapping[str, Callable[[], CheckOutcome]]
) -> list[dg.AssetCheckResult]:
    """Run the selected checks of ``asset`` (each a thunk, so unselected ones cost nothing) as ERROR results."""
    selected = context.selected_asset_check_keys
    results = []
    for name, evaluate in checks.items():
        if dg.AssetCheckKey(dg.AssetKey(asset), name) not in selected:
            continue
        passed, metadata = evaluate()
        results.append(
            dg.AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=metadata,
            )
        )
    return results
