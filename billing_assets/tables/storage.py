"""How the warehouse's files are reached: local disk, or S3 with its credentials.

One value that delta-rs, the executors and polars all use (``Warehouse`` holds one).

Spark here has no S3 connector (no hadoop-aws jars), so table files on S3 are read and
written by pyarrow inside ``mapInArrow`` tasks, and delta-rs commits the log. Both take their
settings from the same options: the ``str_dict()`` of a ``dagster_deltalake`` storage config
(``LocalConfig``, ``S3Config``), which is also what ``polars.read_delta`` accepts. Only pyarrow
and the standard library are used, so the value can be pickled into executor tasks.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

if TYPE_CHECKING:
    import s3fs


@dataclass(frozen=True)
class TableStorage:
    """delta-rs storage options (none: local disk) and the pyarrow filesystem they describe."""

    #: Holds credentials: kept out of ``repr`` so a log line or error never shows them.
    options: Mapping[str, str] = field(default_factory=dict, repr=False)

    def delta_options(self) -> dict[str, str] | None:
        """The options as delta-rs and polars take them (``storage_options=``)."""
        return dict(self.options) or None

    def filesystem(self, uri: str) -> tuple[pafs.FileSystem, str]:
        """The pyarrow filesystem holding ``uri`` and the path of ``uri`` on it (no trailing slash)."""
        if uri.startswith(("s3://", "s3a://")):
            return self._s3(), uri.split("://", 1)[1].rstrip("/")
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path.rstrip("/")

    def is_object_store(self, uri: str) -> bool:
        """Whether ``uri`` is on an object store, where folders are only key prefixes."""
        return "://" in uri and not uri.startswith("file://")

    def delete_files(self, uri: str, paths: Sequence[str]) -> None:
        """Delete the files at ``paths`` (as ``filesystem(uri)`` names them); on S3 nothing is left behind.

        pyarrow's ``S3FileSystem.delete_file`` writes an empty ``folder/`` marker object when the
        key it deletes was the last one under its folder, and has no option to stop it; s3fs
        deletes the keys only (up to 1,000 in one request).
        """
        if not paths:
            return
        if uri.startswith(("s3://", "s3a://")):
            self._s3_keys_client().rm(list(paths))
            return
        fs, _ = self.filesystem(uri)
        for path in paths:
            fs.delete_file(path)

    def _credentials(self) -> dict[str, str]:
        """The options without their ``aws_`` prefix, the session token under one name."""
        options = {key.lower().removeprefix("aws_"): value for key, value in self.options.items()}
        # dagster_deltalake's S3Config calls it ``token``; delta-rs takes either spelling.
        token = options.get("session_token") or options.get("token")
        return options | ({"session_token": token} if token else {})

    def _s3_keys_client(self) -> "s3fs.S3FileSystem":
        import s3fs  # here, not at the top: executor tasks unpickle this module and never delete

        options = self._credentials()
        kwargs: dict = {"client_kwargs": {}}
        if options.get("access_key_id"):
            kwargs |= {"key": options["access_key_id"], "secret": options.get("secret_access_key")}
            if options.get("session_token"):
                kwargs["token"] = options["session_token"]
        if options.get("region"):
            kwargs["client_kwargs"]["region_name"] = options["region"]
        endpoint = options.get("endpoint") or options.get("endpoint_url")
        if endpoint:
            kwargs["client_kwargs"]["endpoint_url"] = endpoint
        return s3fs.S3FileSystem(**kwargs)

    def _s3(self) -> pafs.S3FileSystem:
        options = self._credentials()
        kwargs: dict = {}
        if options.get("access_key_id"):
            kwargs |= {"access_key": options["access_key_id"], "secret_key": options.get("secret_access_key")}
            if options.get("session_token"):
                kwargs["session_token"] = options["session_token"]
        if options.get("region"):
            kwargs["region"] = options["region"]
        endpoint = options.get("endpoint") or options.get("endpoint_url")
        if endpoint:
            kwargs["endpoint_override"] = endpoint  # a full URL: its scheme says http or https
        # A file smaller than one multipart part goes up in a single PUT instead of three requests
        # (start, part, complete); errors then surface when the file is closed, which writers wait for.
        return pafs.S3FileSystem(allow_delayed_open=True, **kwargs)


#: A warehouse on local disk.
LOCAL = TableStorage()
