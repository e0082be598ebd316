"""Processes and ports on this machine: free ports, waiting until a server answers, liveness, stopping.

The Spark Connect server, the bench's S3-compatible server, the tests' servers and the
recovery of killed runs all need these; they live here once.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(ready, what: str, timeout: float, proc: subprocess.Popen | None = None, interval: float = 0.3) -> None:
    """Return once ``ready()`` is true; fail after ``timeout`` seconds, or early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited with {proc.returncode} before {what}")
        if ready():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; fail early if ``proc`` exits."""
    wait_until(lambda: listening(port), f"port {port} opened", timeout, proc)


def answers(url: str) -> bool:
    """Whether ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 300
    except OSError:
        return False


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Return once ``url`` answers 2xx; fail after ``timeout`` seconds, or early if ``proc`` exits."""
    wait_until(lambda: answers(url), f"{url} answered", timeout, proc)


def process_started(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (None: no such process, or not Linux)."""
    try:
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` is a live process on this host: not gone, not a zombie, and (given ``started``) not a reuse."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        if Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
            return False
    except (OSError, IndexError):
        return True
    return started is None or process_started(pid) in (None, started)


def stop_process_group(process: int | subprocess.Popen, timeout: float = 20) -> None:
    """Stop the process group led by ``process`` (started with ``start_new_session``): SIGTERM, then SIGKILL."""
    pid = process if isinstance(process, int) else process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not isinstance(process, int) and process.poll() is not None:
                break  # reaped: a child of ours never shows as gone until waited for
            if not process_alive(pid):
                break
            time.sleep(0.2)
        else:
            continue
        break
    if not isinstance(process, int):
        process.wait(timeout=timeout)


def start_s3_server(port: int, log: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """An S3-compatible server (moto in server mode) on 127.0.0.1:``port``, in its own process group, answering.

    ``env`` adds variables to the server's environment (moto's own settings).
    """
    out = open(log, "wb") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log is not None:
            out.close()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", 30, proc)
    except BaseException:
        stop_process_group(proc.pid)
        raise
    return proc
