"""``billing-assets sql`` is a sandbox: escape attempts, the bound on work, Ctrl-C and ``--out``.

Every escape attempt runs through the command line's ``main`` against a real warehouse of
Delta tables, with a credential in the environment, and must be refused in one line without
changing, creating or revealing anything: each file under the test's folder (the warehouse,
the landing zone, the working folder and a folder outside them) is hashed before and after.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import polars as pl
import psutil
import pytest
from deltalake import write_deltalake

from billing_assets.cli import main

SECRET = "canary-secret-7f3a"
WRITES = "billing-assets sql only reads"


def _hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes: a changed, new or deleted file shows."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


class Site:
    """A warehouse, a landing zone, a working folder and a folder outside them, under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.warehouse = root / "warehouse"
        self.landing = root / "landing"
        self.outside = root / "outside"
        self.cwd = root / "cwd"
        self.marker = self.outside / "marker"
        for folder in (self.landing, self.outside, self.cwd):
            folder.mkdir(parents=True)
        (self.landing / "2026-03-28" / "00").mkdir(parents=True)
        (self.landing / "2026-03-28" / "00" / "readings.json").write_text('{"meterpoint_id": "m1"}\n')
        write_deltalake(
            str(self.warehouse / "notes"), pl.DataFrame({"note": ["x", "y"], "day": ["d1", "d2"]}).to_arrow()
        )
        usage = pl.DataFrame({"meterpoint_id": ["m1", "m2"], "consumption": [1.5, 2.5]})
        write_deltalake(str(self.warehouse / "hourly_usage"), usage.to_arrow())
        self.commit = self.warehouse / "hourly_usage" / "_delta_log" / "00000000000000000000.json"
        [self.data_file] = (self.warehouse / "notes").glob("*.parquet")
        assert self.commit.is_file() and self.data_file.is_file()

    def sql(self, *args: str) -> int:
        """``billing-assets sql`` on this site's warehouse and landing zone."""
        return main(["sql", *args, "--warehouse", str(self.warehouse), "--landing", str(self.landing)])


@pytest.fixture
def site(tmp_path: Path, monkeypatch) -> Site:
    """A fresh site, the working folder its ``cwd``, a credential in the environment."""
    site = Site(tmp_path)
    monkeypatch.chdir(site.cwd)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-canary")
    return site


