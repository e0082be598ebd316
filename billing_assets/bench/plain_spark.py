"""The core chain written directly in Spark: one batch over all files, Spark's own JSON parsing.

It is the yardstick the pipeline is compared with, so it does only what the chain needs:
parse both landing formats, apply the watermark, keep the first arrival of each
``record_id``, sum hourly usage and the monthly running total, and write both as Parquet.
It applies the rules the sample data exercises (malformed lines and files, invalid
consumption and timestamps, missing fields, the watermark, naive local times); it does not
record quarantine reasons, and the repeated autumn hour of the split form is not resolved
by order within a file as the pipeline does.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

EXACT = "decimal(38,9)"
_SPLIT_DOC = "struct<columns: array<string>, data: array<array<string>>>"
_JSON_LINE = "struct<record_id: string, meterpoint_id: string, interval_start: string, consumption: double>"


@dataclass(frozen=True)
class ChainOutput:
    """Where one engine wrote its results and how long the chain took."""

    seconds: float
    hourly_path: str
    cumulative_path: str


def _utc(text: Column, timezone: str) -> Column:
    """An ``interval_start`` text as a UTC instant: exact with an offset, local time without."""
    has_offset = text.rlike(r"(Z|[+-]\d{2}:?\d{2})$")
    parsed = F.try_to_timestamp(text)
    return F.when(has_offset, parsed).otherwise(F.to_utc_timestamp(parsed, timezone))


def _files(spark: SparkSession, folders: Sequence[str]) -> DataFrame:
    path = F.col("_metadata.file_path")
    return spark.read.text(list(folders), wholetext=True).select(
        F.regexp_extract(path, r"ingestion_hour=(\d{4}-\d{2}-\d{2}-\d{2})/", 1).alias("ingestion_hour"),
        F.regexp_extract(path, r"(ingestion_hour=[^/]+/[^/]+)$", 1).alias("source_file"),
        "value",
    )


def _split_rows(files: DataFrame) -> DataFrame:
    doc = files.withColumn("doc", F.from_json("value", _SPLIT_DOC)).filter(
        "doc.columns IS NOT NULL AND doc.data IS NOT NULL"
    )
    rows = doc.select(
        "ingestion_hour", "source_file", "doc.columns", F.posexplode("doc.data").alias("position", "values")
    ).filter(F.size("values") == F.size("columns"))

    def field(name: str) -> Column:
        return F.element_at("values", F.array_position("columns", name).cast("int"))

    return rows.select(
        "ingestion_hour",
        "source_file",
        (F.col("position") + 1).alias("line_number"),
        F.lit(None).cast("string").alias("record_id"),
        F.trim(field("meterpoint_id")).alias("meterpoint_id"),
        field("interval_start").alias("interval_text"),
        F.expr(
            "try_cast(element_at(values, cast(array_position(columns, 'consumption_delta') AS int)) AS double)"
        ).alias("consumption"),
    )


def _json_lines(files: DataFrame) -> DataFrame:
    not_split = files.filter(F.from_json("value", _SPLIT_DOC)["data"].isNull())
    lines = not_split.select(
        "ingestion_hour", "source_file", F.posexplode(F.split("value", "\n")).alias("position", "line")
    ).filter(F.trim("line") != "")
    record = F.from_json("line", _JSON_LINE)
    return lines.select(
        "ingestion_hour",
        "source_file",
        (F.col("position") + 1).alias("line_number"),
        F.trim(record["record_id"]).alias("record_id"),
        F.trim(record["meterpoint_id"]).alias("meterpoint_id"),
        record["interval_start"].alias("interval_text"),
        record["consumption"].alias("consumption"),
    )


def accepted_readings(spark: SparkSession, folders: Sequence[str], timezone: str) -> DataFrame:
    """Every valid reading inside its ingestion hour's watermark, duplicates included."""
    files = _files(spark, folders)
    rows = _split_rows(files).unionByName(_json_lines(files))
    hour = F.to_timestamp("ingestion_hour", "yyyy-MM-dd-HH")
    valid = (
        rows.withColumn("interval_start", _utc(F.col("interval_text"), timezone))
        .withColumn(
            "record_id",
            F.coalesce(
                "record_id",
                F.substring(
                    F.sha2(
                        F.concat_ws("|", "meterpoint_id", F.date_format("interval_start", "yyyy-MM-dd'T'HH:mm:ss'Z'")),
                        256,
                    ),
                    1,
                    32,
                ),
            ),
        )
        .filter(
            (F.col("record_id") != "")
            & (F.col("meterpoint_id") != "")
            & F.col("interval_start").isNotNull()
            & (F.col("consumption") >= 0)
            & ~F.isnan("consumption")
            & (F.col("consumption") < float("inf"))
        )
    )
    return valid.filter(
        F.col("interval_start").between(hour - F.expr("INTERVAL 7 DAYS"), hour + F.expr("INTERVAL 65 MINUTES"))
    )


