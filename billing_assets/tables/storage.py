"""Where the warehouse's files live: one value that delta-rs, the executors and polars all use.

Spark here has no S3 connector (no hadoop-aws jars), so table files on S3 are read and
written by pyarrow inside ``mapInArrow`` tasks, and delta-rs commits the log. Both take their
settings from the same options: the ``str_dict()`` of a ``dagster_deltalake`` storage config
(``LocalConfig``, ``S3Config``), which is also what ``polars.read_delta`` accepts. Only pyarrow
and the standard library are used, so the value can be pickled into executor tasks.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow.fs as pafs


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

    def _s3(self) -> pafs.S3FileSystem:
        options = {key.lower().removeprefix("aws_"): value for key, value in self.options.items()}
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