# (statement, expected exit code, a fragment of the one line on stderr). Exit 2: refused before
# it ran (not DuckDB's SQL, or not a read of the warehouse's tables). Exit 1: the statement is
# a read but names a function that does not exist here (Spark's reflection, a shell's getenv).
NOT_SQL = "Parser Error"
NO_FUNCTION = "does not exist"
ESCAPES = [
    # Spark SQL's escapes from the report, in each form: they are no statement of DuckDB's.
    ("SELECT TRANSFORM(note) USING 'id > {marker}; head -n 1 /etc/passwd' AS (line) FROM notes", 2, NOT_SQL),
    ("WITH t AS (SELECT TRANSFORM(note) USING 'touch {marker}' AS (x) FROM notes) SELECT * FROM t", 2, NOT_SQL),
    ("SELECT * FROM notes WHERE note IN (SELECT TRANSFORM(note) USING 'touch {marker}' AS (x) FROM notes)", 2, NOT_SQL),
    ("EXPLAIN SELECT TRANSFORM(note) USING 'touch {marker}' AS (x) FROM notes", 2, NOT_SQL),
    ("SELECT * FROM (SELECT TRANSFORM(1) USING 'env' AS (line)) WHERE line LIKE 'AWS%'", 2, NOT_SQL),
    ("SELECT TRANSFORM(1) USING 'rm -f {commit}' AS (line)", 2, NOT_SQL),
    ("EXECUTE IMMEDIATE 'INSERT OVERWRITE DIRECTORY ''{warehouse}/notes'' USING parquet SELECT 1 AS a'", 2, NOT_SQL),
    (
        "EXPLAIN EXTENDED EXECUTE IMMEDIATE 'INSERT OVERWRITE DIRECTORY ''{warehouse}/notes'' USING parquet SELECT 1'",
        2,
        "",
    ),
    ("EXECUTE IMMEDIATE 'SET spark.sql.runSQLOnFiles=true'", 2, NOT_SQL),
    ("EXECUTE IMMEDIATE 'ADD JAR /nonexistent.jar'", 2, NOT_SQL),
    ("INSERT OVERWRITE DIRECTORY '{warehouse}/notes' USING parquet SELECT 1 AS note", 2, ""),
    ("ADD JAR /nonexistent.jar", 2, NOT_SQL),
    ("SET spark.sql.runSQLOnFiles=true", 2, NOT_SQL),
    ("SELECT * FROM text.`/etc/passwd`", 2, ""),
    ("SELECT * FROM parquet.`{warehouse}/notes`", 2, ""),
    ("SELECT * FROM binaryFile.`/etc/passwd`", 2, ""),
    ("SELECT * FROM json.`/etc/passwd`", 2, ""),
    ("SELECT reflect('java.lang.System', 'exit', 3)", 1, NO_FUNCTION),
    ("SELECT * FROM notes WHERE note IN (SELECT java_method('java.lang.System', 'exit', 3))", 1, NO_FUNCTION),
    # DuckDB's own ways to files, the network, extensions and settings.
    ("SELECT * FROM read_csv('/etc/passwd')", 2, "read_csv()"),
    ("SELECT * FROM read_text('/etc/passwd')", 2, "read_text()"),
    ("SELECT * FROM read_blob('{commit}')", 2, "read_blob()"),
    ("SELECT * FROM read_parquet('{warehouse}/notes/*.parquet')", 2, "read_parquet()"),
    ("SELECT * FROM read_json_auto('{commit}')", 2, "read_json_auto()"),
    ("SELECT * FROM glob('/etc/*')", 2, "glob()"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", 2, "sniff_csv()"),
    ("SELECT * FROM '/etc/passwd'", 2, "'/etc/passwd' is not a table"),
    ("FROM '{warehouse}/notes/*.parquet'", 2, "is not a table"),
    ("SELECT * FROM query('COPY notes TO ''{marker}''')", 2, "query()"),
    ("SELECT * FROM query_table('notes')", 2, "query_table()"),
    ("SELECT * FROM duckdb_settings()", 2, "duckdb_settings()"),
    ("SELECT * FROM information_schema.tables", 2, "is not a table"),
    ("COPY notes TO '{marker}'", 2, "COPY"),
    ("COPY (SELECT 1 AS a) TO '{warehouse}/notes/part-0.parquet'", 2, "COPY"),
    ("EXPORT DATABASE '{outside}/export'", 2, "EXPORT"),
    ("ATTACH '{marker}' AS elsewhere", 2, "ATTACH"),
    ("DETACH memory", 2, "DETACH"),
    ("INSTALL httpfs", 2, "LOAD"),
    ("LOAD httpfs", 2, "LOAD"),
    ("SET enable_external_access = true", 2, "SET"),
    ("RESET lock_configuration", 2, "SET"),
    ("SET VARIABLE leak = 1", 2, ""),
    ("PRAGMA enable_profiling", 2, "PRAGMA"),
    ("CALL pragma_version()", 2, "CALL"),
    ("SELECT getenv('AWS_SECRET_ACCESS_KEY')", 1, NO_FUNCTION),
    ("SELECT current_setting('s3_secret_access_key')", 1, ""),
    ("CREATE TABLE copied AS SELECT * FROM notes", 2, "CREATE"),
    ("CREATE VIEW v AS SELECT * FROM read_csv('/etc/passwd')", 2, "CREATE"),
    ("CREATE MACRO leak() AS TABLE SELECT * FROM read_text('/etc/passwd')", 2, "CREATE"),
    ("CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", 2, "CREATE"),
    ("INSERT INTO notes VALUES ('z', 'd3')", 2, "INSERT"),
    ("UPDATE notes SET note = 'z'", 2, "UPDATE"),
    ("DELETE FROM hourly_usage", 2, "DELETE"),
    ("DROP VIEW notes", 2, "DROP"),
    ("PREPARE p AS COPY notes TO '{marker}'", 2, "PREPARE"),
    ("BEGIN TRANSACTION", 2, "TRANSACTION"),
    ("CHECKPOINT", 2, ""),
    ("USE temp", 2, ""),
    # Nested: several statements, a CTE, a subquery, a set operation, EXPLAIN, DESCRIBE, SUMMARIZE.
    ("SELECT 1; COPY notes TO '{marker}'", 2, "COPY"),
    ("SELECT 1; SELECT 2", 2, "2 statements"),
    ("WITH t AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM t", 2, "read_csv()"),
    ("SELECT * FROM notes WHERE note IN (SELECT * FROM read_text('/etc/passwd'))", 2, "read_text()"),
    ("SELECT * FROM (FROM glob('{warehouse}/**'))", 2, "glob()"),
    ("SELECT note FROM notes UNION ALL SELECT content FROM read_text('/etc/passwd')", 2, "read_text()"),
    ("EXPLAIN SELECT * FROM read_csv('/etc/passwd')", 2, "read_csv()"),
    ("EXPLAIN ANALYZE SELECT * FROM read_text('/etc/passwd')", 2, "read_text()"),
    ("EXPLAIN ANALYZE COPY notes TO '{marker}'", 2, "EXPLAIN of COPY"),
    ("EXPLAIN CREATE TABLE y AS SELECT 1", 2, "EXPLAIN of CREATE"),
    ("EXPLAIN DELETE FROM notes", 2, "EXPLAIN of DELETE"),
    ("DESCRIBE SELECT * FROM read_text('/etc/passwd')", 2, "read_text()"),
    ("SUMMARIZE SELECT * FROM read_blob('{commit}')", 2, "read_blob()"),
    ("PIVOT (SELECT * FROM read_csv('/etc/passwd')) ON column0", 2, "MULTI"),
]


@pytest.mark.parametrize(("statement", "code", "fragment"), ESCAPES, ids=[e[0][:60] for e in ESCAPES])
def test_an_escape_attempt_is_refused_in_one_line_and_nothing_changes(
    statement: str, code: int, fragment: str, site: Site, capsys
) -> None:
    assert len(ESCAPES) >= 40
    query = statement.format(warehouse=site.warehouse, marker=site.marker, commit=site.commit, outside=site.outside)
    before = _hashes(site.root)
    assert site.sql(query) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("error: ") and fragment in line, line
    if code == 2 and fragment not in (NOT_SQL, ""):
        assert WRITES in line, line
    assert SECRET not in line and "root:" not in line
    assert _hashes(site.root) == before  # nothing changed in the warehouse, nothing appeared anywhere
    assert not site.marker.exists()
    # The tables still read whole.
    assert site.sql("SELECT count(*) AS n FROM notes") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 row"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('{commit}')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM glob('/etc/*')",
        "COPY notes TO '{marker}'",
        "EXPORT DATABASE '{outside}/export'",
        "ATTACH '{marker}' AS elsewhere",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
        "SET temp_directory = '{outside}'",
        "SELECT * FROM site",  # a Python object by name (replacement scans are off)
    ],
)
def test_the_sandbox_itself_refuses_files_extensions_and_settings(statement: str, site: Site) -> None:
    """Below the statement check: DuckDB, as configured, refuses the same on its own."""
    import duckdb

    from billing_assets.analyst.sandbox import Limits, open_sandbox
    from billing_assets.resources.warehouse import WarehouseResource

    before = _hashes(site.root)
    con, _ = open_sandbox(WarehouseResource(uri=str(site.warehouse)).get_warehouse(), "", Limits())
    try:
        query = statement.format(marker=site.marker, commit=site.commit, outside=site.outside)
        with pytest.raises(duckdb.Error, match="disabled|locked|does not exist"):
            con.execute(query).fetchall()
        [[external, locked]] = con.execute(
            "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')"
        ).fetchall()
        assert (external, locked) == (False, True)
    finally:
        con.close()
    assert _hashes(site.root) == before
    assert not site.marker.exists()


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    return line