def hourly_usage(readings: DataFrame) -> DataFrame:
    """First arrival per ``record_id``, then consumption and reading count per meterpoint and UTC hour."""
    first = Window.partitionBy("record_id").orderBy("ingestion_hour", "source_file", "line_number")
    distinct = readings.withColumn("_rank", F.row_number().over(first)).filter("_rank = 1")
    return distinct.groupBy("meterpoint_id", F.date_trunc("hour", "interval_start").alias("usage_hour")).agg(
        F.sum(F.col("consumption").cast(EXACT)).cast("double").alias("consumption"),
        F.count(F.lit(1)).alias("reading_count"),
    )


def cumulative_usage(hourly: DataFrame, timezone: str) -> DataFrame:
    """Running total per meterpoint since the start of each billing month, hours without readings filled."""
    months = hourly.select(
        "meterpoint_id",
        "usage_hour",
        F.col("consumption").cast(EXACT).alias("_exact"),
        F.date_format(F.from_utc_timestamp("usage_hour", timezone), "yyyy-MM").alias("billing_month"),
    )
    last = months.groupBy("billing_month").agg(F.max("usage_hour").alias("_last"))
    grid = (
        months.groupBy("billing_month", "meterpoint_id")
        .agg(F.min("usage_hour").alias("_first"))
        .join(last, "billing_month")
        .select(
            "billing_month",
            "meterpoint_id",
            F.explode(F.sequence("_first", "_last", F.expr("INTERVAL 1 HOUR"))).alias("usage_hour"),
        )
    )
    # Spark's default frame of an ordered window (every row up to this hour's) rather than the
    # pipeline's explicit row frame: the same total, as the hours are unique per meterpoint and month.
    month_so_far = Window.partitionBy("meterpoint_id", "billing_month").orderBy("usage_hour")
    filled = grid.join(months, ["billing_month", "meterpoint_id", "usage_hour"], "left").withColumn(
        "_x", F.coalesce("_exact", F.lit(0).cast(EXACT))
    )
    return (
        filled.withColumn("cumulative_consumption", F.sum("_x").over(month_so_far).cast("double"))
        .withColumn("consumption", F.col("_x").cast("double"))
        .select("meterpoint_id", "usage_hour", "consumption", "cumulative_consumption", "billing_month")
    )


def run_plain_spark(spark: SparkSession, folders: Sequence[str], out: str, timezone: str) -> ChainOutput:
    """Run the chain over every file of ``folders`` and write hourly and cumulative usage under ``out``."""
    began = time.monotonic()
    # The running total reads the hourly result: keep it rather than parse every file twice.
    hourly = hourly_usage(accepted_readings(spark, folders, timezone)).persist()
    hourly_path, cumulative_path = f"{out}/hourly_usage", f"{out}/cumulative_usage"
    hourly.write.mode("overwrite").parquet(hourly_path)
    cumulative_usage(hourly, timezone).write.mode("overwrite").partitionBy("billing_month").parquet(cumulative_path)
    hourly.unpersist()
    return ChainOutput(time.monotonic() - began, hourly_path, cumulative_path)
