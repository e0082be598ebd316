"""What the landing sensor should request: planning over a listing, unit-tested without a sensor or instance.

An ingestion hour is requested once it is complete (wall clock past H + 1 h + 5 min) and
again whenever its set of files changes (a file added, or re-written with a new size or
version). Contiguous hours are grouped into one request, so a backlog is one Spark run per
range rather than one run and one JVM start per hour.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from billing_assets.domain.keys import parse_hour_key
from billing_assets.domain.watermark import is_complete
from billing_assets.landing.files import LandingFile
from billing_assets.partitions import MAX_HOURS_PER_RUN, ingestion_hours, key_ranges


def fingerprint(files: Sequence[LandingFile]) -> str:
    """Identity of an hour's file set: names, sizes and versions (mtime or ETag)."""
    text = "\n".join(f"{f.name}|{f.size}|{f.version}" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class IngestRequest:
    """One run: a contiguous range of ingestion hours and the identity of what it saw."""

    first: str
    last: str
    run_key: str


@dataclass
class IngestPlan:
    """The requests of one sensor tick, the new cursor, and why nothing else was requested."""

    requests: list[IngestRequest]
    cursor: str
    waiting: list[str] = field(default_factory=list)
    too_early: list[str] = field(default_factory=list)

    def skip_reason(self, rejected: Sequence[str]) -> str:
        """A one-line explanation for a tick that requested nothing."""
        parts = ["no new or changed files in complete ingestion hours"]
        if self.waiting:
            parts.append(f"{len(self.waiting)} hour(s) not complete yet ({self.waiting[0]} .. {self.waiting[-1]})")
        if self.too_early:
            parts.append(f"{len(self.too_early)} hour(s) before the first partition ignored")
        if rejected:
            parts.append(f"rejected folder names: {list(rejected)[:5]}")
        return "; ".join(parts)


def plan_ingestion(
    listing: Mapping[str, Sequence[LandingFile]], cursor: str | None, now: datetime, first_hour: str
) -> IngestPlan:
    """Hours to (re-)ingest given the listing and what earlier ticks saw (``cursor``: JSON hour -> fingerprint)."""
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    changed, waiting, too_early = [], [], []
    for key in sorted(listing):
        if key < first_hour:
            too_early.append(key)
        elif not is_complete(parse_hour_key(key), now):
            waiting.append(key)
        elif seen.get(key) != fingerprint(listing[key]):
            changed.append(key)
    requests = []
    for key_range in key_ranges(ingestion_hours, changed, MAX_HOURS_PER_RUN):
        first, last = key_range.start, key_range.end
        hours = ingestion_hours.get_partition_keys_in_range(key_range)
        identity = hashlib.sha256("".join(fingerprint(listing[h]) for h in hours).encode()).hexdigest()[:16]
        requests.append(IngestRequest(first, last, f"raw_readings:{first}..{last}:{identity}"))
    # Keep entries only for folders that still exist; record every complete hour now requested.
    new_seen = {key: value for key, value in seen.items() if key in listing}
    new_seen.update({key: fingerprint(listing[key]) for key in changed})
    return IngestPlan(requests, json.dumps(new_seen, sort_keys=True), waiting, too_early)
