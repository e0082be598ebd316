"""A failed ``process`` prints one ``error:`` line naming the cause and a log file holding the traceback.

Each fault is real: a closed port, a bucket that does not exist, an S3 server that checks
signatures, a signal, a full file system, a damaged Delta log, run through the installed
command in its own process.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from deltalake import DeltaTable, write_deltalake

from billing_assets.cli import main
from billing_assets.local_processes import free_port, start_s3_server, stop_process_group
from billing_assets.tables.schemas import DEDUPLICATED_RAW

START, END = "2026-03-28T00", "2026-03-28T02"
#: Lines ``process`` may print besides the one error: progress, warnings and its summary.
PROGRESS = re.compile(r"^(\[[\w+ -]+\] |warning: |processed )")
ERROR = re.compile(r"^error: (?P<message>.+); details in (?P<log>/\S+\.log)$")
SECRET = f"secret-{uuid.uuid4().hex}"


@dataclass
class Done:
    """A finished ``process``: exit code and what it wrote to stderr."""

    returncode: int
    stderr: str


def _default_signals() -> None:
    # A shell may start us with SIGINT/SIGTERM ignored; the command must see them as a user's shell would.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``process`` over a local sample in ``tmp_path``, without the caller's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "AWS_"))}
    env.update(
        DAGSTER_HOME=str(tmp_path / "home"),
        BILLING_LANDING_URI=str(tmp_path / "landing"),
        BILLING_WAREHOUSE_URI=str(tmp_path / "warehouse"),
        BILLING_SOURCE_DB=str(tmp_path / "no-source.db"),
        BILLING_SPARK_MASTER="local[1]",
    )
    env.update(extra)
    return env


def sample(tmp_path: Path) -> Path:
    """Two ingestion hours of a small generated sample, on local disk."""
    landing = tmp_path / "landing"
    args = ["generate-sample", "--meterpoints", "2", "--start", START, "--hours", "2", "--out", str(landing)]
    assert main([*args, "--source-db", ""]) == 0
    return landing


def run_process(env: dict[str, str], stop_on: str | None = None, timeout: float = 600) -> Done:
    """``billing-assets process`` over the sample's hours; with ``stop_on``, SIGTERM once stderr shows that text."""
    command = [sys.executable, "-m", "billing_assets.cli", "process", "--start", START, "--end", END]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals
    )
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if stop_on and stop_on in line:
            time.sleep(2)  # inside the run, past Dagster's start of it
            proc.send_signal(signal.SIGTERM)
    return Done(proc.wait(timeout), "".join(lines))


def one_error(done: Done, *names: str) -> tuple[str, str]:
    """The one ``error:`` line's message and the log's text, after checking the rest of stderr is progress."""
    assert done.returncode != 0, done.stderr
    lines = done.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    others = [line for line in lines if not line.startswith("error:") and not PROGRESS.match(line)]
    assert others == [], done.stderr  # no traceback, no Dagster or Spark log on the terminal
    found = ERROR.match(errors[0])
    assert found, errors[0]
    for name in names:
        assert name in found["message"], (name, errors[0])
    log = Path(found["log"])
    assert log.is_file()
    text = log.read_text()
    # Python's traceback, or Dagster's log of a failed step (its "Stack Trace:").
    assert "Traceback (most recent call last)" in text or "Stack Trace:" in text, text[-2000:]
    assert errors[0] in text
    for where in (done.stderr, text):
        assert SECRET not in where
    return found["message"], text