def test_a_query_past_its_time_limit_is_stopped_in_one_line(site: Site, capsys) -> None:
    started = time.monotonic()
    query = "SELECT count(*) FROM range(1000000) a CROSS JOIN range(1000000) b"
    assert site.sql(query, "--timeout", "2") == 1
    assert time.monotonic() - started < 60
    assert _one_error_line(capsys) == "error: stopped at the time limit of 2 s (--timeout SECONDS raises it)"


def test_a_query_past_its_memory_limit_fails_in_one_line_and_spills_nothing(site: Site, capsys) -> None:
    before = _hashes(site.root)
    query = "SELECT range % 3 AS k, list(repeat('x', 100)) AS big FROM range(5000000) GROUP BY 1"
    assert site.sql(query, "--memory-limit", "100MB") == 1
    line = _one_error_line(capsys)
    assert line.startswith("error: Out of Memory Error") and line.endswith("(--memory-limit raises the limit)"), line
    assert _hashes(site.root) == before  # no temporary spill files either


def test_a_long_result_prints_its_first_rows_and_counts_the_rest(site: Site, capsys) -> None:
    assert site.sql("SELECT range AS n, repeat('x', 1000) AS wide FROM range(300000)") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "300000 rows, the first 200 shown (--out FILE writes them all)"
    assert sum(1 for line in lines if line.startswith("│ ")) == 3 + 200  # names, dashes, types, 200 rows


