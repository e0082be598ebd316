"""Peak memory of ingesting one large landing file, for several file sizes.

``python -m billing_assets.bench.large_file --sizes 100 400 [--driver-memory 1g] [--piece-mib 64] [--dir D]``
generates, for each size in MB, one JSON-lines file in one ingestion hour (readings spread
over 6 days of recording hours, unique record ids), materialises that hour's ``raw_readings``
(the ingestion ``process`` runs first) in a fresh process with its own Spark JVM, and samples
the resident memory of the whole process tree every 0.2 s: the Python driver, the Spark JVM and
the Python workers the JVM starts, and their sum. Then it checks that every reading landed in
``raw_readings`` once, with the generated total.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psutil
from deltalake import DeltaTable

from billing_assets.bench.memory import MIB, Sampler
from billing_assets.domain.keys import parse_hour_key
from billing_assets.domain.limits import DEFAULT_PIECE_BYTES

HOUR = "2026-03-10-08"
#: Half hours a meter has in the file: six days' worth, all inside the watermark of ``HOUR``.
SLOTS = 6 * 48


def write_readings(folder: Path, megabytes: float, name: str = "big.json") -> dict[str, int]:
    """One JSON-lines file of about ``megabytes`` MB in ``folder``; its readings count, total (Wh) and size."""
    hour = parse_hour_key(HOUR)
    folder.mkdir(parents=True, exist_ok=True)
    target, written, count, watt_hours = int(megabytes * 1e6), 0, 0, 0
    with open(folder / name, "w") as out:
        while written < target:
            lines = []
            for n in range(count, count + 10_000):
                meter, slot = divmod(n, SLOTS)
                start = hour - timedelta(minutes=30 * (slot + 1))
                wh = n % 997
                watt_hours += wh
                record = {
                    "record_id": f"r{n}",
                    "meterpoint_id": f"mp{meter:06d}",
                    "interval_start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "consumption": wh / 1000,
                }
                lines.append(json.dumps(record) + "\n")
            text = "".join(lines)
            out.write(text)
            written += len(text)
            count += len(lines)
    return {"readings": count, "watt_hours": watt_hours, "bytes": written}


class TreePeak(Sampler):
    """Peak RSS of a process tree, by kind and in sum, sampled in a thread."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(interval)
        self.root = root
        #: driver, jvm, workers (all Python workers together), total, and the largest single worker.
        self.peaks = {"driver": 0, "jvm": 0, "workers": 0, "total": 0, "one_worker": 0}

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        now = {"driver": 0, "jvm": 0, "workers": 0}
        for proc in tree:
            try:
                rss, name = proc.memory_info().rss, proc.name()
            except psutil.NoSuchProcess:
                continue
            kind = "driver" if proc.pid == self.root else "jvm" if name == "java" else "workers"
            now[kind] += rss
            if kind == "workers":
                self.peaks["one_worker"] = max(self.peaks["one_worker"], rss)
        now["total"] = sum(now.values())
        for kind, value in now.items():
            self.peaks[kind] = max(self.peaks[kind], value)


def materialize_raw(root: str, piece_bytes: int = DEFAULT_PIECE_BYTES, master: str = "local[2]") -> None:
    """Materialise ``raw_readings`` for ``HOUR`` from ``root``/landing into ``root``/warehouse (this process's JVM)."""
    import dagster as dg

    from billing_assets.definitions import ASSETS
    from billing_assets.defs.ingestion import raw_readings
    from billing_assets.resources import build_resources
    from billing_assets.settings import load_settings

    settings = replace(load_settings(), landing_piece_bytes=piece_bytes)
    resources = build_resources(f"{root}/landing", f"{root}/warehouse", master, f"{root}/source.db", settings=settings)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        ASSETS, selection=list(raw_readings.keys), resources=resources, instance=instance, partition_key=HOUR
    )
    if not result.success:
        raise SystemExit(1)


def spark_conf_dir(root: Path, driver_memory: str, defaults: Path | None = None) -> Path:
    """A ``SPARK_CONF_DIR`` with this project's log settings, ``defaults``' settings and the driver's heap size."""
    conf = root / "spark_conf"
    conf.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).resolve().parent.parent / "spark_conf" / "log4j2.properties", conf)
    settings = defaults.read_text() if defaults is not None else ""
    (conf / "spark-defaults.conf").write_text(f"{settings}\nspark.driver.memory {driver_memory}\n")
    return conf


def run_ingestion(
    root: Path, driver_memory: str, piece_mib: float | None, defaults: Path | None = None, timeout: float = 3600
) -> tuple[int, float, dict[str, int], str]:
    """Materialise ``raw_readings`` in a fresh process: exit code, seconds, peak memory, the end of its output."""
    env = {**os.environ, "SPARK_CONF_DIR": str(spark_conf_dir(root, driver_memory, defaults))}
    piece_bytes = DEFAULT_PIECE_BYTES if piece_mib is None else int(piece_mib * MIB)
    command = [
        sys.executable,
        "-c",
        f"from billing_assets.bench.large_file import materialize_raw; materialize_raw({str(root)!r}, {piece_bytes})",
    ]
    started = time.monotonic()
    with open(root / "run.log", "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        with TreePeak(proc.pid) as peak:
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
    lines = (root / "run.log").read_text(errors="replace").splitlines()
    failure = [line for line in lines if "OutOfMemoryError" in line or "Java heap space" in line][:1]
    return code, time.monotonic() - started, peak.peaks, "\n".join(failure or lines[-3:])


def main(argv: list[str] | None = None) -> int:
    """Generate, process and measure each size; one line of figures per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[100, 400], help="file sizes in MB")
    parser.add_argument("--driver-memory", default="1g", help="spark.driver.memory of the run (default 1g)")
    parser.add_argument("--piece-mib", type=float, default=None, help="the piece size in MiB (default: 64)")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="large-file-bench-"))
    try:
        for megabytes in args.sizes:
            root = scratch / f"{megabytes:g}MB"
            shutil.rmtree(root, ignore_errors=True)
            expected = write_readings(root / "landing" / f"ingestion_hour={HOUR}", megabytes)
            code, seconds, peaks, tail = run_ingestion(root, args.driver_memory, args.piece_mib)
            figures = {"file_mb": round(expected["bytes"] / 1e6, 1), "readings": expected["readings"]}
            figures |= {"exit": code, "seconds": round(seconds, 1)}
            figures |= {f"peak_{kind}_mib": round(value / MIB) for kind, value in peaks.items()}
            if code == 0:
                raw = DeltaTable(str(root / "warehouse" / "raw_readings")).to_pyarrow_table(
                    columns=["record_id", "consumption"]
                )
                figures["raw_rows"] = raw.num_rows
                figures["distinct_ids"] = len(set(raw.column("record_id").to_pylist()))
                watt_hours = sum(round(c * 1000) for c in raw.column("consumption").to_pylist())
                figures["total_matches"] = watt_hours == expected["watt_hours"]
            else:
                figures["error"] = tail
            print(json.dumps(figures), flush=True)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
