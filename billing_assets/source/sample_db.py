"""A sample source database consistent with the sample readings.

It holds what the analysts' rules must cope with: products sharing a display name,
agreements that switch product mid-period, open-ended and zero-length agreements, an
agreement that ended before the readings, and meterpoints with readings but no agreement.
"""

import random
import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

# Shaped like the case study's database: an integer ``id`` surrogate beside the 10-hex-character
# text ``product_id`` that agreements reference.
PRODUCTS = [
    (1, "1dff0f3048", "Standard Variable", 1),
    (2, "6b2e9a4c11", "Standard Variable", 1),
    (3, "a40c7e5d92", "Fixed 12M", 0),
    (4, "03f8b1d6e7", "Fixed 12M", 0),
    (5, "c95d20a8f4", "Green Fixed", 0),
    (6, "7e41fb0c3a", "Agile Octopus", 1),
]
REGIONS = ["London", "South East", "North West", "Scotland", "Wales"]

# The case study's DDL: declared types only, no primary or foreign keys, dates as DATE text.
SCHEMA = """
CREATE TABLE product (id INTEGER, product_id TEXT, display_name TEXT, is_variable INTEGER);
CREATE TABLE meterpoint (meterpoint_id TEXT, region TEXT);
CREATE TABLE agreement (
    agreement_id INTEGER, agreement_valid_from DATE, agreement_valid_to DATE,
    product_id TEXT, meterpoint_id TEXT, account_id TEXT
);
"""


def write_sample_source(path: str, meterpoints: Sequence[str], first_day: date, seed: int = 7) -> None:
    """Create (or replace) the source database at ``path`` for the given meterpoints."""
    rng = random.Random(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).unlink(missing_ok=True)
    agreements = []

    def agree(start: date, end: date | None, product: str, meterpoint: str, account: str) -> None:
        agreements.append(
            (len(agreements) + 1, start.isoformat(), end.isoformat() if end else None, product, meterpoint, account)
        )

    for index, meterpoint in enumerate(meterpoints):
        account = f"{rng.getrandbits(40):010x}"
        product = rng.choice(PRODUCTS)[1]
        kind = index % 20
        if kind == 0:
            continue  # readings, but never an agreement
        if kind == 1:
            agree(first_day - timedelta(days=400), first_day - timedelta(days=10), product, meterpoint, account)
            continue  # the agreement ended before the readings start
        start = first_day - timedelta(days=rng.randint(30, 400))
        if kind in (2, 3):
            # A switch in the middle of the period: the old agreement ends the day the new one starts.
            switch = first_day + timedelta(days=2)
            other = next(p[1] for p in PRODUCTS if p[2] != dict((q[1], q[2]) for q in PRODUCTS)[product])
            agree(start, switch, product, meterpoint, account)
            agree(switch, None, other, meterpoint, account)
            continue
        if kind == 4:
            agree(first_day + timedelta(days=1), first_day + timedelta(days=1), product, meterpoint, account)
        agree(start, None, product, meterpoint, account)

    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO product VALUES (?, ?, ?, ?)", PRODUCTS)
        conn.executemany(
            "INSERT INTO meterpoint VALUES (?, ?)",
            [(mp, REGIONS[i % len(REGIONS)]) for i, mp in enumerate(meterpoints)],
        )
        conn.executemany("INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?)", agreements)
    conn.close()
