"""``scripts/spark-connect``: a busy port is an error, not a server that "started" at once."""

import socket
from pathlib import Path

import pytest

from billing_assets.connect_server import start_server
from billing_assets.local_processes import free_port


def test_a_port_something_else_listens_on_is_refused(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} is already in use"):
            start_server(port, tmp_path / "connect.log")
    assert not (tmp_path / "connect.log").exists()  # nothing was started


def test_a_free_port_is_free() -> None:
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # would raise if anything held it
