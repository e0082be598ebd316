"""``billing-assets sql`` and the documented analyst queries, run as written on a real warehouse.

The queries are read from docs/analysts.md itself (fenced blocks tagged ``query=<name>``), so the
documentation cannot drift from what is tested: each one runs through the command line (DuckDB,
with the Spark SQL functions the queries use) and as its polars snippet, both must agree, and
both must give the hand-computed answer for the scenario of ``defs/test_gold.py``.
"""

import re
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import s3fs
from deltalake import write_deltalake
from polars.testing import assert_frame_equal

from billing_assets.analyst.sandbox import Limits, discover_tables, open_sandbox
from billing_assets.cli import main
from billing_assets.local_processes import stop_process_group
from billing_assets.resources import resolved_warehouse
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.test_gold import MARCH, OCTOBER, build_gold

ANALYSTS = Path(__file__).parents[1] / "docs" / "analysts.md"
QUESTIONS = "## Four questions, in SQL and in polars"
BLOCK = re.compile(r"^```(bash|python) query=([\w-]+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documented_queries() -> dict[str, dict[str, str]]:
    """Name -> {"bash": command, "python": snippet}, from the tagged blocks of docs/analysts.md."""
    queries: dict[str, dict[str, str]] = {}
    for language, name, body in BLOCK.findall(ANALYSTS.read_text()):
        queries.setdefault(name, {})[language] = body
    return queries


QUERIES = documented_queries()

# Hand-computed from the readings of test_gold.land_readings. Regions: m1 and m4 London, m2
# Wales, m3 Scotland. m1 switches from a variable to a fixed product on 28 March; m3 (only a
# zero-length agreement) and m4 (none) count towards regions but no account or product.
EXPECTED = {
    "region-per-day": pl.DataFrame(
        {
            "day": [date(2026, 3, 27)] * 2 + [date(2026, 3, 28)] * 3 + [date(2026, 3, 29), date(2026, 10, 25)],
            "region": ["London", "Wales", "London", "Scotland", "Wales", "Wales", "Wales"],
            "meterpoints": [1, 1, 2, 1, 1, 1, 1],
            # 28 March in London: m1 0.5 + 0.25 and m4 4.0. 29 March is the short day, 25
            # October the long one (local days, not UTC days).
            "consumption": [1.0, 2.0, 4.75, 3.0, 1.0, 3.0, 4.0],
        }
    ),
    # A1 (m1) has no October readings; A2 (m2): March 2 + 1 + 3 x 1, October 4 x 1.
    "usage-growth": pl.DataFrame(
        {
            "account_id": ["A2"],
            "previous_month": ["2026-03"],
            "billing_month": ["2026-10"],
            "previous_consumption": [6.0],
            "consumption": [4.0],
            "growth": [-2.0],
        }
    ),
    # Local half hours. 10:00 variable: 27 March 3.0 over 2 meterpoints and 28 March 1.0 over 1;
    # 01:30 is both 01:30s of 25 October; 23:30 is 29 March (BST) and 25 October (GMT).
    "variable-vs-fixed": pl.DataFrame(
        {
            "local_time": ["00:00", "00:30", "01:30", "02:00", "10:00", "10:30", "23:30"],
            "variable": [1.0, 1.0, 1.0, 1.0, 4 / 3, None, 1.0],
            "fixed": [None, None, None, None, 0.5, 0.25, None],
        }
    ),
    # By the data's clock (the October hour ingested last), March is settled (its statement bills
    # the usage tables' totals: m1 1.0 + 0.5 + 0.25, m2 2 + 1 + 3 x 1, m3 3.0, m4 4.0) and
    # October is not over yet: unbilled.
    "truth-vs-statement": pl.DataFrame(
        {
            "billing_month": ["2026-03"] * 4 + ["2026-10"],
            "meterpoint_id": ["m1", "m2", "m3", "m4", "m2"],
            "statement_run": [1, 1, 1, 1, None],
            "usage_kwh": [1.75, 6.0, 3.0, 4.0, 4.0],
            "billed_kwh": [1.75, 6.0, 3.0, 4.0, None],
            "difference": [0.0, 0.0, 0.0, 0.0, -4.0],
        }
    ),
}


@pytest.fixture(scope="module")
def analyst_root(tmp_path_factory, spark, end_to_end) -> Path:
    """A folder whose ``data/warehouse`` holds every table of the gold scenario, usage included."""
    root = tmp_path_factory.mktemp("analyst")
    (root / "data").mkdir()
    pipeline = build_gold(Pipeline(root / "data", spark))
    pipeline.materialize("hourly_usage", "2026-03-27-10+0000", "2026-03-29-23+0100")
    pipeline.materialize("hourly_usage", "2026-10-25-00+0100", "2026-10-25-23+0000")
    for month in ("2026-03", "2026-10"):
        pipeline.materialize("cumulative_usage", month)
        pipeline.materialize("statements", month)
    assert (MARCH, OCTOBER) == ("2026-03-30-00", "2026-10-26-00")  # the readings the expectations are for
    return root


@pytest.fixture
def in_root(analyst_root: Path, monkeypatch) -> Path:
    """Run from ``analyst_root`` with the default warehouse, as the documented commands assume."""
    monkeypatch.chdir(analyst_root)
    monkeypatch.delenv("BILLING_WAREHOUSE_URI", raising=False)
    return analyst_root


def test_the_analyst_doc_has_four_questions_each_in_sql_and_polars() -> None:
    assert sorted(QUERIES) == sorted(EXPECTED)
    assert all(sorted(q) == ["bash", "python"] for q in QUERIES.values())
    # Every tagged block sits in the questions' section, after the joins it relies on.
    text = ANALYSTS.read_text()
    start = text.index(QUESTIONS)
    end = text.find("\n## ", start + len(QUESTIONS))
    assert text.index("## Joining to the dimensions") < start
    assert all(start < m.start() < (end if end > 0 else len(text)) for m in BLOCK.finditer(text))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_documented_query_gives_the_same_answer_in_sql_and_polars(name: str, in_root: Path, capsys) -> None:
    command = shlex.split(QUERIES[name]["bash"])
    assert command[:2] == [".venv/bin/billing-assets", "sql"]
    out = in_root / f"{name}.parquet"
    assert main([*command[1:], "--out", str(out), "--force"]) == 0
    from_sql = pl.read_parquet(out)

    namespace: dict = {}
    exec(compile(QUERIES[name]["python"], f"docs/analysts.md:{name}", "exec"), namespace)
    from_polars = namespace["result"]

    assert_frame_equal(from_sql, from_polars, check_dtypes=False)
    assert_frame_equal(from_sql, EXPECTED[name], check_dtypes=False)
    capsys.readouterr()


def test_sql_prints_an_aligned_table_and_the_row_count(in_root: Path, capsys) -> None:
    query = "SELECT meterpoint_id, region FROM dim_meterpoint WHERE is_current ORDER BY meterpoint_id"
    assert main(["sql", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "5 rows"
    rows = [line.split()[1::2] for line in lines if re.match(r"│ m\d ", line)]
    assert rows == [["m1", "London"], ["m2", "Wales"], ["m3", "Scotland"], ["m4", "London"], ["m5", "Wales"]]
    assert len({len(line) for line in lines[:-1]}) == 1  # aligned: every line of the table equally wide


def test_out_writes_csv_or_parquet_and_refuses_other_formats(in_root: Path, capsys) -> None:
    query = "SELECT settlement_date, SUM(consumption) AS consumption FROM half_hourly_consumption GROUP BY 1 ORDER BY 1"
    for out in ("out/daily.csv", "out/daily.parquet"):
        (in_root / out).unlink(missing_ok=True)  # the module's warehouse is shared; --out never replaces
    assert main(["sql", query, "--out", "out/daily.csv"]) == 0
    assert main(["sql", query, "--out", "out/daily.parquet"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "wrote 4 rows to out/daily.csv",
        "wrote 4 rows to out/daily.parquet",
    ]
    assert (in_root / "out/daily.csv").read_text().splitlines() == [
        "settlement_date,consumption",
        "2026-03-27,3.0",
        "2026-03-28,8.75",
        "2026-03-29,3.0",
        "2026-10-25,4.0",
    ]
    assert pl.read_parquet(in_root / "out/daily.parquet").rows() == [
        (date(2026, 3, 27), 3.0),
        (date(2026, 3, 28), 8.75),
        (date(2026, 3, 29), 3.0),
        (date(2026, 10, 25), 4.0),
    ]

    assert main(["sql", query, "--out", "out/daily.xlsx"]) == 2
    assert capsys.readouterr().err == "error: --out must end in .csv or .parquet, got 'out/daily.xlsx'\n"
    assert not (in_root / "out/daily.xlsx").exists()


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("SELEC 1", 2, 'error: Parser Error: syntax error at or near "SELEC"'),
        ("SELECT * FROM no_such_table", 2, "error: billing-assets sql only reads ("),
        ("SELECT CAST(region AS INT) FROM dim_meterpoint", 1, "error: Conversion Error: Could not convert string '"),
    ],
)
def test_a_failing_query_is_one_clear_line(query: str, code: int, message: str, in_root: Path, capsys) -> None:
    assert main(["sql", query]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(message), line


def test_a_warehouse_without_tables_is_named(tmp_path: Path, capsys) -> None:
    assert main(["sql", "SELECT 1", "--warehouse", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"error: no Delta tables under '{tmp_path}' (set --warehouse or BILLING_WAREHOUSE_URI)\n"
    )


@pytest.fixture
def notes_warehouse(tmp_path: Path) -> Path:
    """A warehouse with one Delta table outside the pipeline's contract, and a folder that is no table."""
    write_deltalake(str(tmp_path / "notes"), pl.DataFrame({"note": ["x", "y"], "day": ["d1", "d2"]}).to_arrow())
    (tmp_path / "scratch").mkdir()
    return tmp_path


def test_any_delta_table_becomes_a_view_named_by_its_folder(notes_warehouse: Path, capsys) -> None:
    assert main(["sql", "SELECT note FROM notes ORDER BY note", "--warehouse", str(notes_warehouse)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 rows"
    assert main(["sql", "SELECT * FROM scratch", "--warehouse", str(notes_warehouse)]) == 2
    assert "'scratch' is not a table of the warehouse" in capsys.readouterr().err


def _command(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run ``billing-assets`` as a real process: exit code, stdout, stderr."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "billing-assets"), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        stop_process_group(proc)
    return proc.returncode, out, err


def test_as_a_command_a_runtime_error_is_one_line(notes_warehouse: Path) -> None:
    """A real process: nothing but the one line reaches stderr (no traceback, no engine log)."""
    code, out, err = _command("sql", "SELECT CAST(note AS INT) FROM notes", "--warehouse", str(notes_warehouse))
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("error: Conversion Error: Could not convert string 'x' to INT32"), err


def test_only_the_tables_a_query_names_are_registered(in_root: Path) -> None:
    """Each registered table costs a log read and a file listing: a query pays for the ones it names."""
    store = resolved_warehouse("data/warehouse", None)
    con, names = open_sandbox(store, "SELECT SUM(consumption) FROM HOURLY_USAGE h JOIN dim_agreement", Limits())
    try:
        assert names == ["dim_agreement", "hourly_usage"]
        assert sorted(row[0] for row in con.execute("SHOW TABLES").fetchall()) == ["dim_agreement", "hourly_usage"]
    finally:
        con.close()
    # A statement that names no table (SHOW TABLES) sees every table.
    con, names = open_sandbox(store, "SHOW TABLES", Limits())
    con.close()
    assert names == discover_tables(store)


@pytest.mark.parametrize(
    ("query", "last_line"),
    [
        ("WITH n AS (SELECT note FROM notes) SELECT * FROM n", "2 rows"),
        ("VALUES (1), (2), (3)", "3 rows"),
        ("TABLE notes", "2 rows"),
        ("SHOW TABLES", "1 row"),
        ("DESCRIBE notes", "2 rows"),
        ("EXPLAIN SELECT * FROM notes", "1 row"),
    ],
)
def test_queries_and_statements_that_only_show_run(query: str, last_line: str, notes_warehouse: Path, capsys) -> None:
    assert main(["sql", query, "--warehouse", str(notes_warehouse)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == last_line


def test_as_a_command_it_creates_no_file_but_out(end_to_end, notes_warehouse: Path, tmp_path_factory) -> None:
    """A real process in an empty folder: neither a refused statement nor DuckDB leaves a file there."""
    folder = tmp_path_factory.mktemp("analyst_cwd")
    for query, extra, expected in [
        ("CREATE TABLE x AS SELECT 1", [], 2),
        ("SELECT note FROM notes", ["--out", "notes.csv"], 0),
    ]:
        code, _, err = _command("sql", "--warehouse", str(notes_warehouse), query, *extra, cwd=folder)
        assert code == expected, err
    assert sorted(path.name for path in folder.iterdir()) == ["notes.csv"]


def test_sql_and_the_polars_queries_read_a_warehouse_on_s3(
    analyst_root: Path, s3_server: str, s3_warehouse: WarehouseResource, monkeypatch, tmp_path: Path, capsys
) -> None:
    # The same tables, copied object by object: a Delta table's log names its files relatively.
    fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": s3_server})
    local = analyst_root / "data" / "warehouse"
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{s3_warehouse.uri}/{path.relative_to(local).as_posix()}")
    for name, value in {
        "BILLING_S3_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    storage = s3_warehouse.get_warehouse().storage.delta_options()
    for name in sorted(EXPECTED):
        out = tmp_path / f"{name}.parquet"
        command = shlex.split(QUERIES[name]["bash"])
        assert main([*command[1:], "--warehouse", s3_warehouse.uri, "--out", str(out)]) == 0, capsys.readouterr().err
        assert_frame_equal(pl.read_parquet(out), EXPECTED[name], check_dtypes=False)

        local_settings = 'warehouse, storage = "data/warehouse", None'
        assert local_settings in QUERIES[name]["python"]
        snippet = QUERIES[name]["python"].replace(
            local_settings, f"warehouse, storage = {s3_warehouse.uri!r}, {storage!r}"
        )
        namespace: dict = {}
        exec(compile(snippet, f"docs/analysts.md:{name} (on S3)", "exec"), namespace)
        assert_frame_equal(namespace["result"], EXPECTED[name], check_dtypes=False)
    capsys.readouterr()