def test_an_unreachable_endpoint_is_one_line(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = base_env(
        tmp_path,
        BILLING_LANDING_URI="s3://landing-bucket/zone",
        BILLING_S3_ENDPOINT_URL=closed,
        AWS_ACCESS_KEY_ID="AKIABILLINGTEST0001",
        AWS_SECRET_ACCESS_KEY=SECRET,
    )
    message, _ = one_error(run_process(env), closed, "BILLING_S3_ENDPOINT_URL")
    assert message.startswith("cannot reach the S3 endpoint")


@pytest.mark.parametrize("setting", ["BILLING_WAREHOUSE_URI", "BILLING_LANDING_URI"])
def test_a_missing_bucket_is_one_line(tmp_path: Path, s3_server: str, setting: str) -> None:
    """The warehouse's bucket, or the landing zone's: a landing zone that is gone is no empty zone."""
    sample(tmp_path)
    uri = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/lake"
    env = base_env(
        tmp_path,
        BILLING_S3_ENDPOINT_URL=s3_server,
        AWS_ACCESS_KEY_ID="AKIABILLINGTEST0001",
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_REGION="us-east-1",
        **{setting: uri},
    )
    one_error(run_process(env), uri, "does not exist")


@pytest.fixture(scope="module")
def signing_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An S3 server that checks request signatures, with one user and an empty bucket: (endpoint, access key id).

    moto checks signatures once its first ``INITIAL_NO_AUTH_ACTION_COUNT`` requests are done:
    here the three that create the user, its policy and its key.
    """
    port = free_port()
    log = tmp_path_factory.mktemp("signing_s3") / "server.log"
    proc = start_s3_server(port, log, env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        iam.create_user(UserName="billing")
        iam.put_user_policy(
            UserName="billing",
            PolicyName="s3",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName="billing")["AccessKey"]
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        s3.create_bucket(Bucket="landing-bucket")
        yield endpoint, key["AccessKeyId"]
    finally:
        stop_process_group(proc)


def test_the_signing_server_rejects_a_wrong_secret_and_takes_the_right_one(signing_s3) -> None:
    endpoint, key_id = signing_s3
    wrong = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=SECRET
    )
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        wrong.list_objects_v2(Bucket="landing-bucket")
    urllib.request.urlopen(f"{endpoint}/moto-api/").close()


def test_a_wrong_secret_is_one_line_without_the_secret(tmp_path: Path, signing_s3) -> None:
    endpoint, key_id = signing_s3
    env = base_env(
        tmp_path,
        BILLING_LANDING_URI="s3://landing-bucket/zone",
        BILLING_S3_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=key_id,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_REGION="us-east-1",
    )
    # The first request is a HEAD, whose refusal has no body to say SignatureDoesNotMatch in: 403 Forbidden.
    message, _ = one_error(run_process(env), "refused the credentials", "Forbidden", "AWS_SECRET_ACCESS_KEY")
    assert "s3://landing-bucket/zone" in message


def test_sigterm_is_one_line_and_exit_143(tmp_path: Path) -> None:
    sample(tmp_path)
    done = run_process(base_env(tmp_path), stop_on="[ingest]")
    message, text = one_error(done, "SIGTERM", "run the same command again")
    assert done.returncode == 143
    assert "DagsterExecutionInterruptedError" in text or "KeyboardInterrupt" in text


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB file system (tmpfs), nearly full: the warehouse goes there."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)]).returncode:
        pytest.skip("a tiny file system needs root (mount -t tmpfs)")
    try:
        # Leave 64 KiB: the tables' first commits fit, the readings' data files do not.
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "ballast").write_bytes(b"\0" * (free - 64 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_is_one_line(tmp_path: Path, tiny_disk: Path) -> None:
    sample(tmp_path)
    warehouse = tiny_disk / "warehouse"
    message, _ = one_error(
        run_process(base_env(tmp_path, BILLING_WAREHOUSE_URI=str(warehouse))), "No space left on device"
    )
    assert str(tiny_disk) in message


def test_a_damaged_log_found_during_a_run_is_one_line(tmp_path: Path) -> None:
    sample(tmp_path)
    # deduplicated_raw with versions 0..2, then version 1 lost: a table that lost a commit.
    uri = str(tmp_path / "warehouse" / DEDUPLICATED_RAW.name)
    DeltaTable.create(uri, schema=DEDUPLICATED_RAW.schema, partition_by=[DEDUPLICATED_RAW.partition_by])
    for _ in range(2):
        write_deltalake(uri, DEDUPLICATED_RAW.schema.empty_table(), mode="append")
    (Path(uri) / "_delta_log" / f"{1:020d}.json").unlink()
    one_error(run_process(base_env(tmp_path)), "table deduplicated_raw", "Delta log version 1")
