"""Recovery from faults other than a kill: a full disk, an S3 endpoint that dies mid-run, and the UI's automation.

Each fault is real: the warehouse on a file system that fills up, the S3 server's endpoint cut
off (the forwarder in front of it is killed) during a commit, the command killed and the
automation conditions left to find what it did not finish. Every table must end equal to a
clean run's, with no data file outside the Delta log.
"""

import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import s3fs

from billing_assets.definitions import ASSETS
from billing_assets.instance import fail_abandoned_runs
from billing_assets.local_processes import free_port, stop_process_group
from billing_assets.partitions import range_tags
from billing_assets.resources import build_resources
from billing_assets.resources.spark import SparkResource
from billing_assets_tests.conftest import TEST_SPARK
from billing_assets_tests.recovery import (
    Sample,
    assert_rerun_converges,
    clean_run,
    ended_by,
    faulted,
    files_outside_the_log,
    process,
    tables,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, end_to_end) -> Sample:
    return Sample.recent(tmp_path_factory.mktemp("sample"))


#: SIGTERM at writes of each layer (SIGKILL at every write: test_recovery_kill).
TERM_CASES = [
    ("deduplicated_raw", "before_commit"),
    ("hourly_usage", "before_commit"),
    ("active_agreements", "after_commit"),
]


@pytest.mark.parametrize(("table", "point"), TERM_CASES, ids=["-".join(case) for case in TERM_CASES])
def test_a_rerun_after_a_sigterm_equals_a_clean_run(sample: Sample, tmp_path: Path, table: str, point: str) -> None:
    assert_rerun_converges(sample, tmp_path, table, point, "TERM")


def mount_tmpfs(folder: Path, size: int) -> None:
    """A file system of ``size`` bytes at ``folder`` (the tests run as root, as CI does)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)


def test_a_rerun_after_the_disk_filled_up_equals_a_clean_run(sample: Sample, tmp_path: Path) -> None:
    expected, size = clean_run(sample)
    disk = tmp_path / "disk"
    # Half of what the warehouse needs: the command fails part-way through, in the middle of a write.
    mount_tmpfs(disk, max(size // 2, 64 * 1024))
    try:
        env = sample.environment(tmp_path, BILLING_WAREHOUSE_URI=str(disk / "warehouse"))
        full = process(sample, env, tmp_path / "full.log")
        assert full.returncode != 0 and "No space left on device" in full.stdout, full.stdout[-3000:]

        subprocess.run(["mount", "-o", f"remount,size={size * 8}", str(disk)], check=True)
        rerun = process(sample, env, tmp_path / "rerun.log")
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        assert tables(disk / "warehouse") == expected
        assert files_outside_the_log(disk / "warehouse") == {}
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def start_proxy(listen: int, target: int) -> subprocess.Popen:
    """The forwarder in front of the S3 server, answering once its port is open."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "billing_assets_tests.tcp_proxy", str(listen), str(target)], start_new_session=True
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{listen}/moto-api/", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the forwarder did not answer")


@pytest.mark.parametrize("table", ["deduplicated_raw", "hourly_usage"])
def test_a_rerun_after_the_s3_endpoint_died_mid_commit_equals_a_clean_run(
    sample: Sample, tmp_path: Path, s3_server: str, table: str
) -> None:
    expected, _ = clean_run(sample)
    urllib.request.urlopen(urllib.request.Request(f"{s3_server}/moto-api/reset", method="POST")).close()
    listen, target = free_port(), int(s3_server.rsplit(":", 1)[1])
    endpoint = f"http://127.0.0.1:{listen}"
    proxy = start_proxy(listen, target)
    s3 = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": s3_server})
    s3.mkdir("warehouse-bucket")
    env = sample.environment(
        tmp_path,
        BILLING_WAREHOUSE_URI="s3://warehouse-bucket/lake",
        BILLING_S3_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        FAULT_PROXY_PID=str(proxy.pid),
    )
    try:
        cut_off = faulted(sample, env, tmp_path / "outage.log", table, "before_commit", "OUTAGE")
        assert cut_off.returncode != 0, cut_off.stdout[-3000:]
        proxy.wait(timeout=10)
        proxy = start_proxy(listen, target)  # the endpoint is back

        rerun = process(sample, env, tmp_path / "rerun.log")
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        local = tmp_path / "copy"
        s3.get("warehouse-bucket/lake", str(local), recursive=True)
        assert tables(local) == expected
        assert files_outside_the_log(local) == {}
    finally:
        stop_process_group(proxy)


def requested(evaluation: dg.EvaluateAutomationConditionsResult) -> list[tuple[dg.AssetsDefinition, str, str]]:
    """The runs the automation requests: (asset, first, last partition) per contiguous range."""
    from billing_assets.partitions import key_ranges

    runs = []
    for asset in ASSETS:
        keys = set().union(*(evaluation.get_requested_partitions(key) for key in asset.keys))
        for key_range in key_ranges(asset.partitions_def, keys) if asset.partitions_def and keys else []:
            runs.append((asset, key_range.start, key_range.end))
    return runs


def test_the_automation_heals_what_a_killed_process_left_without_a_click(sample: Sample, tmp_path: Path, spark) -> None:
    expected, _ = clean_run(sample)
    env = sample.environment(tmp_path)
    killed = faulted(sample, env, tmp_path / "killed.log", "hourly_usage", "before_commit", "KILL")
    assert ended_by(killed, "KILL")

    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    assert fail_abandoned_runs(instance)  # what the automation sensor does on its next tick
    landing, warehouse = env["BILLING_LANDING_URI"], env["BILLING_WAREHOUSE_URI"]
    resources = build_resources(landing, warehouse, None, env["BILLING_SOURCE_DB"])
    resources["spark"] = SparkResource(spark_config=TEST_SPARK)
    defs = dg.Definitions(assets=ASSETS, resources=resources)

    now = datetime.now(UTC)
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
    launched = 0
    for tick in range(1, 8):
        # Ticks a little over the retry interval apart: a stale partition waits at most that long.
        at = now + timedelta(minutes=6 * tick)
        evaluation = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=evaluation.cursor, evaluation_time=at
        )
        runs = requested(evaluation)
        if not runs and launched:
            break
        for asset, first, last in runs:
            kwargs = {"partition_key": first} if first == last else {"tags": range_tags(first, last)}
            result = dg.materialize(
                ASSETS, selection=list(asset.keys), resources=resources, instance=instance, **kwargs
            )
            assert result.success
            launched += 1
    assert launched, "the automation requested nothing"
    assert tables(Path(warehouse)) == expected
    assert files_outside_the_log(Path(warehouse)) == {}
