"""``scripts/run`` serves the UI on 127.0.0.1 unless told otherwise (checked on the command it runs)."""

import os
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def exec_argv(env: dict[str, str]) -> list[str]:
    """The argv of the script's ``dagster dev ...`` command, expanded by bash in ``env``."""
    [command] = re.findall(r"dagster dev [^)\n]*", (ROOT / "scripts/run").read_text())
    out = subprocess.run(
        ["bash", "-c", f"printf '%s\\n' {command}"], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def test_run_binds_the_ui_to_loopback_by_default() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"BILLING_UI_HOST", "BILLING_UI_PORT"}}
    argv = exec_argv(env)
    assert argv[:2] == ["dagster", "dev"]
    assert argv[argv.index("-h") + 1] == "127.0.0.1"
    assert argv[argv.index("-p") + 1] == "3000"
    assert not {"0.0.0.0", "::", "--host"} & set(argv)


def test_run_binds_elsewhere_only_when_asked() -> None:
    argv = exec_argv({**os.environ, "BILLING_UI_HOST": "192.0.2.1", "BILLING_UI_PORT": "3999"})
    assert argv[argv.index("-h") + 1 :][:1] == ["192.0.2.1"] and "3999" in argv
    assert shlex.join(argv).startswith("dagster dev -w workspace.yaml")
