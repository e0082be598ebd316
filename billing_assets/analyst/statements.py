"""Which statements may run: an allow-list judged on DuckDB's own parse of the text.

A statement runs only if DuckDB parses it as a query (``SELECT``, ``WITH``, ``VALUES``,
``FROM t``, ``TABLE t``, set operations, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``) or as an
``EXPLAIN`` of one, every table it names is a table of the warehouse (or a name its own
``WITH`` defines; a quoted path such as ``'/etc/passwd'`` is neither), and every table function
it calls is a generator of rows that reads no file. Text DuckDB cannot parse is refused too.
Everything else (``COPY``, ``ATTACH``, ``SET``, ``PRAGMA``, ``CREATE``, ``INSERT``, ``EXPORT``,
``INSTALL``, ``LOAD``, ``PREPARE``, ...) is refused by name, before anything runs.
The sandbox's locked configuration refuses file access at run time as well; this check makes
the refusal immediate and names what was refused.
"""

import json
from collections.abc import Iterator

import duckdb

from billing_assets.analyst.errors import Refused, one_line

#: Table functions that only generate rows. Every other one (read_csv, read_parquet, glob,
#: query, duckdb_settings, ...) reads files, runs SQL text or shows the engine's state.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
#: Every table a statement reads is a table of the warehouse or a name its own WITH defines.
ALLOWED = "SELECT, WITH, VALUES, FROM, TABLE, set operations, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN of those"


def _refused(construct: str) -> Refused:
    return Refused(f"billing-assets sql only reads ({ALLOWED}); refused: {construct}")


def _explained(statement: duckdb.Statement) -> str:
    """The text of the statement an ``EXPLAIN [ANALYZE]`` describes, found with DuckDB's tokenizer."""
    text = statement.query
    tokens = duckdb.tokenize(text)
    position = 1  # past EXPLAIN
    if position < len(tokens) and text[tokens[position][0] :].upper().startswith("ANALYZE"):
        position += 1
    if position >= len(tokens):
        raise _refused("an EXPLAIN of nothing")
    return text[tokens[position][0] :]


def _nodes(tree: object) -> Iterator[dict]:
    """Every node of a parse tree in ``json_serialize_sql``'s form, nested queries included."""
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def _judge_references(tree: dict, tables: frozenset[str]) -> None:
    """Refuse a table function outside the allow-list, or a table that is neither the warehouse's nor a WITH's."""
    nodes = list(_nodes(tree))
    defined = {str(entry["key"]).lower() for node in nodes for entry in (node.get("cte_map") or {}).get("map", [])}
    for node in nodes:
        if node.get("type") == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "?")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise _refused(f"the table function {name}()")
        elif node.get("type") == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            qualified = node.get("catalog_name") or node.get("schema_name")
            if qualified or name.lower() not in tables | defined:
                shown = ".".join(part for part in (node.get("catalog_name"), node.get("schema_name"), name) if part)
                raise _refused(f"{shown!r} is not a table of the warehouse (SHOW TABLES lists them)")


def _check_query(con: duckdb.DuckDBPyConnection, text: str, tables: frozenset[str]) -> None:
    """Refuse a query that reads anything but ``tables`` and its own WITHs, or that cannot be inspected."""
    [[serialized]] = con.execute("SELECT json_serialize_sql(?)", [text]).fetchall()
    tree = json.loads(serialized)
    if tree.get("error"):
        # Some query forms (PIVOT, UNPIVOT) have no serialised parse tree, so they cannot be judged.
        raise _refused(f"a query form the read-only check cannot inspect ({tree.get('error_message', '?')})")
    _judge_references(tree, tables)


def _parse(con: duckdb.DuckDBPyConnection, text: str) -> list[duckdb.Statement]:
    try:
        return con.extract_statements(text)
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None  # Ctrl-C while the statement was being read
    except duckdb.Error as exc:
        # Text that is no statement of DuckDB's (Spark's TRANSFORM, backquoted paths) never runs.
        raise Refused(one_line(exc)) from None


def check(con: duckdb.DuckDBPyConnection, sql: str, tables: list[str]) -> None:
    """Raise ``Refused`` unless ``sql`` is exactly one allowed statement reading only ``tables``."""
    statements = _parse(con, sql)
    if not statements:
        raise Refused("no statement given")
    for statement in statements:
        text = statement.query
        if statement.type == duckdb.StatementType.EXPLAIN:
            text = _explained(statement)
            inner = _parse(con, text)
            if len(inner) != 1 or inner[0].type != duckdb.StatementType.SELECT:
                kinds = ", ".join(s.type.name for s in inner)
                raise _refused(f"EXPLAIN of {kinds}")
        elif statement.type != duckdb.StatementType.SELECT:
            raise _refused(f"a {statement.type.name} statement")
        _check_query(con, text, frozenset(name.lower() for name in tables))
    if len(statements) > 1:
        raise _refused(f"{len(statements)} statements (one at a time)")
