"""The Dagster instance shared by the UI and headless runs."""

import os
import shutil
from pathlib import Path

import dagster as dg

DEFAULT_DAGSTER_HOME = "data/dagster_home"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def ensure_dagster_home() -> str:
    """Use ``DAGSTER_HOME``, defaulting to ``data/dagster_home`` with the project's dagster.yaml."""
    home = os.environ.get("DAGSTER_HOME") or os.path.abspath(DEFAULT_DAGSTER_HOME)
    os.makedirs(home, exist_ok=True)
    config = PROJECT_ROOT / "dagster.yaml"
    target = Path(home) / "dagster.yaml"
    if config.exists() and not target.exists():
        shutil.copyfile(config, target)
    os.environ["DAGSTER_HOME"] = home
    return home


def get_instance() -> dg.DagsterInstance:
    """The persistent instance the UI shows (created on first use)."""
    ensure_dagster_home()
    return dg.DagsterInstance.get()
