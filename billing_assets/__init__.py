"""billing_assets: smart-meter readings to billing-grade usage and gold tables (Dagster, Spark, Delta Lake)."""

import logging
import warnings

# Beta Dagster parameters this project uses on purpose, each for a guarantee the README gives:
# one run per requested range (``backfill_policy``), today's partitions depending on the hours
# so far (``allow_nonexistent_upstream_partitions``) and late data as one run per tick
# (``use_user_code_server``, which evaluates the Python condition ``SpanOf``). A warning per
# asset on every load of the code location tells a user nothing they can act on. Matched by
# message, so any other beta or deprecation warning still shows.
_CHOSEN_BETAS = "backfill_policy|allow_nonexistent_upstream_partitions|use_user_code_server"


def ignore_chosen_betas() -> None:
    """Silence the beta warnings of the parameters above (again, where a caller reset the filters)."""
    warnings.filterwarnings("ignore", message=rf"Parameter `({_CHOSEN_BETAS})` of .* is currently in beta")


ignore_chosen_betas()


class _TimestampFallbackNotice(logging.Filter):
    """Drops Dagster's notice that a condition saw more than 100 updated partitions.

    Dagster then times the whole subset by the tick instead of per partition, which none of
    our conditions depends on; a start-up of a few days' hours logs it once per tick and asset.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the notice, True for everything else."""
        return "for per-partition timestamp fetching" not in record.getMessage()


logging.getLogger("dagster").addFilter(_TimestampFallbackNotice())