def test_a_bad_memory_limit_or_timeout_is_one_line(site: Site, capsys) -> None:
    assert site.sql("SELECT 1", "--memory-limit", "lots") == 1
    assert _one_error_line(capsys).startswith("error: memory_limit 'lots': ")
    with pytest.raises(SystemExit) as exit_:
        site.sql("SELECT 1", "--timeout", "-1")
    assert exit_.value.code == 2
    assert "expected a positive number of seconds, got '-1'" in capsys.readouterr().err


def _billing_assets(*args: str, cwd: Path) -> subprocess.Popen:
    """``billing-assets`` as a real process with SIGINT handled as usual (a shell may start it ignored)."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "billing-assets"), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _cpu_seconds(proc: subprocess.Popen) -> float:
    times = psutil.Process(proc.pid).cpu_times()
    return times.user + times.system


def test_ctrl_c_stops_a_running_query_in_one_line(site: Site) -> None:
    """A real process: SIGINT reaches Python's handler while DuckDB works in another thread."""
    where = ["--warehouse", str(site.warehouse), "--landing", str(site.landing)]
    long_query = "SELECT count(*) FROM range(1000000) a CROSS JOIN range(1000000) b"
    proc = _billing_assets("sql", long_query, *where, "--timeout", "600", cwd=site.cwd)
    try:
        deadline = time.monotonic() + 300
        startup = None
        while time.monotonic() < deadline and proc.poll() is None:
            threads = psutil.Process(proc.pid).num_threads()
            # DuckDB's worker threads and the query's thread exist only once the query runs.
            if threads >= 3 and startup is None:
                startup = _cpu_seconds(proc)
            if startup is not None and _cpu_seconds(proc) > startup + 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGINT)
        interrupted = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - interrupted < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert out == ""
    assert err.splitlines() == ["error: stopped by Ctrl-C"], err


# --- --out: never into the warehouse or the landing zone, never over a file unless --force ---


def _out_cases(site: Site) -> list[str]:
    link = site.outside / "link"
    link.symlink_to(site.warehouse / "notes")
    return [
        str(site.data_file),  # a live data file of a table
        str(site.warehouse / "dim_product.csv"),
        str(site.warehouse / "new_folder" / "result.parquet"),
        str(site.cwd / ".." / "warehouse" / "notes" / "result.csv"),
        str(site.landing / "2026-03-28" / "00" / "result.csv"),
        str(link / "result.parquet"),  # a symlink outside that leads into the warehouse
        f"file://{site.warehouse}/notes/result.csv",
    ]


def test_out_refuses_the_warehouse_and_the_landing_zone(site: Site, capsys) -> None:
    for out in _out_cases(site):
        before = _hashes(site.root)
        for force in ([], ["--force"]):
            assert site.sql("SELECT * FROM notes", "--out", out, *force) == 2, out
            line = _one_error_line(capsys)
            assert "is inside the warehouse" in line or "is inside the landing zone" in line, line
            assert _hashes(site.root) == before


