"""Landing files: what a listed file is, which ones may be opened, and how to open one safely.

A landing file is a regular file directly inside an ``ingestion_hour=YYYY-MM-DD-HH/`` folder.
Anything else the listing finds (a symlink, a device, a file in a sub-folder, a name that could
escape its folder or smuggle text into a predicate) is quarantined unread with its own reason.
"""

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import fsspec

from billing_assets.domain.keys import parse_hour_key

_SAFE_NAME = re.compile(r"[A-Za-z0-9._=-][A-Za-z0-9._=+ -]*")


@dataclass(frozen=True)
class LandingFile:
    """One landing file: where to open it, its name relative to the root, and its identity."""

    ingestion_hour: str
    uri: str
    name: str
    size: int
    version: str
    #: Why the file must not be opened (``None``: it may); it is quarantined with this detail.
    rejected: str | None = None
    #: The quarantine reason that goes with ``rejected``.
    rejected_reason: str | None = None

    @property
    def root(self) -> str:
        """The landing zone's root URI (``uri`` without ``name``)."""
        return self.uri[: len(self.uri) - len(self.name)].rstrip("/")


class UnsafeLandingPath(ValueError):
    """A landing path that could escape its folder or smuggle text into a predicate."""


#: A landing folder's name; exactly this, with an hour key, or the folder is never read.
HOUR_FOLDER = "ingestion_hour={}"


def folder_hour(folder: str) -> str | None:
    """The ingestion hour key a folder name stands for, or ``None`` if it is not exactly ``ingestion_hour=<key>``."""
    key = folder.removeprefix("ingestion_hour=")
    if key == folder:
        return None
    try:
        parse_hour_key(key)
    except ValueError:
        return None
    return key


def relative_path(path: str, root: str) -> str:
    """``path`` below ``root``, verbatim."""
    # Not posixpath.relpath: it resolves a ``..`` inside an S3 key and would file ``H/../H2/x``
    # under H2; kept verbatim, the ``..`` part is seen and the file refused as unsafe.
    if not path.startswith(root + "/"):
        raise UnsafeLandingPath(f"listed path outside the landing zone: {path!r}")
    return path[len(root) + 1 :]


def listed_file(hour: str, uri: str, relative: str, info: dict) -> LandingFile:
    """The landing file of one listing entry (fsspec's ``info``), rejected with a reason if it must not be opened."""
    reason, detail = rejection(relative, info) or (None, None)
    return LandingFile(
        ingestion_hour=hour,
        uri=uri,
        name=relative,
        size=int(info.get("size") or 0),
        version=str(info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""),
        rejected=detail,
        rejected_reason=reason,
    )


class NotARegularFile(OSError):
    """A landing path that is a symlink, a folder, a device or a pipe, or resolves outside the zone."""


def check_file_name(name: str) -> str:
    """Accept plain file names only: no separators, no ``..``, no quotes or control characters."""
    if name in {".", ".."} or not _SAFE_NAME.fullmatch(name):
        raise UnsafeLandingPath(f"unsafe landing file name: {name!r}")
    return name


def rejection(relative: str, info: dict) -> tuple[str, str] | None:
    """``(reason, detail)`` for a listed path that must not be opened, else ``None``.

    ``relative`` is the path below the landing root (``ingestion_hour=.../name``); ``info`` is
    fsspec's listing entry, which reports a symlink as ``islink`` and never follows it.
    """
    parts = relative.split("/")[1:]
    try:
        for part in parts:
            check_file_name(part)
    except UnsafeLandingPath as exc:
        return "unsafe_file_name", str(exc)
    if len(parts) > 1:
        return "in_sub_folder", "files in a sub-folder of an ingestion hour are not part of it"
    if info.get("islink") or info.get("type", "file") != "file":
        kind = "a symlink" if info.get("islink") else f"of type {info.get('type')!r}"
        return "not_a_regular_file", f"{kind}: only regular files inside the landing zone are read"
    return None


def _open_local(path: str, root: str) -> BinaryIO:
    """A local file opened for reading, refusing symlinks anywhere below ``root`` and anything but a regular file."""
    real_root = os.path.realpath(root)
    # The listing saw a regular file, but it may have been swapped since: re-check at open time.
    if os.path.realpath(os.path.dirname(path)) != os.path.join(real_root, os.path.relpath(os.path.dirname(path), root)):
        raise NotARegularFile(f"the folder of {path!r} resolves outside its place in the landing zone")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise NotARegularFile(f"{path!r} became a symlink after it was listed") from exc
        raise
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise NotARegularFile(f"{path!r} is no longer a regular file")
    return handle


def _is_local(file_uri: str) -> bool:
    return file_uri.startswith("file://") or "://" not in file_uri


@contextmanager
def open_landing_file(file_uri: str, root_uri: str, storage_options: dict) -> Iterator[BinaryIO]:
    """One landing file open for random reads; local files are opened without following links."""
    if _is_local(file_uri):
        with _open_local(file_uri.removeprefix("file://"), root_uri.removeprefix("file://")) as handle:
            yield handle
        return
    # Object stores have no links: a key is the object; names were checked when listed.
    with fsspec.open(file_uri, "rb", **storage_options) as handle:
        yield handle


def read_landing_file(file_uri: str, root_uri: str, storage_options: dict) -> bytes:
    """The bytes of one landing file; local files are opened without following links."""
    with open_landing_file(file_uri, root_uri, storage_options) as handle:
        return handle.read()
