"""The Dagster instance shared by the UI and headless runs."""

import os
import shutil
import socket
from pathlib import Path

import dagster as dg

from billing_assets.tables.write_intents import process_alive

DEFAULT_DAGSTER_HOME = "data/dagster_home"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Copied into a new DAGSTER_HOME. `dagster dev` warns about a dagster.yaml in the folder it starts
#: in when that folder is not DAGSTER_HOME, so scripts/run starts it inside DAGSTER_HOME.
INSTANCE_CONFIG = PROJECT_ROOT / "dagster.yaml"


def ensure_dagster_home() -> str:
    """Use ``DAGSTER_HOME``, defaulting to ``data/dagster_home`` with the project's instance configuration."""
    home = os.environ.get("DAGSTER_HOME") or os.path.abspath(DEFAULT_DAGSTER_HOME)
    os.makedirs(home, exist_ok=True)
    target = Path(home) / "dagster.yaml"
    if INSTANCE_CONFIG.exists() and not target.exists():
        shutil.copyfile(INSTANCE_CONFIG, target)
    os.environ["DAGSTER_HOME"] = home
    return home


def get_instance() -> dg.DagsterInstance:
    """The persistent instance the UI shows (created on first use)."""
    ensure_dagster_home()
    return dg.DagsterInstance.get()


#: Runs started by a headless ``process`` carry the host and PID that execute them in-process,
#: so a later command can tell a run whose process was killed from one still running.
HOST_TAG, PID_TAG = "billing/host", "billing/pid"


def process_run_tags() -> dict[str, str]:
    """Tags naming this process as the one executing a run."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the unfinished runs of headless processes on this host that no longer exist; free their slots.

    A run executed in-process by a killed command stays STARTED for ever, and keeps its
    claim on its pool's single slot (``dagster.yaml``), so every later run of that pool
    would wait for it. No run launcher watches such runs, so the next command does.
    """
    host, abandoned = socket.gethostname(), []
    runs = instance.get_runs(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host})
    )
    for run in runs:
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid <= 0 or pid == os.getpid() or process_alive(pid):
            continue
        instance.report_run_failed(run, f"the process executing this run (pid {pid} on {host}) no longer exists")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        abandoned.append(run.run_id)
    return abandoned
