"""The core chain in DuckDB SQL, over the same files, as a single-process yardstick.

Same rules and same limits as ``plain_spark``: both landing formats, the watermark, first
arrival per ``record_id``, hourly usage and the monthly running total, written as Parquet.
Timestamps are naive UTC inside DuckDB.
"""

import time
from collections.abc import Sequence

from billing_assets.bench.plain_spark import ChainOutput

_READINGS = r"""
CREATE OR REPLACE TEMP TABLE files AS
SELECT
    regexp_extract(filename, 'ingestion_hour=(\d{4}-\d{2}-\d{2}-\d{2})/', 1) AS ingestion_hour,
    regexp_extract(filename, '(ingestion_hour=[^/]+/[^/]+)$', 1) AS source_file,
    -- Files that are not UTF-8 hold no readings (the pipeline quarantines them whole).
    ltrim(try(decode(content)), chr(65279)) AS text
FROM read_blob($globs);

CREATE OR REPLACE TEMP TABLE docs AS
SELECT *, CASE WHEN json_valid(text) THEN coalesce(
    json_type(text) = 'OBJECT' AND json_type(text, '$.columns') = 'ARRAY' AND json_type(text, '$.data') = 'ARRAY',
    false
) ELSE false END AS is_split
FROM files WHERE text IS NOT NULL;

CREATE OR REPLACE TEMP TABLE rows AS
WITH split AS (
    SELECT ingestion_hour, source_file, columns, unnest(data) AS vals, generate_subscripts(data, 1) AS line_number
    FROM (
        SELECT ingestion_hour, source_file,
               CAST(json_extract(text, '$.columns') AS VARCHAR[]) AS columns,
               CAST(json_extract(text, '$.data') AS JSON[]) AS data
        FROM docs WHERE is_split
    )
), split_rows AS (
    SELECT ingestion_hour, source_file, line_number, NULL::VARCHAR AS record_id,
           trim(v[list_position(columns, 'meterpoint_id')]) AS meterpoint_id,
           v[list_position(columns, 'interval_start')] AS interval_text,
           try_cast(v[list_position(columns, 'consumption_delta')] AS DOUBLE) AS consumption
    FROM (SELECT *, try_cast(vals AS VARCHAR[]) AS v FROM split)
    WHERE len(v) = len(columns)
), lines AS (
    SELECT ingestion_hour, source_file, unnest(parts) AS line, generate_subscripts(parts, 1) AS line_number
    FROM (SELECT ingestion_hour, source_file, string_split(text, chr(10)) AS parts FROM docs WHERE NOT is_split)
), objects AS (
    -- AND does not short-circuit in DuckDB; CASE does, and json_type fails on invalid JSON.
    SELECT * FROM lines WHERE CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END
), line_rows AS (
    SELECT ingestion_hour, source_file, line_number,
           CASE WHEN json_type(line, '$.record_id') = 'VARCHAR' THEN trim(line ->> '$.record_id') END AS record_id,
           CASE WHEN json_type(line, '$.meterpoint_id') = 'VARCHAR' THEN trim(line ->> '$.meterpoint_id') END
               AS meterpoint_id,
           CASE WHEN json_type(line, '$.interval_start') = 'VARCHAR' THEN line ->> '$.interval_start' END
               AS interval_text,
           CASE WHEN json_type(line, '$.consumption') IN ('DOUBLE', 'UBIGINT', 'BIGINT')
                THEN CAST(line -> '$.consumption' AS DOUBLE) END AS consumption
    FROM objects
)
SELECT * FROM split_rows UNION ALL SELECT * FROM line_rows;

CREATE OR REPLACE TEMP TABLE readings AS
WITH timed AS (
    SELECT *,
        CASE WHEN regexp_matches(interval_text, '(Z|[+-]\d{2}:?\d{2})$')
             THEN timezone('UTC', try_cast(interval_text AS TIMESTAMPTZ))
             ELSE timezone('UTC', timezone($tz, try_cast(interval_text AS TIMESTAMP))) END AS interval_start,
        strptime(ingestion_hour, '%Y-%m-%d-%H') AS hour
    FROM rows
)
SELECT ingestion_hour, source_file, line_number, meterpoint_id, interval_start, consumption,
       coalesce(record_id, left(sha256(meterpoint_id || '|' || strftime(interval_start, '%Y-%m-%dT%H:%M:%SZ')), 32))
           AS record_id
FROM timed
WHERE interval_start IS NOT NULL AND meterpoint_id <> '' AND coalesce(record_id, 'derived') <> ''
  AND consumption >= 0 AND isfinite(consumption)
  AND interval_start BETWEEN hour - INTERVAL 7 DAY AND hour + INTERVAL 65 MINUTE;
"""

_USAGE = """
CREATE OR REPLACE TEMP TABLE hourly AS
SELECT meterpoint_id, date_trunc('hour', interval_start) AS usage_hour,
       CAST(sum(CAST(consumption AS DECIMAL(38, 9))) AS DOUBLE) AS consumption, count(*) AS reading_count
FROM (
    -- First arrival wins: every later copy of a record is left out before summing.
    SELECT * FROM readings
    QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY ingestion_hour, source_file, line_number) = 1
)
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE cumulative AS
WITH months AS (
    SELECT meterpoint_id, usage_hour, CAST(consumption AS DECIMAL(38, 9)) AS exact,
           strftime(timezone($tz, timezone('UTC', usage_hour)), '%Y-%m') AS billing_month
    FROM hourly
), grid AS (
    SELECT f.billing_month, f.meterpoint_id, unnest(generate_series(f.first_hour, l.last_hour, INTERVAL 1 HOUR))
           AS usage_hour
    FROM (SELECT billing_month, meterpoint_id, min(usage_hour) AS first_hour FROM months GROUP BY ALL) AS f
    JOIN (SELECT billing_month, max(usage_hour) AS last_hour FROM months GROUP BY ALL) AS l USING (billing_month)
)
SELECT meterpoint_id, usage_hour, CAST(coalesce(exact, 0) AS DOUBLE) AS consumption,
       CAST(sum(coalesce(exact, 0)) OVER (
           PARTITION BY meterpoint_id, billing_month ORDER BY usage_hour
           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE) AS cumulative_consumption,
       billing_month
FROM grid LEFT JOIN months USING (billing_month, meterpoint_id, usage_hour);
"""


def run_duckdb(folders: Sequence[str], out: str, timezone: str) -> ChainOutput:
    """Run the chain over every file of ``folders`` and write hourly and cumulative usage under ``out``."""
    import duckdb

    began = time.monotonic()
    with duckdb.connect() as con:
        params = {"globs": [f"{folder}/*" for folder in folders], "tz": timezone}
        for statement in filter(str.strip, (_READINGS + _USAGE).split(";\n")):
            # Parameters bind to one statement at a time, and only the ones it names.
            con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
        hourly_path, cumulative_path = f"{out}/hourly_usage.parquet", f"{out}/cumulative_usage.parquet"
        for table, path in (("hourly", hourly_path), ("cumulative", cumulative_path)):
            quoted = path.replace("'", "''")  # COPY takes no parameter for its target
            con.execute(f"COPY {table} TO '{quoted}' (FORMAT parquet)")
    return ChainOutput(time.monotonic() - began, hourly_path, cumulative_path)
