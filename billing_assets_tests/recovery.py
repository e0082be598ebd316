"""The harness of the recovery tests: ``billing-assets process`` faulted, re-run, and compared with a clean run.

A small sample of recent hours (so the daily partitions since the start are few) is landed
once per test file; each case gets its own instance and warehouse, runs the real command with a
fault armed (``faults``), runs it again as a user would, and compares every table, row by row,
with a clean run's. Every data file on disk must be one the Delta log added.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from deltalake import DeltaTable

from billing_assets.domain.watermark import HOUR, latest_complete_hour
from billing_assets.instance import INSTANCE_CONFIG
from billing_assets.tables.schemas import content

BIN = Path(sys.executable).parent
#: Long enough for a cold JVM and every run of the sample on a loaded two-core machine.
COMMAND_TIMEOUT = 600


def _reset_signals() -> None:
    # A shell may start the tests with SIGINT/SIGTERM ignored; children inherit that.
    os.setsid()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


@dataclass
class Sample:
    """A landing zone and source database, and the ``process`` window that covers them."""

    root: Path
    start: datetime
    hours: int
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def recent(cls, root: Path, hours: int = 6, meterpoints: int = 4) -> "Sample":
        """``hours`` ingestion hours ending at the latest complete one."""
        start = latest_complete_hour(datetime.now(UTC)) - (hours - 1) * HOUR
        sample = cls(root, start, hours)
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(BIN / "billing-assets"),
                "generate-sample",
                "--out",
                str(root / "landing"),
                "--source-db",
                str(root / "source.db"),
                "--meterpoints",
                str(meterpoints),
                "--start",
                f"{start:%Y-%m-%dT%H}",
                "--hours",
                str(hours),
            ],
            check=True,
            capture_output=True,
        )
        return sample

    def process_args(self) -> list[str]:
        """``process`` over the sample's hours."""
        end = self.start + self.hours * HOUR
        return ["process", "--start", f"{self.start:%Y-%m-%dT%H}", "--end", f"{end:%Y-%m-%dT%H}"]

    def environment(self, case: Path, **extra: str) -> dict[str, str]:
        """The variables of one case: its own instance and warehouse, the shared landing and source."""
        home = case / "home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
        return {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "BILLING_LANDING_URI": str(self.root / "landing"),
            "BILLING_WAREHOUSE_URI": str(case / "warehouse"),
            "BILLING_SOURCE_DB": str(self.root / "source.db"),
            "BILLING_START_DATE": self.start.date().isoformat(),
            "BILLING_SPARK_MASTER": "local[1]",
            **extra,
        }


def run_command(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    """Run a command to its end, its output kept in ``log``."""
    with open(log, "w") as out:
        done = subprocess.run(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT, preexec_fn=_reset_signals
        )
    return subprocess.CompletedProcess(done.args, done.returncode, log.read_text(), "")


def process(sample: Sample, env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    """``billing-assets process`` over the sample."""
    return run_command([str(BIN / "billing-assets"), *sample.process_args()], env, log)


def faulted(sample: Sample, env: dict[str, str], log: Path, table: str, point: str, signal_name: str):
    """``process`` with a fault armed at ``table``'s first commit (see ``faults``)."""
    command = [sys.executable, "-m", "billing_assets_tests.faults", table, point, signal_name, "--"]
    return run_command([*command, *sample.process_args()], env, log)


def tables(warehouse: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted: what a clean run and a recovered run must agree on."""
    out = {}
    for folder in sorted(warehouse.iterdir()) if warehouse.is_dir() else []:
        if (folder / "_delta_log").is_dir():
            data = DeltaTable(str(folder)).to_pyarrow_table()
            out[folder.name] = sorted(tuple(str(v) for v in content(row).values()) for row in data.to_pylist())
    return out


def files_outside_the_log(warehouse: Path) -> dict[str, list[str]]:
    """Table -> data files on disk that no commit of its log ever added (and intents left behind)."""
    out = {}
    for folder in sorted(warehouse.iterdir()) if warehouse.is_dir() else []:
        log = folder / "_delta_log"
        if not log.is_dir():
            continue
        added = set()
        for commit in log.glob("*.json"):
            for line in commit.read_text().splitlines():
                if line.strip() and "add" in (action := json.loads(line)):
                    added.add(action["add"]["path"].rsplit("/", 1)[-1])
        on_disk = {p.name for p in folder.rglob("*") if p.is_file() and "_delta_log" not in p.parts}
        leftovers = sorted(on_disk - added) + sorted(p.name for p in log.glob("_billing_assets_write.*"))
        if leftovers:
            out[folder.name] = leftovers
    return out


_clean: dict[tuple[Path, str], tuple[dict, int]] = {}


def clean_run(sample: Sample) -> tuple[dict, int]:
    """The tables of a clean run of the sample and the warehouse's size in bytes.

    Redone when the day changed since: a source load snapshots today's source.
    """
    day = today_key()
    if (sample.root, day) not in _clean:
        case = sample.root / f"clean-{day}"
        result = process(sample, sample.environment(case), case / "process.log")
        assert result.returncode == 0, result.stdout[-3000:]
        size = sum(p.stat().st_size for p in (case / "warehouse").rglob("*") if p.is_file())
        _clean[sample.root, day] = (tables(case / "warehouse"), size)
    return _clean[sample.root, day]


def assert_rerun_converges(sample: Sample, case: Path, table: str, point: str, signal_name: str) -> dict[str, str]:
    """Fault the command at ``table``'s commit, run it again, compare with a clean run; the case's environment."""
    env = sample.environment(case)
    killed = faulted(sample, env, case / "killed.log", table, point, signal_name)
    assert ended_by(killed, signal_name), killed.stdout[-3000:]

    rerun = process(sample, env, case / "rerun.log")
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "[recovery]" in rerun.stdout, rerun.stdout[-3000:]
    assert tables(case / "warehouse") == clean_run(sample)[0]
    assert files_outside_the_log(case / "warehouse") == {}
    return env


def today_key() -> str:
    """Today's local day in the default billing zone: the day a source load snapshots."""
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(os.environ.get("BILLING_TIMEZONE") or "Europe/London")).date().isoformat()


def ended_by(result: subprocess.CompletedProcess, signal_name: str) -> bool:
    """Whether the command ended because of the fault's signal (not by finishing)."""
    signum = getattr(signal, f"SIG{signal_name}")
    return result.returncode in (-signum, 128 + signum) or (signal_name == "TERM" and result.returncode not in (0,))