def test_out_refuses_an_s3_uri_under_an_s3_warehouse_or_landing_zone(site: Site, capsys) -> None:
    """Judged before the warehouse is opened: no S3 server is needed to refuse."""
    for out, zone in [
        ("s3://bucket/warehouse/notes/part-0.parquet", "warehouse"),
        ("s3://bucket/landing/2026-03-28/result.csv", "landing zone"),
    ]:
        args = ["sql", "SELECT 1", "--out", out, "--warehouse", "s3://bucket/warehouse/"]
        assert main([*args, "--landing", "s3://bucket/landing"]) == 2
        assert f"is inside the {zone}" in _one_error_line(capsys)
    assert (
        main(["sql", "SELECT 1", "--out", "s3://bucket/elsewhere/a.csv", "--warehouse", "s3://bucket/warehouse"]) == 2
    )
    assert _one_error_line(capsys) == "error: --out writes a local file, got 's3://bucket/elsewhere/a.csv'"


def test_out_replaces_an_existing_file_only_with_force(site: Site, capsys) -> None:
    out = site.outside / "result.csv"
    out.write_text("keep me\n")
    assert site.sql("SELECT note FROM notes ORDER BY note", "--out", str(out)) == 2
    assert _one_error_line(capsys) == f"error: --out {str(out)!r} exists; add --force to replace it"
    assert out.read_text() == "keep me\n"
    assert site.sql("SELECT note FROM notes ORDER BY note", "--out", str(out), "--force") == 0
    assert out.read_text() == "note\nx\ny\n"
    assert sorted(path.name for path in site.outside.iterdir()) == ["result.csv"]  # no partial file left


def test_out_leaves_no_partial_file_when_the_query_fails(site: Site, capsys) -> None:
    out = site.outside / "result.parquet"
    assert site.sql("SELECT CAST(note AS INTEGER) FROM notes", "--out", str(out)) == 1
    assert _one_error_line(capsys).startswith("error: Conversion Error")
    assert list(site.outside.iterdir()) == []


def test_the_spark_functions_of_the_documented_queries_mean_what_they_mean_in_spark(site: Site, capsys) -> None:
    """Spark's values, worked by hand: London's clocks went forward at 01:00 UTC on 29 March 2026."""
    out = site.outside / "spark.parquet"
    query = """
    SELECT from_utc_timestamp(TIMESTAMPTZ '2026-03-29 00:30:00+00', 'Europe/London') AS before_change,
           from_utc_timestamp(TIMESTAMPTZ '2026-03-29 01:30:00+00', 'Europe/London') AS after_change,
           from_utc_timestamp(TIMESTAMP '2026-07-01 12:00:00', 'Asia/Kolkata') AS naive_is_utc,
           to_utc_timestamp(TIMESTAMP '2026-07-01 13:00:00', 'Europe/London') AS back_to_utc,
           to_date(from_utc_timestamp(TIMESTAMPTZ '2026-10-25 23:30:00+00', 'Europe/London')) AS local_day,
           date_format(TIMESTAMP '2026-03-09 07:05:04', 'yyyy-MM-dd HH:mm:ss') AS formatted
    """
    assert site.sql(query, "--out", str(out)) == 0
    capsys.readouterr()
    [row] = pl.read_parquet(out).rows(named=True)
    assert str(row["before_change"]) == "2026-03-29 00:30:00"
    assert str(row["after_change"]) == "2026-03-29 02:30:00"
    assert str(row["naive_is_utc"]) == "2026-07-01 17:30:00"
    assert str(row["back_to_utc"].astimezone(UTC)) == "2026-07-01 12:00:00+00:00"
    assert str(row["local_day"]) == "2026-10-25"
    assert row["formatted"] == "2026-03-09 07:05:04"


def test_a_damaged_table_is_one_line(site: Site, capsys) -> None:
    site.data_file.unlink()
    assert site.sql("SELECT * FROM notes") == 1
    assert "not found" in _one_error_line(capsys)
    site.commit.write_text("not json\n")
    assert site.sql("SELECT * FROM hourly_usage") == 1
    assert _one_error_line(capsys).startswith("error: ")
