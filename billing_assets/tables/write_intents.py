"""Data files of a write that never committed: found by the write's intent, removed by the next writer.

A write announces itself before its tasks create any file: a small intent file in the table's
``_delta_log`` folder names the write (its files' name prefix) and the process that commits it.
The intent is removed once the write has committed. A failed write keeps it (tasks of the failed
job may still be finishing files), and so does a process that died (SIGKILL, power loss): once
the committing process has ended, the files of the write that the Delta log does not hold are
deleted by the next write to the table, or by ``process`` at start. Files of a live writer are
never touched, so concurrent writers stay safe; a writer on another host is presumed dead only after ``FOREIGN_GRACE``.
Files the log holds are kept whatever the intent says (the commit made it).
"""

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.fs as pafs

from billing_assets.local_processes import process_alive, process_started
from billing_assets.tables.storage import LOCAL, TableStorage

#: Intent files, next to the log's own files (a folder of their own would leave marker objects on S3).
PREFIX = "_billing_assets_write."
#: A writer on another host cannot be asked whether it lives; after this long it is presumed dead.
FOREIGN_GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class WriteIntent:
    """One write: its files' name prefix and the process that commits it."""

    file_prefix: str
    host: str
    pid: int
    started: int | None
    created: float

    @classmethod
    def mine(cls, file_prefix: str) -> "WriteIntent":
        """An intent of this process."""
        pid = os.getpid()
        return cls(file_prefix, socket.gethostname(), pid, process_started(pid), time.time())

    def abandoned(self, now: float) -> bool:
        """Whether the committing process is gone."""
        if self.host == socket.gethostname():
            return not process_alive(self.pid, self.started)
        return now - self.created > FOREIGN_GRACE_SECONDS


def _log_folder(storage: TableStorage, uri: str) -> tuple[pafs.FileSystem, str, str]:
    fs, root = storage.filesystem(uri)
    return fs, root, f"{root}/_delta_log"


def begin(uri: str, file_prefix: str, storage: TableStorage = LOCAL) -> str:
    """Record the intent of a write whose files start with ``file_prefix``; its path, for ``end``."""
    fs, _, log = _log_folder(storage, uri)
    path = f"{log}/{PREFIX}{file_prefix.rstrip('-')}"
    # The table exists (its log holds version 0): no folder to create, and on S3 creating one
    # would leave folder marker objects.
    with fs.open_output_stream(path) as out:
        out.write(json.dumps(WriteIntent.mine(file_prefix).__dict__).encode())
    return path


def end(uri: str, path: str, storage: TableStorage = LOCAL) -> None:
    """Drop a write's intent: it committed, or its files were cleaned up."""
    try:
        storage.delete_files(uri, [path])
    except FileNotFoundError:
        pass


def sweep(uri: str, live_files: Callable[[], set[str]], storage: TableStorage = LOCAL) -> int:
    """Delete the files of abandoned writes that the log does not hold; the number deleted.

    ``live_files`` gives the names (not paths) of the files the table's current version holds;
    it is asked only when an abandoned intent was found.
    """
    fs, root, log = _log_folder(storage, uri)
    intents = [
        info
        for info in fs.get_file_info(pafs.FileSelector(log, allow_not_found=True))
        if info.type == pafs.FileType.File and info.base_name.startswith(PREFIX)
    ]
    now, deleted, abandoned = time.time(), 0, []
    for info in intents:
        try:
            with fs.open_input_stream(info.path) as handle:
                intent = WriteIntent(**json.loads(handle.read()))
        except FileNotFoundError:
            continue  # another writer swept it
        except (ValueError, TypeError):
            # An intent cut short by the crash it records: its writer died while writing it.
            intent = WriteIntent(info.base_name.removeprefix(PREFIX) + "-", "", 0, None, 0.0)
        if intent.abandoned(now):
            abandoned.append((info.path, intent))
    if not abandoned:
        return 0
    files = [
        info
        for info in fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
        if info.type == pafs.FileType.File and not info.path.startswith(f"{log}/")
    ]
    live = live_files()
    for path, intent in abandoned:
        doomed = [
            info.path for info in files if info.base_name.startswith(intent.file_prefix) and info.base_name not in live
        ]
        try:
            storage.delete_files(uri, doomed)  # on S3, without leaving folder marker objects
        except FileNotFoundError:
            pass  # another writer swept them first
        deleted += len(doomed)
        end(uri, path, storage)
    return deleted
