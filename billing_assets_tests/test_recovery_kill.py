"""A re-run of ``process`` after the command was killed at any table's write converges to a clean run.

The real command is killed (SIGKILL) at each asset's write: between a table's new
data files and their commit, and right after a commit, before anything else ran. Running the
same command again must leave every table equal to a clean run's, with no data file on disk
that the Delta log does not hold, and must say what it repaired.
"""

import pytest

from billing_assets_tests.recovery import Sample, assert_rerun_converges, process

#: Each case runs the command twice: deselected by the inner loop.

#: (table, point): every asset's write, before and after its commit (SIGTERM: test_recovery_faults).
CASES = [
    ("deduplicated_raw", "after_commit"),  # ingestion: the merge committed, nothing announced
    ("raw_readings", "before_commit"),  # ingestion: dedup and quarantine committed, raw files written
    ("hourly_usage", "before_commit"),
    ("hourly_usage", "after_commit"),
    ("cumulative_usage", "before_commit"),
    ("half_hourly_consumption", "before_commit"),  # gold
    ("product_daily_consumption", "after_commit"),
    ("agreement_snapshots", "before_commit"),  # the source load's first write
    ("agreement_days", "after_commit"),  # the source load: coverage committed, nothing announced
    ("active_agreements", "before_commit"),
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, end_to_end) -> Sample:
    return Sample.recent(tmp_path_factory.mktemp("sample"))


@pytest.mark.parametrize(("table", "point"), CASES, ids=["-".join(case) for case in CASES])
def test_a_rerun_after_a_kill_equals_a_clean_run(sample: Sample, tmp_path, table, point) -> None:
    env = assert_rerun_converges(sample, tmp_path, table, point, "KILL")
    if (table, point) == ("hourly_usage", "before_commit"):
        # And once more: a converged warehouse is left as it is, and nothing is refreshed.
        again = process(sample, env, tmp_path / "again.log")
        assert again.returncode == 0 and "[recovery]" not in again.stdout, again.stdout[-3000:]
        assert "partitions" not in again.stdout.rsplit("processed", 1)[-1].split(";")[0], again.stdout[-3000:]
