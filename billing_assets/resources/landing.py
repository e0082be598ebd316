"""The landing zone: Hive-style ``ingestion_hour=YYYY-MM-DD-HH/`` folders on local disk or S3.

fsspec gives one interface over both, so neither the sensor nor ``raw_readings`` branches
on where the files live; only the storage options differ.
"""

import posixpath
from collections.abc import Sequence

import dagster as dg
import fsspec
from fsspec.core import url_to_fs
from pydantic import Field

from billing_assets.domain.keys import parse_hour_key
from billing_assets.domain.limits import DEFAULT_MAX_READING_KWH, DEFAULT_PIECE_BYTES
from billing_assets.landing.files import HOUR_FOLDER, LandingFile, folder_hour, listed_file, relative_path

#: Up to this many hours a run lists their folders one by one; beyond it, the zone in one listing.
FOLDER_LISTING_LIMIT = 48


class LandingZone(dg.ConfigurableResource):
    """Where readings land: a local folder or ``s3://bucket/prefix``."""

    uri: str = Field(description="Root of the landing zone (local path or s3://bucket/prefix).")
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint override.")
    access_key_id: str | None = Field(default=None, description="S3 access key (use dg.EnvVar).")
    secret_access_key: str | None = Field(default=None, description="S3 secret key (use dg.EnvVar).")
    session_token: str | None = Field(
        default=None, description="S3 session token of temporary credentials (use dg.EnvVar)."
    )
    max_reading_kwh: float = Field(
        default=DEFAULT_MAX_READING_KWH, description="Plausibility ceiling of one reading, kWh (inclusive)."
    )
    piece_bytes: int = Field(
        default=DEFAULT_PIECE_BYTES, description="Bytes of a landing file one Spark task reads at most."
    )

    def storage_options(self) -> dict:
        """fsspec options for this zone (also shipped to Spark executors)."""
        if not self.uri.startswith("s3://"):
            return {}
        options: dict = {}
        if self.endpoint_url:
            options["client_kwargs"] = {"endpoint_url": self.endpoint_url}
        if self.access_key_id:
            options["key"] = self.access_key_id
            options["secret"] = self.secret_access_key
            if self.session_token:  # temporary credentials are refused without it
                options["token"] = self.session_token
        return options

    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = url_to_fs(self.uri, **self.storage_options())
        return fs, root.rstrip("/")

    def list_all(self) -> tuple[dict[str, list[LandingFile]], list[str]]:
        """Every file of the zone by ingestion hour, in one recursive listing, plus rejected folder names.

        Folders whose name is not exactly ``ingestion_hour=YYYY-MM-DD-HH`` are reported, never
        interpreted: their text must not reach a path, a partition key or a Delta predicate.
        """
        fs, root = self._fs()
        if not fs.exists(root):
            bucket = root.split("/", 1)[0]
            if self.uri.startswith("s3://") and not fs.exists(bucket):
                # An empty zone is normal; a zone whose bucket is gone would silently ingest nothing.
                raise FileNotFoundError(f"Bucket '{bucket}' does not exist (the landing zone {self.uri})")
            return {}, []
        by_hour: dict[str, list[LandingFile]] = {}
        rejected: set[str] = set()
        for path, info in sorted(fs.find(root, detail=True).items()):
            relative = relative_path(path, root)
            folder = relative.split("/", 1)[0]
            key = folder_hour(folder)
            if "/" not in relative or key is None:
                rejected.add(folder)
                continue
            by_hour.setdefault(key, []).append(listed_file(key, fs.unstrip_protocol(path), relative, info))
        return by_hour, sorted(rejected)

    def list_files(self, hour_key: str) -> list[LandingFile]:
        """Every file in one ingestion hour's folder, sorted by name (the arrival order we use)."""
        parse_hour_key(hour_key)
        fs, root = self._fs()
        folder = posixpath.join(root, HOUR_FOLDER.format(hour_key))
        if not fs.exists(folder):
            return []
        return [
            listed_file(hour_key, fs.unstrip_protocol(path), relative_path(path, root), info)
            for path, info in sorted(fs.find(folder, detail=True).items())
        ]

    def files_of(self, hour_keys: Sequence[str]) -> list[LandingFile]:
        """Every file of the given ingestion hours; a long range is one listing of the zone, not one per hour."""
        if len(hour_keys) <= FOLDER_LISTING_LIMIT:
            return [f for key in hour_keys for f in self.list_files(key)]
        by_hour, _ = self.list_all()
        return [f for key in hour_keys for f in by_hour.get(key, [])]
