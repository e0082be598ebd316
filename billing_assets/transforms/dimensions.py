"""Type-2 history from daily snapshots, and the day-by-day coverage of agreements."""

from datetime import date
from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from billing_assets.tables.schemas import Dimension


def row_hash(columns: list[str]) -> F.Column:
    """A stable fingerprint of a row's values (null-safe)."""
    return F.sha2(F.to_json(F.struct(*[F.col(c) for c in columns])), 256)


def id_order(column: str) -> list[F.Column]:
    """Sort keys that put opaque string ids in a natural order: shorter first, then as text.

    Integer ids written without leading zeros (``"9"``, ``"10"``) keep their numeric order, and
    ids of one fixed width (10-hex-character text) sort as text.
    """
    return [F.length(column), F.col(column)]


def id_sort_key(value: str) -> tuple[int, str]:
    """:func:`id_order` for ids already collected to Python."""
    return len(value), value


def scd2_history(snapshots: DataFrame, dim: Dimension) -> DataFrame:
    """Versions of each source row from its daily snapshots.

    A version runs from the first load day it was seen to the first load day it was not
    (changed or deleted); the latest version of a row still present has no end. Being a
    function of the snapshots alone, rebuilding it is idempotent whatever order days load in.
    """
    columns = [name for name, _ in dim.columns]
    # The next load day of each load day. A lead() over all loads would be a window without
    # partitionBy (every row in one task); a join of the few load days with the later ones is not.
    days = snapshots.select("snapshot_date").distinct()
    later = days.select(F.col("snapshot_date").alias("_later"))
    loads = (
        days.join(F.broadcast(later), F.col("_later") > F.col("snapshot_date"), "left")
        .groupBy("snapshot_date")
        .agg(F.min("_later").alias("_next_load"))
    )
    by_key = Window.partitionBy(dim.key).orderBy("snapshot_date")
    rows = (
        snapshots.withColumn("row_hash", row_hash(columns))
        .join(loads, "snapshot_date")
        .withColumn("_prev_hash", F.lag("row_hash").over(by_key))
        .withColumn("_prev_next_load", F.lag("_next_load").over(by_key))
        .withColumn(
            "_starts",
            (
                F.col("_prev_hash").isNull()
                | (F.col("_prev_hash") != F.col("row_hash"))
                # absent on the load after its previous appearance: deleted, then re-added
                | (F.col("_prev_next_load") != F.col("snapshot_date"))
            ).cast("int"),
        )
        .withColumn("_version", F.sum("_starts").over(by_key))
    )
    versions = rows.groupBy(dim.key, "_version").agg(
        *[F.first(c).alias(c) for c in columns if c != dim.key],
        F.first("row_hash").alias("row_hash"),
        F.min("snapshot_date").alias("valid_from_date"),
        F.max_by("_next_load", "snapshot_date").alias("valid_to_date"),
    )
    return versions.withColumn("is_current", F.col("valid_to_date").isNull()).select(
        *columns, "valid_from_date", "valid_to_date", "is_current", "row_hash"
    )


def agreement_days(agreements: DataFrame, products: DataFrame, first_day: date, last_day: date) -> DataFrame:
    """One row per agreement per local day in ``[first_day, last_day]`` it covers or is active on.

    ``covers_readings``: ``valid_from <= day < valid_to`` (or open-ended), and for each
    meterpoint and day only one agreement covers: where the source overlaps, the one that
    started last (then the highest id) wins, so no reading is ever counted twice.
    ``is_active``: ``valid_from < day < valid_to`` (the active-agreements rule).
    """
    names = products.select(
        "product_id",
        F.col("display_name").alias("product_display_name"),
        F.col("is_variable").alias("product_is_variable"),
        F.lit(True).alias("_product_found"),
    )
    spans = agreements.select(
        "*",
        F.greatest("agreement_valid_from", F.lit(first_day)).alias("_from"),
        F.when(F.col("agreement_valid_to").isNull(), F.lit(last_day))
        .otherwise(F.least(F.date_sub("agreement_valid_to", 1), F.lit(last_day)))
        .alias("_to"),
    ).filter("_from <= _to")
    days = spans.withColumn("date", F.explode(F.sequence("_from", "_to")))
    winner = Window.partitionBy("meterpoint_id", "date").orderBy(
        F.col("agreement_valid_from").desc(), *[key.desc() for key in id_order("agreement_id")]
    )
    return (
        days.join(names, "product_id", "left")
        .withColumn("covers_readings", F.row_number().over(winner) == 1)
        .withColumn("is_active", F.col("date") > F.col("agreement_valid_from"))
        .withColumn(
            "unmatched_reason",
            F.when(F.col("_product_found").isNull(), "unknown_product").when(
                F.col("product_display_name").isNull(), "product_without_name"
            ),
        )
        .select(
            "agreement_id",
            "meterpoint_id",
            "account_id",
            "product_id",
            "product_display_name",
            "product_is_variable",
            "covers_readings",
            "is_active",
            "unmatched_reason",
            "date",
        )
    )


def source_problems(agreements: DataFrame, products: DataFrame, meterpoints: DataFrame) -> dict[str, list[str]]:
    """Agreement ids behind each kind of source problem (empty lists when the source is clean)."""
    a, b = agreements.alias("a"), agreements.alias("b")
    never_ends = F.lit("9999-12-31").cast("date")
    overlapping = (
        a.join(
            b,
            (F.col("a.meterpoint_id") == F.col("b.meterpoint_id"))
            & (F.col("a.agreement_id") < F.col("b.agreement_id")),
        )
        .filter(
            (F.col("a.agreement_valid_from") < F.coalesce("b.agreement_valid_to", never_ends))
            & (F.col("b.agreement_valid_from") < F.coalesce("a.agreement_valid_to", never_ends))
        )
        .select(F.explode(F.array("a.agreement_id", "b.agreement_id")).alias("agreement_id"))
    )
    problems = {
        "overlapping_agreements": overlapping,
        "unknown_product": agreements.join(products, "product_id", "left_anti"),
        "product_without_name": agreements.join(products.filter("display_name IS NULL"), "product_id", "left_semi"),
        "unknown_meterpoint": agreements.join(meterpoints, "meterpoint_id", "left_anti"),
        "zero_length_agreements": agreements.filter("agreement_valid_to <= agreement_valid_from"),
    }
    # Every kind in one job: a collect per kind would be five.
    labelled = [frame.select(F.lit(name).alias("problem"), "agreement_id") for name, frame in problems.items()]
    found: dict[str, set[str]] = {name: set() for name in problems}
    for row in reduce(DataFrame.unionByName, labelled).distinct().collect():
        found[row["problem"]].add(row["agreement_id"])
    return {name: sorted(ids, key=id_sort_key) for name, ids in found.items()}
