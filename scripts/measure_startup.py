"""What a new user waits for: ``./scripts/run`` in a fresh clone, until every asset has a materialisation.

    git clone <repository> /tmp/fresh
    .venv/bin/python scripts/measure_startup.py /tmp/fresh 3311

Starts the clone's ``./scripts/run`` on the given port, prints the seconds until the UI answers
(the clone's ``.venv`` set-up included), then polls the clone's instance every 3 s and prints the
seconds until every asset has a materialisation and no run is unfinished, the number of runs
and their statuses; then stops the script as Ctrl-C does.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg


def asset_keys(clone: Path) -> list[dg.AssetKey]:
    """Every asset key of the clone's code location (read by the clone's own interpreter)."""
    code = "from billing_assets.definitions import defs; g = defs().resolve_asset_graph(); "
    code += "print(' '.join(k.to_user_string() for k in g.get_all_asset_keys()))"
    found = subprocess.run([str(clone / ".venv/bin/python"), "-c", code], cwd=clone, capture_output=True, text=True)
    return [dg.AssetKey(name) for name in found.stdout.split()]


def main(clone: Path, port: str) -> None:
    """Time the start-up of ``clone`` on ``port``."""
    began = time.monotonic()
    with open(clone / "measure_startup.log", "wb") as log:
        proc = subprocess.Popen(
            ["./scripts/run"],
            cwd=clone,
            env={**os.environ, "BILLING_UI_PORT": port},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                break
            except OSError:
                time.sleep(1)
        answered = time.monotonic() - began
        print(f"the UI answered {answered:.0f} s after the start (set-up included)", flush=True)
        instance = dg.DagsterInstance.from_config(str(clone / "data" / "dagster_home"))
        keys = asset_keys(clone)
        while True:
            runs = instance.get_runs()
            every = all(instance.get_latest_materialization_event(key) is not None for key in keys)
            if every and runs and all(run.is_finished for run in runs):
                break
            time.sleep(3)
        settled = time.monotonic() - began - answered
        statuses = sorted({run.status.value for run in runs})
        print(f"every asset materialised {settled:.0f} s after the UI answered: {len(runs)} runs, {statuses}")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(120)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), sys.argv[2])
